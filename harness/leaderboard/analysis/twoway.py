"""Paired comparisons over seeds and prompts: the statistics behind the verdict and the racing study.

Two candidates (a method at one setting each) trained with the same seeds and evaluated on the same prompts
are compared through their differences. For seed s and prompt p, D_sp = A_sp - B_sp; the estimate is the mean
difference d = mean_s(d_s), d_s = A_s - B_s the per-seed difference of the values that count (a diverged seed
at its counted value: :func:`harness.leaderboard.analysis.seeds.contributed`). Seeds and prompts are crossed
random effects (D_sp = delta + seed_s + prompt_p + noise_sp): a new study would draw new seeds *and* new
prompts, and the prompts are shared by every seed, so their part of the noise does not shrink with more
seeds. Its variance is estimated by the two-way decomposition

    Var(d) = var_s(d_s) / n  +  var_p(c_p) / P,      c_p = mean_s(D_sp)

(the seed part, n - 1 degrees of freedom, and the prompt part, P - 1; each also holds the interaction's
share, so the sum overstates Var(d) by var(noise) / nP: conservative), with a Welch-Satterthwaite df. This is
the method-of-moments estimate of the crossed random-effects model, not a bootstrap: with 2 to 5 seeds a
bootstrap over seeds has 3 to 126 distinct resamples and understates the spread. Where a seed of either side
has no per-prompt scores (older records, a diverged seed), the prompt part is the unpaired mean(se_A² + se_B²)
of the two sides' evaluation standard errors (more conservative). With one seed the seed part is unknown:
the comparison is of these trials, not of the methods (:attr:`Difference.seeds_known` is False).

- :func:`difference`: d, its standard error, df and parts.
- :func:`p_value` (two-sided t), :func:`detectable` (the smallest difference detectable with 80% power at
  alpha 0.05, two-sided: (t_{0.975} + t_{0.80}) x se), :func:`equivalent` (two one-sided tests at 5% each:
  the 90% interval of d inside +- margin).
- :func:`seeds_needed`: the seeds (and, when seeds cannot do it, prompts) a comparison needs to be settled.
- :func:`draws`: the candidates' means drawn jointly from a multivariate t with the same decomposition of
  their covariance, for P(best) and the verdict's confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.80


@dataclass(frozen=True)
class Evidence:
    """One candidate's values by seed: ``values[i]`` of seed ``seeds[i]`` (the value that counts), its
    per-prompt scores ``rows[i]`` (None: not kept, or a diverged seed) and its evaluation standard error
    ``ses[i]`` (NaN: unknown)."""

    seeds: tuple[object, ...]
    values: tuple[float, ...]
    rows: tuple[np.ndarray | None, ...]
    ses: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.seeds) == len(self.values) == len(self.rows) == len(self.ses):
            raise ValueError("Evidence: seeds, values, rows and ses must have one entry per seed")

    @property
    def n(self) -> int:
        """Number of seeds."""
        return len(self.seeds)

    @property
    def mean(self) -> float:
        """Mean value over the seeds."""
        return float(np.mean(self.values)) if self.values else math.nan

    def by_seed(self) -> dict[object, int]:
        """Index of each seed."""
        return {s: i for i, s in enumerate(self.seeds)}


@dataclass(frozen=True)
class Difference:
    """A - B: the mean difference, its standard error and df, the seed and prompt parts of its variance,
    the seeds it rests on, the prompts, and how it was paired (``paired``: over common seeds; ``per_prompt``:
    the prompt part from per-prompt scores rather than standard errors)."""

    mean: float
    se: float
    df: float
    seed_var: float
    prompt_var: float
    n: int
    prompts: int
    paired: bool
    per_prompt: bool

    @property
    def seeds_known(self) -> bool:
        """Whether the seed-to-seed part was estimated (two seeds or more on each side)."""
        return self.n >= 2 and math.isfinite(self.seed_var)


def _satterthwaite(parts: Sequence[tuple[float, float]]) -> float:
    """df of a sum of variance estimates ``(value, df)``."""
    known = [(v, d) for v, d in parts if math.isfinite(v) and v > 0 and d > 0]
    if not known:
        return math.inf
    total = sum(v for v, _ in known)
    return total**2 / sum(v**2 / d for v, d in known)


def _prompt_part(a: Evidence, b: Evidence, pairs: Sequence[tuple[int, int]]) -> tuple[float, int, bool]:
    """The prompt part of Var(d) over ``pairs`` (indices into a and b), the prompts, whether per-prompt."""
    rows = [(a.rows[i], b.rows[j]) for i, j in pairs]
    if rows and all(x is not None and y is not None and len(x) == len(y) for x, y in rows):
        diffs = np.vstack([np.asarray(x, float) - np.asarray(y, float) for x, y in rows])
        columns = np.nanmean(diffs, axis=0) if np.isfinite(diffs).any() else diffs[0]
        columns = columns[np.isfinite(columns)]
        if len(columns) >= 2:
            return float(np.var(columns, ddof=1)) / len(columns), len(columns), True
    ses = [a.ses[i] ** 2 + b.ses[j] ** 2 for i, j in pairs]
    ses = [v for v in ses if math.isfinite(v)]
    return (float(np.mean(ses)) if ses else math.nan), 0, False


def difference(a: Evidence, b: Evidence) -> Difference:
    """A - B over their common seeds (paired), or, with fewer than two common seeds while each has two or
    more, of their means (unpaired: the seed parts added, the prompt part from standard errors)."""
    left, right = a.by_seed(), b.by_seed()
    common = [s for s in a.seeds if s in right]
    if len(common) >= 2 or (common and (a.n < 2 or b.n < 2)):
        pairs = [(left[s], right[s]) for s in common]
        d = np.array([a.values[i] - b.values[j] for i, j in pairs], dtype=float)
        n = len(d)
        seed_var = float(np.var(d, ddof=1)) / n if n >= 2 else math.nan
        prompt_var, prompts, per_prompt = _prompt_part(a, b, pairs)
        parts = [(seed_var, n - 1), (prompt_var, (prompts - 1) if per_prompt else max(n - 1, 1))]
        var = sum(v for v, _ in parts if math.isfinite(v))
        return Difference(
            float(d.mean()),
            math.sqrt(var),
            _satterthwaite(parts),
            seed_var,
            prompt_var,
            n,
            prompts,
            True,
            per_prompt,
        )
    va = float(np.var(a.values, ddof=1)) / a.n if a.n >= 2 else math.nan
    vb = float(np.var(b.values, ddof=1)) / b.n if b.n >= 2 else math.nan
    ses = [v**2 for v in (*a.ses, *b.ses) if math.isfinite(v)]
    prompt_var = float(np.mean(ses)) if ses else math.nan
    parts = [(va, a.n - 1), (vb, b.n - 1), (prompt_var, max(min(a.n, b.n) - 1, 1))]
    var = sum(v for v, _ in parts if math.isfinite(v))
    seed_var = va + vb if math.isfinite(va) and math.isfinite(vb) else math.nan
    return Difference(
        a.mean - b.mean,
        math.sqrt(var),
        _satterthwaite(parts),
        seed_var,
        prompt_var,
        min(a.n, b.n),
        0,
        False,
        False,
    )


def p_value(diff: Difference) -> float:
    """Two-sided p-value of d = 0 (a t-test with the difference's df); NaN without a standard error."""
    if not math.isfinite(diff.se) or not math.isfinite(diff.mean):
        return math.nan
    if diff.se == 0:
        return 0.0 if diff.mean != 0 else 1.0
    return float(2 * stats.t.sf(abs(diff.mean) / diff.se, diff.df))


def detectable(diff: Difference, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference this design detects with ``power`` at two-sided ``alpha``:
    (t_{1-alpha/2} + t_{power}) x se, with the difference's df."""
    if not math.isfinite(diff.se):
        return math.nan
    return float((stats.t.ppf(1 - alpha / 2, diff.df) + stats.t.ppf(power, diff.df)) * diff.se)


def equivalent(diff: Difference, margin: float, alpha: float = ALPHA) -> bool:
    """Whether A and B are equivalent within ``margin``: both one-sided tests at ``alpha`` reject (the
    1 - 2 alpha interval of d lies inside (-margin, margin))."""
    if not (math.isfinite(diff.se) and math.isfinite(diff.mean) and margin > 0):
        return False
    half = float(stats.t.ppf(1 - alpha, diff.df)) * diff.se
    return abs(diff.mean) + half < margin


def seeds_needed(diff: Difference, margin: float, cap: int = 100) -> tuple[int | None, float | None]:
    """What would settle an undecided comparison: ``(seeds, prompt_factor)``, the seeds in all with which the
    observed difference would be detected with 80% power, or (when it is inside the margin) shown to be
    inside it; the seed part scales as 1/n and the prompt part stays (conservative). When no number of seeds
    up to ``cap`` does it, ``seeds`` is None and ``prompt_factor`` the multiple of today's test prompts that
    would (with ``cap`` seeds), None when even that does not."""
    if not diff.seeds_known or not math.isfinite(diff.se):
        return None, None
    per_seed = diff.seed_var * diff.n  # the variance of one seed's difference
    prompt = diff.prompt_var if math.isfinite(diff.prompt_var) else 0.0
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)
    targets = [abs(diff.mean) / z]
    if abs(diff.mean) < margin:
        targets.append((margin - abs(diff.mean)) / (stats.norm.ppf(1 - ALPHA) + stats.norm.ppf(POWER)))
    target = max(targets)  # the se that settles it one way or the other
    if target <= 0:
        return None, None
    for n in range(max(diff.n, 2), cap + 1):
        if per_seed / n + prompt <= target**2:
            return n, None
    room = target**2 - per_seed / cap
    if room <= 0 or prompt <= 0:
        return None, None
    return None, float(math.ceil(prompt / room * 10) / 10)


def draws(evidence: Sequence[Evidence], count: int = 20000, seed: int = 0) -> np.ndarray:
    """``count`` joint draws of the candidates' means (rows: draws, columns: candidates): a multivariate t
    centred on the means, with covariance S_seed/n + S_prompt/P where every candidate has the same seeds and
    per-prompt scores (the two-way decomposition, candidates' covariances kept: the pairing), else each
    candidate's own variance (its seeds' and its standard errors'); df the seeds' (n - 1, at least 1)."""
    k = len(evidence)
    means = np.array([e.mean for e in evidence], dtype=float)
    rng = np.random.default_rng(seed)
    seeds_sets = {tuple(sorted(map(str, e.seeds))) for e in evidence}
    n = min(e.n for e in evidence) if evidence else 0
    if len(seeds_sets) == 1 and n >= 2:
        order = [e.by_seed() for e in evidence]
        common = list(evidence[0].seeds)
        values = np.array([[e.values[o[s]] for s in common] for e, o in zip(evidence, order, strict=True)])
        cov = np.cov(values) / n if k > 1 else np.array([[np.var(values, ddof=1) / n]])
        rows = [[e.rows[o[s]] for s in common] for e, o in zip(evidence, order, strict=True)]
        lengths = {len(r) for side in rows for r in side if r is not None}
        if all(r is not None for side in rows for r in side) and len(lengths) == 1:
            columns = np.array([np.nanmean(np.vstack(side), axis=0) for side in rows])  # k x P
            keep = np.isfinite(columns).all(axis=0)
            columns = columns[:, keep]
            if columns.shape[1] >= 2:
                cov = cov + (np.cov(columns) if k > 1 else np.var(columns, ddof=1)) / columns.shape[1]
        else:
            ses = np.array(
                [np.nanmean(np.square(e.ses)) if np.isfinite(e.ses).any() else 0.0 for e in evidence]
            )
            cov = cov + np.diag(ses)
        df = float(n - 1)
    else:
        variances = []
        for e in evidence:
            seed_part = float(np.var(e.values, ddof=1)) / e.n if e.n >= 2 else 0.0
            finite = [s**2 for s in e.ses if math.isfinite(s)]
            variances.append(seed_part + (float(np.mean(finite)) if finite else 0.0))
        cov = np.diag(variances)
        df = float(max(n - 1, 1))
    cov = np.atleast_2d(cov) + np.eye(k) * 1e-12
    normal = rng.multivariate_normal(np.zeros(k), cov, size=count, method="eigh")
    scale = np.sqrt(rng.chisquare(df, size=(count, 1)) / df)
    return means + normal / scale


def probability_best(samples: np.ndarray, direction: str = "maximize") -> np.ndarray:
    """Each candidate's share of the draws (:func:`draws`) in which it is best."""
    best = np.argmax(samples, axis=1) if direction == "maximize" else np.argmin(samples, axis=1)
    return np.bincount(best, minlength=samples.shape[1]) / samples.shape[0]


def probability_within(samples: np.ndarray, index: int, margin: float, direction: str = "maximize") -> float:
    """The share of the draws in which candidate ``index`` is best or within ``margin`` of the best."""
    signed = samples if direction == "maximize" else -samples
    return float(np.mean(signed.max(axis=1) - signed[:, index] <= margin))
