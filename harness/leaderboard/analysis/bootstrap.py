"""A 95% interval for a mean over seeds by bootstrap over seeds and evaluation noise.

Records keep per-prompt scores only for their first few readable samples (``eval.readable_samples``), not
for every prompt of every checkpoint, so the prompt part of the bootstrap is drawn from each value's standard
error (the normal limit of resampling its prompts): each draw resamples the seeds with replacement and adds to
each drawn seed's value a normal error with that seed's standard error; the interval is the 2.5 and 97.5
percentiles of the draws' means. With one seed only the evaluation noise remains (the seeds are missing). A
bootstrap over a handful of seeds is too narrow, so with two seeds or more the interval is widened to contain
the seeds-only t interval, mean ± t(0.975, n - 1) · s / sqrt(n): never narrower than the seeds alone allow.
The draws use a fixed random seed, so a report is the same every time it is built.
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
    values: Sequence[float], ses: Sequence[float] | None = None, draws: int = DRAWS, seed: int = SEED
) -> tuple[float, float]:
    """The 95% interval ``(low, high)`` of the mean of ``values`` (one per seed) with their standard errors
    ``ses`` (missing ones count as 0), as the module docstring says; ``(nan, nan)`` without a finite value, or
    for one seed without a standard error."""
    v = np.asarray(values, dtype=float)
    se = np.zeros_like(v) if ses is None else np.nan_to_num(np.asarray(ses, dtype=float), nan=0.0)
    keep = np.isfinite(v)
    v, se = v[keep], np.abs(se[keep])
    n = len(v)
    if n == 0 or (n == 1 and se[0] == 0):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(draws, n))
    means = (v[picks] + rng.standard_normal((draws, n)) * se[picks]).mean(axis=1)
    low, high = (float(x) for x in np.quantile(means, [0.025, 0.975]))
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
        low, high = min(low, float(v.mean()) - half), max(high, float(v.mean()) + half)
    return low, high
