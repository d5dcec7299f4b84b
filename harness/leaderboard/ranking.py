"""Ranking trials: the objective, each trial's best checkpoint within a KL budget, and the Pareto front.

The default objective is the reward (the gold reward where the data defines one, else the reward-model
score), maximised over a trial's evaluated checkpoints whose KL to the reference is within the budget (10 nats
by default, the top of the seed's healthy band). A trial with no checkpoint inside the budget keeps its final
checkpoint and ranks after every trial that has one. A trial is Pareto-optimal when no other trial has a
reward at least as high at a KL at least as low (one of them strictly).
"""

from __future__ import annotations

import math

import pandas as pd

from harness.errors import ConfigError

# The default objective: the first present in the records (reward-model trials rank by held-out accuracy).
REWARD_COLUMNS = ("gold_reward", "rm_score", "rm_acc")
DEFAULT_KL_BUDGET = 10.0


def resolve_objective(checkpoints: pd.DataFrame, objective: str = "auto") -> str | None:
    """The objective column: ``objective`` itself, or for ``auto`` the gold reward if any checkpoint has one,
    else the reward-model score; None when nothing can rank the trials. A ConfigError for an unknown column."""
    if objective != "auto":
        if not checkpoints.empty and objective not in checkpoints.columns:
            raise ConfigError(f"Unknown leaderboard objective '{objective}'; use auto or one of: "
                              f"{', '.join(c for c in checkpoints.columns if c not in ('trial_id', 'method'))}.")
        return objective
    for name in REWARD_COLUMNS:
        if name in checkpoints.columns and checkpoints[name].notna().any():
            return name
    return None


def annotate(checkpoints: pd.DataFrame, objective: str | None, kl_budget: float | None) -> pd.DataFrame:
    """``checkpoints`` with an ``objective`` column (the objective's values) and ``within_budget`` (KL unknown,
    or at most ``kl_budget``; every checkpoint when the budget is None)."""
    if checkpoints.empty:
        return checkpoints
    inside = True if kl_budget is None else checkpoints["kl"].isna() | (checkpoints["kl"] <= kl_budget)
    return checkpoints.assign(objective=checkpoints[objective] if objective else math.nan, within_budget=inside)


def best_checkpoints(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """Each trial's chosen checkpoint among :func:`annotate`-d ``checkpoints``: the best by objective among
    those within the budget, else its final one; one row per trial."""
    if checkpoints.empty:
        return checkpoints
    chosen = []
    for _, group in checkpoints.groupby("trial_id", sort=False):
        inside = group[group["within_budget"] & group["objective"].notna()]
        if not inside.empty:
            chosen.append(inside.loc[inside["objective"].idxmax()])
        else:
            chosen.append(group.sort_values("step").iloc[-1])
    return pd.DataFrame(chosen).reset_index(drop=True)


def pareto_front(rewards: pd.Series, kls: pd.Series) -> pd.Series:
    """True for the rows no other row dominates (reward >= and KL <=, one strictly); NaN rows are False."""
    result = pd.Series(False, index=rewards.index)
    valid = rewards.notna() & kls.notna()
    for i in rewards.index[valid]:
        dominated = ((rewards[valid] >= rewards[i]) & (kls[valid] <= kls[i])
                     & ((rewards[valid] > rewards[i]) | (kls[valid] < kls[i]))).any()
        result[i] = not dominated
    return result


def rank_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed trials first (within budget, then outside it), each group by objective, best first, with a
    1-based ``rank``; the other trials (failed, pruned, running) after them with no rank."""
    if trials.empty:
        return trials.assign(rank=pd.Series(dtype="Int64"))
    done = trials[trials["status"] == "completed"].copy()
    rest = trials[trials["status"] != "completed"]
    done["_outside"] = ~done["within_budget"].fillna(False).astype(bool)
    done = done.sort_values(["_outside", "objective"], ascending=[True, False], na_position="last", kind="stable")
    done = done.drop(columns="_outside").assign(rank=range(1, len(done) + 1))
    ranked = pd.concat([done, rest.assign(rank=pd.NA)], ignore_index=True)
    ranked["rank"] = ranked["rank"].astype("Int64")
    return ranked[["rank", *[c for c in ranked.columns if c != "rank"]]]
