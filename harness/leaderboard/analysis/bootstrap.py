"""A 95% interval for a mean over seeds by bootstrap over seeds and test prompts.

Every seed of a method is scored on the same test prompts, so a draw resamples the seeds with replacement and,
once for all of them, the prompts: where each seed's value comes with its per-prompt scores (the records'
``prompt_scores``, the same prompts in the same order), a draw's value is the mean over the drawn seeds of
their mean over the drawn prompts, so a hard or easy draw of prompts moves every seed together, as it would on
another set of test prompts. Where some seed has no per-prompt scores (records from before they were kept, a
value read from a line to the reference model, whose per-prompt scores are not kept), the prompt part is drawn
from each value's standard error instead (the normal limit of resampling its prompts), independently per seed.
The interval is the 2.5 and 97.5 percentiles of the draws. With one seed only the evaluation noise remains
(the seeds are missing). A bootstrap over a handful of seeds is too narrow, so with two seeds or more the
interval is widened to contain the seeds-only t interval, mean ± t(0.975, n - 1) · s / sqrt(n): never narrower
than the seeds alone allow. The draws use a fixed random seed, so a report is the same every time it is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

#: Bootstrap draws per interval, and the random seed they use (reports are reproducible).
DRAWS = 4000
SEED = 0


def interval(
    values: Sequence[float],
    ses: Sequence[float] | None = None,
    draws: int = DRAWS,
    seed: int = SEED,
    prompts: Sequence[np.ndarray | None] | None = None,
) -> tuple[float, float]:
    """The 95% interval ``(low, high)`` of the mean of ``values`` (one per seed) as the module docstring
    says: by resampling seeds and the shared test prompts when every seed has its per-prompt scores
    (``prompts``, one array per seed, the same prompts in order), else with the standard errors ``ses``
    (missing ones count as 0); ``(nan, nan)`` without a finite value, or for one seed without a standard error
    or prompt scores."""
    v = np.asarray(values, dtype=float)
    se = np.zeros_like(v) if ses is None else np.nan_to_num(np.asarray(ses, dtype=float), nan=0.0)
    keep = np.isfinite(v)
    matrix = _prompt_matrix(prompts, keep)
    v, se = v[keep], np.abs(se[keep])
    n = len(v)
    if n == 0 or (n == 1 and se[0] == 0 and matrix is None):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(draws, n))
    if matrix is not None:  # seeds and prompts resampled together: one draw of prompts for every seed
        seed_weights = np.zeros((draws, n))
        np.add.at(seed_weights, (np.arange(draws)[:, None], picks), 1.0 / n)
        p = matrix.shape[1]
        prompt_picks = rng.integers(0, p, size=(draws, p))
        prompt_weights = np.zeros((draws, p))
        np.add.at(prompt_weights, (np.arange(draws)[:, None], prompt_picks), 1.0 / p)
        means = ((seed_weights @ matrix) * prompt_weights).sum(axis=1)
    else:
        means = (v[picks] + rng.standard_normal((draws, n)) * se[picks]).mean(axis=1)
    low, high = (float(x) for x in np.quantile(means, [0.025, 0.975]))
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
        low, high = min(low, float(v.mean()) - half), max(high, float(v.mean()) + half)
    return low, high


def _prompt_matrix(prompts: Sequence[np.ndarray | None] | None, keep: np.ndarray) -> np.ndarray | None:
    """The kept seeds' per-prompt scores as one seeds x prompts matrix; None unless every kept seed has them,
    all finite and of one length."""
    if prompts is None or len(prompts) != len(keep):
        return None
    rows = [prompts[i] for i in range(len(keep)) if keep[i]]
    if not rows or any(r is None for r in rows):
        return None
    arrays = [np.asarray(r, dtype=float) for r in rows]
    if (
        len({len(a) for a in arrays}) != 1
        or len(arrays[0]) < 2
        or not all(np.isfinite(a).all() for a in arrays)
    ):
        return None
    return np.vstack(arrays)
