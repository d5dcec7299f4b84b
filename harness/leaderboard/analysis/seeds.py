"""Repeated settings over seeds: means with 95% confidence intervals that include evaluation noise and are
never narrower than the seeds alone allow, diverged seeds counted, and which differences from the best are
significant after Holm's correction.

Trials that share a method and every swept hyperparameter but the seed form one *setting*. A seed is
*diverged* (:func:`diverged`) when its objective or KL is not finite, its training loss became NaN or infinite
(a failed trial), or its KL went above the health band (the ``kl_high`` flag, or KL over
:data:`harness.evaluation.health.KL_HIGH` nats at the checkpoint shown).

**A diverged seed counts.** It counts in ``n_seeds`` and in the setting's score (``objective_mean``, the mean
over all seeds, which ranks), contributing the *worse* of its measured value at its chosen checkpoint and the
reference (untrained) model's value (:func:`contributed`): the reference's value when nothing finite was
measured (a NaN loss leaves no model to score: running the method gave no gain), its own value when that is
worse (the harm a user running it would get). A diverged run is never kept, so a value above the reference
(say a reward pushed up past the KL health band) is not a gain the method can claim; counting it as "no gain"
means divergence can lower a score but never raise it. ``survivors_mean`` is the mean over the seeds that did
not diverge (what the method gives when it trains), and ``diverged`` ("k of n") the share diverged.

**Intervals.** The mean over n seeds, with seed standard deviation s and per-trial standard errors se_i of the
objective (its declared SE column, e.g. ``gold_se``), has variance

    Var(mean) = s² / n + mean(se_i²)

All seeds are scored on the same prompts with the same sampling stream, so evaluation error does not average
out over seeds; adding it whole is conservative. Two intervals are computed and the **larger** is reported:

- the seeds-only t interval, t(0.975, n - 1) · s / √n: exact (for normal seeds) for the mean over training
  seeds on these test prompts, whatever the evaluation noise;
- the interval with evaluation noise, t(0.975, df) · sqrt(Var), with a Welch–Satterthwaite df that treats the
  evaluation part as known, df = (n - 1) · (Var / (s²/n))² (the normal quantile with one seed).

The second alone can be narrower than the first: a large evaluation part raises df, and with 2 or 3 seeds the
drop of the t quantile (12.7 at one df, 2.0 at many) outweighs the added variance, while the small s² that
lets df grow is itself a one- or two-df estimate. The larger of the two keeps both guarantees and costs
nothing to compute (a bootstrap over seeds and prompts would need every prompt's score, which records keep for
the readable samples only). Two means are compared by a Welch-type t-test on the summed variances (df
likewise), whose p-value is likewise never below Welch's test on the seeds alone (:func:`compare`); methods
that share prompts and seeds are compared paired (:mod:`harness.leaderboard.analysis.paired`). The p-values
of the k - 1 comparisons with the best are Holm-adjusted (:func:`holm`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from harness.evaluation.health import KL_HIGH

ALPHA = 0.05
NONFINITE_LOSS = re.compile(r"loss became [-+]?(nan|inf)", re.IGNORECASE)


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds and its variance: ``seed_var`` = s²/n (NaN for one seed), ``eval_var`` =
    mean(se_i²) (NaN when no trial has a standard error)."""

    mean: float
    n: int
    seed_var: float = math.nan
    eval_var: float = math.nan

    @property
    def var(self) -> float:
        """Var(mean) = s²/n + mean(se_i²), from the parts that are known (NaN when neither is)."""
        parts = [v for v in (self.seed_var, self.eval_var) if not math.isnan(v)]
        return float(sum(parts)) if parts and self.n else math.nan

    @property
    def df(self) -> float:
        """Welch–Satterthwaite degrees of freedom, the evaluation part counted as known (infinite df)."""
        if math.isnan(self.seed_var) or self.seed_var == 0:
            return math.inf
        return (self.n - 1) * (self.var / self.seed_var) ** 2

    @property
    def seeds_ci95(self) -> float:
        """Half-width of the seeds-only t interval, t(0.975, n - 1) · s / √n (NaN for one seed)."""
        if math.isnan(self.seed_var) or self.n < 2:
            return math.nan
        return float(stats.t.ppf(0.975, self.n - 1) * math.sqrt(self.seed_var))

    @property
    def noise_ci95(self) -> float:
        """Half-width of the interval with evaluation noise, t(0.975, df) · sqrt(Var) (NaN when the variance
        is unknown)."""
        return (
            float(stats.t.ppf(0.975, self.df) * math.sqrt(self.var)) if not math.isnan(self.var) else math.nan
        )

    @property
    def ci95(self) -> float:
        """Half-width of the reported 95% interval: the larger of :attr:`seeds_ci95` and :attr:`noise_ci95`
        (whichever is known; NaN when neither is)."""
        known = [w for w in (self.seeds_ci95, self.noise_ci95) if not math.isnan(w)]
        return max(known) if known else math.nan


def _numbers(values: pd.Series | None, index: pd.Index) -> pd.Series:
    if values is None:
        return pd.Series(math.nan, index=index, dtype=float)
    return pd.to_numeric(values, errors="coerce").astype(float)


def estimate(values: pd.Series, ses: pd.Series | None = None) -> Estimate:
    """The :class:`Estimate` of the finite ``values`` (one per seed) with their standard errors ``ses``."""
    v = _numbers(values, values.index)
    keep = np.isfinite(v)
    v, se = v[keep], _numbers(ses, values.index)[keep]
    if v.empty:
        return Estimate(math.nan, 0)
    se = se[np.isfinite(se)]
    seed_var = float(v.var(ddof=1)) / len(v) if len(v) > 1 else math.nan
    return Estimate(float(v.mean()), len(v), seed_var, float((se**2).mean()) if len(se) else math.nan)


def mean_ci95(values: pd.Series, ses: pd.Series | None = None) -> tuple[float, float]:
    """Mean and half-width of the 95% interval (see :func:`estimate`;
    NaN half-width for one value and no SE)."""
    e = estimate(values, ses)
    return e.mean, e.ci95


def two_sided(diff: float, var: float, df: float) -> float:
    """Two-sided p-value of a t-test of ``diff`` with variance ``var`` on ``df`` degrees of freedom (1 or 0
    when the variance is 0)."""
    if var == 0:
        return 1.0 if diff == 0 else 0.0
    return float(2 * stats.t.sf(abs(diff) / math.sqrt(var), df))


def compare(a: Estimate, b: Estimate) -> float:
    """Two-sided p-value of a Welch-type t-test of ``a.mean - b.mean`` on Var(a) + Var(b), never below that of
    Welch's t-test on the seeds alone (s²/n of each, when both have two seeds or more); NaN when either
    variance is unknown; 1 or 0 when the variance is 0."""
    var = a.var + b.var
    if math.isnan(var):
        return math.nan
    diff = a.mean - b.mean
    den = sum(e.seed_var**2 / (e.n - 1) for e in (a, b) if e.n > 1 and not math.isnan(e.seed_var))
    p = two_sided(diff, var, var**2 / den if den > 0 else math.inf)
    if all(e.n > 1 and not math.isnan(e.seed_var) for e in (a, b)):
        seeds_var = a.seed_var + b.seed_var
        p = max(p, two_sided(diff, seeds_var, seeds_var**2 / den if den > 0 else math.inf))
    return p


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` (NaN entries are not tests and stay NaN): the i-th smallest
    of m becomes max over j <= i of min(1, (m - j + 1) · p_(j))."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for j, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - j) * p))
        adjusted[i] = running
    return adjusted


def _has_flag(health: object, flag: str) -> bool:
    return isinstance(health, str) and flag in {f.strip() for f in health.split(",")}


def diverged(trials: pd.DataFrame) -> pd.Series:
    """Whether each trial diverged: completed with a non-finite objective or KL (each only when some trial has
    a value of it), KL above the health band (``kl_high``, or KL > KL_HIGH at its checkpoint), or failed
    because its training loss became NaN or infinite."""
    status = trials["status"] if "status" in trials else pd.Series("completed", index=trials.index)
    objective, kl = _numbers(trials.get("objective"), trials.index), _numbers(trials.get("kl"), trials.index)
    bad = kl > KL_HIGH
    for values in (objective, kl):  # a metric no trial measured does not make every trial diverged
        if values.notna().any():
            bad |= ~np.isfinite(values)
    if "health" in trials:
        bad |= trials["health"].map(lambda h: _has_flag(h, "kl_high")).astype(bool)
    reason = trials["reason"] if "reason" in trials else pd.Series(None, index=trials.index, dtype=object)
    nan_loss = (status == "failed") & reason.map(
        lambda r: isinstance(r, str) and bool(NONFINITE_LOSS.search(r))
    )
    return ((status == "completed") & bad) | nan_loss


def setting_keys(trials: pd.DataFrame, swept: Sequence[str]) -> list[str]:
    """The columns that identify a setting: the method and every swept hyperparameter but the seed."""
    return ["method", *[k for k in swept if k != "seed" and k in trials.columns]]


def seeded_pool(trials: pd.DataFrame, swept: Sequence[str]) -> pd.DataFrame:
    """The completed and diverged trials with a ``_diverged`` column; empty unless some setting was run with
    two seeds or more."""
    if trials.empty or "seed" not in trials.columns or "objective" not in trials.columns:
        return pd.DataFrame()
    flags = diverged(trials)
    done = trials["status"] == "completed" if "status" in trials else pd.Series(True, index=trials.index)
    pool = trials[done | flags].assign(_diverged=flags)
    if pool.empty or pool.groupby(setting_keys(pool, swept), dropna=False).size().max() < 2:
        return pd.DataFrame()
    return pool


def contributed(
    group: pd.DataFrame, column: str, baseline: float | None = None, direction: str = "maximize"
) -> pd.Series:
    """Each seed's value of ``column`` as it counts in a setting's all-seeds mean (``group`` from
    :func:`seeded_pool`): its own for a seed that did not diverge; for a diverged seed the worse, in
    ``direction``, of its measured value and ``baseline`` (the reference model's value): the baseline when
    nothing finite was measured, the measured value when no baseline is known (NaN when neither is)."""
    values = _numbers(group.get(column), group.index)
    values = values.where(np.isfinite(values))
    base = pd.Series(math.nan if baseline is None else float(baseline), index=group.index)
    worse = np.fmin(values, base) if direction == "maximize" else np.fmax(values, base)
    return values.where(~group["_diverged"].astype(bool), worse)


def setting_estimate(
    group: pd.DataFrame,
    column: str,
    se_column: str | None,
    baseline: float | None = None,
    direction: str = "maximize",
    survivors: bool = False,
) -> Estimate:
    """The :class:`Estimate` of ``column`` over a setting's seeds (``group`` from :func:`seeded_pool`): every
    seed, a diverged one counted at its :func:`contributed` value (``baseline``: the reference model's value;
    ``direction``: which way is worse), or with ``survivors`` only the seeds that did not diverge."""
    if column not in group:
        return Estimate(math.nan, 0)
    kept = group[~group["_diverged"]] if survivors else group
    values = kept[column] if survivors else contributed(kept, column, baseline, direction)
    return estimate(values, kept[se_column] if se_column and se_column in kept else None)


def every_seed_diverged(group: pd.DataFrame) -> bool:
    """Whether every seed of a setting (``group`` from :func:`seeded_pool`) diverged."""
    return bool(group["_diverged"].all())


def rank(table: pd.DataFrame, column: str, direction: str, last: str) -> pd.DataFrame:
    """``table`` sorted by ``column`` in ``direction`` (NaN last), the rows where ``last`` is true after the
    others, renumbered from 0."""
    ordered = table.sort_values(column, ascending=direction == "minimize", na_position="last", kind="stable")
    return ordered.sort_values(last, kind="stable").reset_index(drop=True)


def _setting_row(
    keys: list[str],
    key: object,
    group: pd.DataFrame,
    se: tuple[str | None, str | None],
    baseline: float | None,
    direction: str,
) -> dict[str, object]:
    row: dict[str, object] = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
    row["n_seeds"] = len(group)
    row["diverged"] = f"{int(group['_diverged'].sum())} of {len(group)}"
    row["_estimate"] = objective = setting_estimate(group, "objective", se[0], baseline, direction)
    row["_all_diverged"] = every_seed_diverged(group)
    row["objective_mean"], row["objective_ci95"] = objective.mean, objective.ci95
    row["survivors_mean"] = setting_estimate(group, "objective", se[0], survivors=True).mean
    if "kl" in group:
        kl = setting_estimate(group, "kl", se[1], survivors=True)
        row["kl_mean"], row["kl_ci95"] = kl.mean, kl.ci95
    return row


def aggregate_seeds(
    trials: pd.DataFrame,
    swept: Sequence[str],
    direction: str = "maximize",
    objective_se: str | None = None,
    kl_se: str | None = None,
    baseline: float | None = None,
) -> pd.DataFrame:
    """One row per setting (method + swept hyperparameters but the seed) of the completed and diverged
    ``trials``: ``n_seeds``, ``diverged`` ("k of n"), ``objective_mean``/``objective_ci95`` over every seed (a
    diverged one at its :func:`contributed` value, ``baseline`` being the reference model's objective),
    ``survivors_mean`` (over the seeds that did not diverge), ``kl_mean``/``kl_ci95`` (over those too; 95%
    intervals with the evaluation noise of the SE columns ``objective_se`` and ``kl_se``, never narrower than
    the seeds-only t interval), ``p_vs_best`` (against rank 1), ``p_holm`` (Holm-adjusted over those
    comparisons) and ``same_as_best`` (``p_holm`` >= 0.05 and no seed diverged); ranked by
    ``objective_mean`` in its ``direction`` (best first, settings with every seed diverged last and never
    compared); empty when no setting was run with more than one seed."""
    pool = seeded_pool(trials, swept)
    if pool.empty:
        return pd.DataFrame()
    keys = setting_keys(pool, swept)
    rows = [
        _setting_row(keys, key, group, (objective_se, kl_se), baseline, direction)
        for key, group in pool.groupby(keys, dropna=False, sort=False)
    ]
    table = rank(pd.DataFrame(rows), "objective_mean", direction, "_all_diverged")
    estimates, dead = list(table.pop("_estimate")), list(table.pop("_all_diverged"))
    p = [
        math.nan if i == 0 or d else compare(estimates[0], e)
        for i, (e, d) in enumerate(zip(estimates, dead, strict=True))
    ]
    table["p_vs_best"], table["p_holm"] = p, holm(p)
    clean = table["diverged"].str.startswith("0 of")
    table["same_as_best"] = [
        c and not math.isnan(e.mean) and (i == 0 or q >= ALPHA)
        for i, (e, q, c) in enumerate(zip(estimates, table["p_holm"], clean, strict=True))
    ]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table
