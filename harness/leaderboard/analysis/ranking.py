"""Ranking trials: the objective, each trial's best checkpoint within a KL budget, and the Pareto front.

The objective is a metric column, named or ``auto`` (the declared metric with the lowest objective priority
that the checkpoints have: the gold reward where the data defines one, else the reward-model score, ...; see
:mod:`harness.leaderboard.analysis.columns`), optimised in its declared direction. A trial is shown at its
best evaluated checkpoint among those whose KL to the reference is within the budget (10 nats by default, the
top of the seed's healthy band); a trial with no checkpoint inside the budget keeps its final checkpoint and
ranks after every trial that has one. A trial is Pareto-optimal when no other trial has an objective at least
as good at a KL at least as low (one of them strictly).

The checkpoint is *chosen* on the selection prompts (``sel_<objective>`` and ``sel_kl``, see
:mod:`harness.trial.selection`) and *shown* with its scores on the reported (test) prompts, which took no part
in the choice; a checkpoint without selection metrics (records from before selection existed, or
``eval.selection.num_prompts=0``) is chosen on its reported ones, as before.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.leaderboard.analysis import columns
from harness.leaderboard.analysis.frames import SELECTION_PREFIX

DEFAULT_KL_BUDGET = 10.0


def resolve_objective(
    checkpoints: pd.DataFrame, objective: str, declared: columns.Declarations
) -> str | None:
    """The objective column: ``objective`` itself (a metric key or column), or for ``auto`` the measured
    metric of lowest objective priority; None when nothing can rank the trials.

    :raises ConfigError: a named objective the records do not declare or measure, or one with no direction.
    """
    if objective in (None, "auto"):
        return columns.auto_objective(declared, checkpoints)
    available = [] if checkpoints.empty else list(checkpoints.columns)
    if checkpoints.empty:
        return columns.column_of(objective, declared)
    return columns.objective_column(objective, declared, available)


def _column(checkpoints: pd.DataFrame, name: str | None) -> pd.Series:
    """Column ``name`` of ``checkpoints``, or NaN everywhere when there is no such column."""
    if name and name in checkpoints.columns:
        return checkpoints[name].astype(float)
    return pd.Series(math.nan, index=checkpoints.index)


def _inside(kl: pd.Series, kl_budget: float | None) -> pd.Series:
    """KL unknown, or at most ``kl_budget`` (everything when it is None)."""
    if kl_budget is None:
        return pd.Series(True, index=kl.index)
    return kl.isna() | (kl <= kl_budget)


def annotate(
    checkpoints: pd.DataFrame, objective: str | None, kl_budget: float | None, direction: str = "maximize"
) -> pd.DataFrame:
    """``checkpoints`` with ``objective`` (the objective's values), ``score`` (the objective signed so that
    higher is better) and ``within_budget`` (KL unknown, or at most ``kl_budget``; all when it is None), all
    on the reported prompts; and what the choice uses: ``selection_objective``, ``selection_score`` and
    ``selection_within`` (the same on the selection prompts, each falling back to the reported value where a
    checkpoint has no selection value)."""
    if checkpoints.empty:
        return checkpoints
    values, kl = _column(checkpoints, objective), _column(checkpoints, "kl")
    chosen_on = _column(checkpoints, f"{SELECTION_PREFIX}{objective}" if objective else None)
    chosen_on = chosen_on.where(chosen_on.notna(), values)
    selection_kl = _column(checkpoints, f"{SELECTION_PREFIX}kl")
    sign = -1.0 if direction == "minimize" else 1.0
    return checkpoints.assign(
        objective=values,
        score=values * sign,
        within_budget=_inside(kl, kl_budget),
        selection_objective=chosen_on,
        selection_score=chosen_on * sign,
        selection_within=_inside(selection_kl.where(selection_kl.notna(), kl), kl_budget),
    )


def best_checkpoints(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """Each trial's chosen checkpoint among :func:`annotate`-d ``checkpoints``: the best by selection score
    among those within the budget by their selection KL, else its final one; one row per trial, with its
    reported metrics. Its ``within_budget`` says whether the choice found a checkpoint within the budget."""
    if checkpoints.empty:
        return checkpoints
    score = "selection_score" if "selection_score" in checkpoints.columns else "score"
    within = "selection_within" if "selection_within" in checkpoints.columns else "within_budget"
    chosen = []
    for _, group in checkpoints.groupby("trial_id", sort=False):
        inside = group[group[within].astype(bool) & group[score].notna()]
        if not inside.empty:
            row = inside.loc[inside[score].idxmax()].copy()
        else:
            row = group.sort_values("step").iloc[-1].copy()
        row["within_budget"] = bool(row[within])
        chosen.append(row)
    return pd.DataFrame(chosen).reset_index(drop=True)


def pareto_front(scores: pd.Series, kls: pd.Series) -> pd.Series:
    """True for the rows no other row dominates (score >= and KL <=, one strictly); NaN rows are False."""
    result = pd.Series(False, index=scores.index)
    valid = scores.notna() & kls.notna()
    for i in scores.index[valid]:
        dominated = (
            (scores[valid] >= scores[i])
            & (kls[valid] <= kls[i])
            & ((scores[valid] > scores[i]) | (kls[valid] < kls[i]))
        ).any()
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
