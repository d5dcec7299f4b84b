"""Ranking trials: the objective, each trial's best checkpoint within a KL budget, and the Pareto front.

The objective is a metric column, named or ``auto`` (the declared metric with the lowest objective priority
that the checkpoints have: the gold reward where the data defines one, else the reward-model score, ...; see
:mod:`harness.leaderboard.columns`), optimised in its declared direction. A trial is shown at its best
evaluated checkpoint among those whose KL to the reference is within the budget (10 nats by default, the top of
the seed's healthy band); a trial with no checkpoint inside the budget keeps its final checkpoint and ranks
after every trial that has one. A trial is Pareto-optimal when no other trial has an objective at least as good
at a KL at least as low (one of them strictly).
"""

from __future__ import annotations

import math

import pandas as pd

from harness.leaderboard import columns

DEFAULT_KL_BUDGET = 10.0


def resolve_objective(checkpoints: pd.DataFrame, objective: str, declared: columns.Declarations) -> str | None:
    """The objective column: ``objective`` itself (a metric key or column), or for ``auto`` the measured metric
    of lowest objective priority; None when nothing can rank the trials.

    :raises ConfigError: a named objective the records do not declare or measure, or one with no direction.
    """
    if objective in (None, "auto"):
        return columns.auto_objective(declared, checkpoints)
    available = [] if checkpoints.empty else list(checkpoints.columns)
    if checkpoints.empty:
        return columns.column_of(objective, declared)
    return columns.objective_column(objective, declared, available)


def annotate(checkpoints: pd.DataFrame, objective: str | None, kl_budget: float | None,
             direction: str = "maximize") -> pd.DataFrame:
    """``checkpoints`` with ``objective`` (the objective's values), ``score`` (the objective signed so that
    higher is better) and ``within_budget`` (KL unknown, or at most ``kl_budget``; all when it is None)."""
    if checkpoints.empty:
        return checkpoints
    inside: bool | pd.Series = True
    if kl_budget is not None and "kl" in checkpoints.columns:
        inside = checkpoints["kl"].isna() | (checkpoints["kl"] <= kl_budget)
    values = checkpoints[objective] if objective else pd.Series(math.nan, index=checkpoints.index)
    sign = -1.0 if direction == "minimize" else 1.0
    return checkpoints.assign(objective=values, score=values * sign, within_budget=inside)


def best_checkpoints(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """Each trial's chosen checkpoint among :func:`annotate`-d ``checkpoints``: the best by score among
    those within the budget, else its final one; one row per trial."""
    if checkpoints.empty:
        return checkpoints
    chosen = []
    for _, group in checkpoints.groupby("trial_id", sort=False):
        inside = group[group["within_budget"] & group["score"].notna()]
        if not inside.empty:
            chosen.append(inside.loc[inside["score"].idxmax()])
        else:
            chosen.append(group.sort_values("step").iloc[-1])
    return pd.DataFrame(chosen).reset_index(drop=True)


def pareto_front(scores: pd.Series, kls: pd.Series) -> pd.Series:
    """True for the rows no other row dominates (score >= and KL <=, one strictly); NaN rows are False."""
    result = pd.Series(False, index=scores.index)
    valid = scores.notna() & kls.notna()
    for i in scores.index[valid]:
        dominated = ((scores[valid] >= scores[i]) & (kls[valid] <= kls[i])
                     & ((scores[valid] > scores[i]) | (kls[valid] < kls[i]))).any()
        result[i] = not dominated
    return result


def rank_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed trials first (within budget, then outside it), each group by score, best first, with a
    1-based ``rank``; the other trials (failed, pruned, running) after them with no rank."""
    if trials.empty:
        return trials.assign(rank=pd.Series(dtype="Int64"))
    done = trials[trials["status"] == "completed"].copy()
    rest = trials[trials["status"] != "completed"]
    done["_outside"] = ~done["within_budget"].fillna(False).astype(bool)
    done = done.sort_values(["_outside", "score"], ascending=[True, False], na_position="last", kind="stable")
    done = done.drop(columns="_outside").assign(rank=range(1, len(done) + 1))
    ranked = pd.concat([done, rest.assign(rank=pd.NA)], ignore_index=True)
    ranked["rank"] = ranked["rank"].astype("Int64")
    return ranked[["rank", *[c for c in ranked.columns if c != "rank"]]]
