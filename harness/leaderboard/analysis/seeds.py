"""Repeated settings over seeds: means with 95% confidence intervals that include evaluation noise, diverged
seeds, and which differences from the best are significant after Holm's correction.

Trials that share a method and every swept hyperparameter but the seed form one *setting*. A seed is
*diverged* (:func:`diverged`) when its objective or KL is not finite, its training loss became NaN or infinite
(a failed trial), or its KL went above the health band (the ``kl_high`` flag, or KL over
:data:`harness.evaluation.health.KL_HIGH` nats at the checkpoint shown); diverged seeds are counted
(``diverged``: "k of n") and left out of the means.

The mean over the other n seeds, with seed standard deviation s and per-trial standard errors se_i of the
objective (its declared SE column, e.g. ``gold_se``), has variance

    Var(mean) = s² / n + mean(se_i²)

All seeds are scored on the same prompts with the same sampling stream, so evaluation error does not average
out over seeds; adding it whole is conservative. The 95% interval is mean ± t(0.975, df) · sqrt(Var) with a
Welch–Satterthwaite df that treats the evaluation part as known: df = (n - 1) · (Var / (s²/n))², which is n -
1 without standard errors and grows to the normal quantile as evaluation noise dominates (one seed: the normal
interval on its SE). Two means are compared by a Welch-type t-test on the summed variances (df likewise; with
no standard errors it is exactly Welch's test), and the p-values of the k - 1 comparisons with the best are
Holm-adjusted (:func:`holm`).
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
    def ci95(self) -> float:
        """Half-width of the 95% interval (NaN when the variance is unknown)."""
        return (
            float(stats.t.ppf(0.975, self.df) * math.sqrt(self.var)) if not math.isnan(self.var) else math.nan
        )


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


def compare(a: Estimate, b: Estimate) -> float:
    """Two-sided p-value of a Welch-type t-test of ``a.mean - b.mean`` on Var(a) + Var(b) (NaN when either
    variance is unknown; 1 or 0 when both are 0)."""
    var = a.var + b.var
    if math.isnan(var):
        return math.nan
    diff = a.mean - b.mean
    if var == 0:
        return 1.0 if diff == 0 else 0.0
    den = sum(e.seed_var**2 / (e.n - 1) for e in (a, b) if e.n > 1 and not math.isnan(e.seed_var))
    df = var**2 / den if den > 0 else math.inf
    return float(2 * stats.t.sf(abs(diff) / math.sqrt(var), df))


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


def setting_estimate(group: pd.DataFrame, column: str, se_column: str | None) -> Estimate:
    """The :class:`Estimate` of ``column`` over a setting's non-diverged seeds (``group`` from
    :func:`seeded_pool`)."""
    kept = group[~group["_diverged"]]
    if column not in kept:
        return Estimate(math.nan, 0)
    return estimate(kept[column], kept[se_column] if se_column and se_column in kept else None)


def _setting_row(
    keys: list[str], key: object, group: pd.DataFrame, objective_se: str | None, kl_se: str | None
) -> dict[str, object]:
    row: dict[str, object] = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
    row["n_seeds"] = len(group)
    row["diverged"] = f"{int(group['_diverged'].sum())} of {len(group)}"
    row["_estimate"] = objective = setting_estimate(group, "objective", objective_se)
    row["objective_mean"], row["objective_ci95"] = objective.mean, objective.ci95
    if "kl" in group:
        kl = setting_estimate(group, "kl", kl_se)
        row["kl_mean"], row["kl_ci95"] = kl.mean, kl.ci95
    return row


def aggregate_seeds(
    trials: pd.DataFrame,
    swept: Sequence[str],
    direction: str = "maximize",
    objective_se: str | None = None,
    kl_se: str | None = None,
) -> pd.DataFrame:
    """One row per setting (method + swept hyperparameters but the seed) of the completed and diverged
    ``trials``: ``n_seeds``, ``diverged`` ("k of n", left out of the means),
    ``objective_mean``/``objective_ci95`` and ``kl_mean``/``kl_ci95`` (95% intervals with the evaluation noise
    of the SE columns ``objective_se`` and ``kl_se``), ``p_vs_best`` (against rank 1), ``p_holm``
    (Holm-adjusted over those comparisons) and ``same_as_best`` (``p_holm`` >= 0.05); ranked by mean objective
    in its ``direction`` (best first, settings with every seed diverged last); empty when no setting was run
    with more than one seed."""
    pool = seeded_pool(trials, swept)
    if pool.empty:
        return pd.DataFrame()
    keys = setting_keys(pool, swept)
    rows = [
        _setting_row(keys, key, group, objective_se, kl_se)
        for key, group in pool.groupby(keys, dropna=False, sort=False)
    ]
    table = (
        pd.DataFrame(rows)
        .sort_values("objective_mean", ascending=direction == "minimize", na_position="last", kind="stable")
        .reset_index(drop=True)
    )
    estimates = list(table.pop("_estimate"))
    p = [math.nan if i == 0 else compare(estimates[0], e) for i, e in enumerate(estimates)]
    table["p_vs_best"], table["p_holm"] = p, holm(p)
    table["same_as_best"] = [
        not math.isnan(e.mean) and (i == 0 or q >= ALPHA)
        for i, (e, q) in enumerate(zip(estimates, table["p_holm"], strict=True))
    ]
    table.insert(0, "rank", range(1, len(table) + 1))
    return table
