"""The per-trial table (each trial at its chosen checkpoint beside its baseline, cost and status, ranked, the
Pareto front marked) and the measured cost per method."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from harness.leaderboard.analysis import budgets, columns, ranking
from harness.leaderboard.analysis import frames as board_frames
from harness.records import TrialRecord

# Checkpoint columns used only to choose the checkpoint (its values on the selection prompts):
# not per-trial columns.
CHOICE_ONLY = ("selection_score", "selection_within")


def trials_table(
    records: Sequence[TrialRecord],
    checkpoints: pd.DataFrame,
    swept: Sequence[str],
    declared: columns.Declarations,
    objective: str | None,
) -> pd.DataFrame:
    """One row per trial: its chosen checkpoint's metrics (see
    :func:`harness.leaderboard.analysis.ranking.best_checkpoints`; the checkpoints are
    :func:`harness.leaderboard.analysis.ranking.annotate`-d) beside the trial's baseline
    (``base_<objective>``), cost and status; ranked, with the Pareto front marked. The checkpoint is chosen on
    the selection prompts, its metrics are the reported (test) ones; ``selection_objective`` (hidden) is its
    objective on the selection prompts (the reported one for records without selection metrics)."""
    best = ranking.best_checkpoints(checkpoints)
    by_trial = {row["trial_id"]: row for row in best.to_dict("records")} if not best.empty else {}
    rows = []
    for r in records:
        info = board_frames.trial_info(r, swept)
        chosen = by_trial.get(info["trial_id"], {})
        metrics = {
            k: v
            for k, v in chosen.items()
            if k not in ("trial_id", "method", "health", *swept, *CHOICE_ONLY)
            and not str(k).startswith(board_frames.SELECTION_PREFIX)
        }  # shown: reported (test) values
        base = (
            {f"base_{objective}": columns.metric_row(info["base"], declared).get(objective)}
            if objective
            else {}
        )
        rows.append(
            {
                **{k: info[k] for k in ("trial_id", "method", *swept)},
                **metrics,
                **base,
                **{k: v for k, v in info.items() if k not in ("trial_id", "method", "base", *swept)},
            }
        )
    df = pd.DataFrame(rows)
    for column, default in (
        ("objective", math.nan),
        ("score", math.nan),
        ("within_budget", False),
        ("step", pd.NA),
        ("kl", math.nan),
        ("selection_objective", math.nan),
    ):
        if column not in df.columns:
            df[column] = default
    done = df["status"] == "completed"
    df["pareto"] = ranking.pareto_front(df["score"].where(done), df["kl"].where(done))
    return ranking.rank_trials(df)


def cost_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Measured cost per method over its completed trials: mean train seconds, peak memory, models held."""
    done = trials[trials["status"] == "completed"] if not trials.empty else trials
    if done.empty:
        return pd.DataFrame()
    grouped = done.groupby("method", sort=True)
    cost = pd.DataFrame(
        {
            "trials": grouped.size(),
            "train_s_mean": grouped["train_s"].mean(),
            "peak_mem_mb_max": grouped["peak_mem_mb"].max(),
            "models_in_memory": grouped["models"].max(),
        }
    ).reset_index()
    return budgets.add_to_cost(cost, done)  # and each method's mean compute budget
