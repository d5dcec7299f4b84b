"""Repeated settings over seeds: mean and 95% confidence interval, and which differences are significant.

Trials that share a method and every swept hyperparameter but the seed form one setting. Its objective and KL
are summarised by the mean and a t-based 95% confidence interval over seeds; settings are ranked by mean
objective, and each is compared with the best one by Welch's t-test (``p_vs_best``): a p-value of 0.05 or more
means the difference from the best setting is not significant at that level (``same_as_best``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from scipy import stats

ALPHA = 0.05


def mean_ci95(values: pd.Series) -> tuple[float, float]:
    """Mean and half-width of the 95% t confidence interval (NaN half-width for fewer than two values)."""
    v = values.dropna().astype(float)
    if v.empty:
        return math.nan, math.nan
    if len(v) < 2:
        return float(v.mean()), math.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def welch_p(a: pd.Series, b: pd.Series) -> float:
    """Two-sided Welch t-test p-value between two samples (NaN when either has fewer than two values)."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if a.std(ddof=1) == 0 and b.std(ddof=1) == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def aggregate_seeds(trials: pd.DataFrame, swept: Sequence[str], direction: str = "maximize") -> pd.DataFrame:
    """One row per setting (method + swept hyperparameters but the seed) of the completed ``trials``, with
    ``n_seeds``, ``objective_mean``/``objective_ci95``, ``kl_mean``/``kl_ci95``, ``p_vs_best`` and
    ``same_as_best``, ranked by mean objective in its ``direction`` (best first); empty when no setting was run
    with more than one seed."""
    done = trials[trials["status"] == "completed"] if not trials.empty else trials
    keys = ["method", *[k for k in swept if k != "seed" and k in done.columns]]
    if done.empty or "seed" not in done.columns:
        return pd.DataFrame()
    groups = list(done.groupby(keys, dropna=False, sort=False))
    if all(len(g) < 2 for _, g in groups):
        return pd.DataFrame()
    rows = []
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True))
        row["n_seeds"] = len(group)
        row["objective_mean"], row["objective_ci95"] = mean_ci95(group["objective"])
        if "kl" in group:
            row["kl_mean"], row["kl_ci95"] = mean_ci95(group["kl"])
        row["_values"] = group["objective"]
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("objective_mean", ascending=direction == "minimize",
                                           kind="stable").reset_index(drop=True)
    best = table.loc[0, "_values"]
    table["p_vs_best"] = [math.nan if i == 0 else welch_p(best, v) for i, v in enumerate(table["_values"])]
    table["same_as_best"] = [i == 0 or (not math.isnan(p) and p >= ALPHA) for i, p in enumerate(table["p_vs_best"])]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.drop(columns="_values")
