"""What the report must say before anything else: an objective with no value in any trial, and the metrics
evaluators withheld (with their reasons, e.g. a judge whose verdicts were unusable).

A named objective (``leaderboard.objective``, ``--objective`` or an Optuna study's) that the records declare
but no checkpoint measured does not stop the report: the trials are listed unranked under
:func:`objective_problem`'s sentence, and the command line exits with :data:`EXIT_NO_OBJECTIVE`. Withheld
metrics come from the checkpoints' ``withheld_metrics`` (:meth:`harness.plugin.EvalContext.withhold`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harness.leaderboard.analysis import columns, ranking
from harness.leaderboard.analysis.frames import trial_id
from harness.records import TrialRecord

#: The exit status of a run whose report was written but whose objective has no value in any trial (0 is
#: success, 1 a failed trial or a bug, 2 a user error before any compute, 3 records of several setups).
EXIT_NO_OBJECTIVE = 4


def resolve_objective(
    checkpoints: pd.DataFrame, objective: str, records: Sequence[TrialRecord], declared: columns.Declarations
) -> tuple[str | None, str | None]:
    """The objective column (:func:`harness.leaderboard.analysis.ranking.resolve_objective`) and, when there
    is none to rank by, the report's problem (:func:`objective_problem`): a named objective declared but
    measured by no checkpoint is no error, the report is written with the problem at its top.

    :raises ConfigError: a named objective that no record declares, or one without a direction."""
    try:
        name = ranking.resolve_objective(checkpoints, objective, declared)
    except columns.ObjectiveNotMeasured:
        name = None
    return name, None if name else objective_problem(objective, records, declared, list(checkpoints))


def withheld(records: Sequence[TrialRecord], declared: columns.Declarations) -> list[dict[str, object]]:
    """One row per trial and withheld metric: ``trial_id``, ``step`` (the last checkpoint that withheld it),
    ``column`` (its leaderboard column), ``metric`` and ``reason``; on the reported prompts, else the
    selection prompts."""
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for record in records:
        for checkpoint in record.checkpoints:
            selection = checkpoint.selection.withheld_metrics if checkpoint.selection else None
            for key, reason in {**(selection or {}), **(checkpoint.withheld_metrics or {})}.items():
                rows[(trial_id(record), key)] = {
                    "trial_id": trial_id(record),
                    "step": checkpoint.step,
                    "column": columns.column_of(key, declared),
                    "metric": key,
                    "reason": reason,
                }
    return list(rows.values())


def objective_problem(
    objective: str | None,
    records: Sequence[TrialRecord],
    declared: columns.Declarations,
    available: Sequence[str],
) -> str | None:
    """The sentence at the top of a report whose ``objective`` has no value in any trial: in how many trials
    its evaluator withheld it and why, and what to do (``available``: the measured columns that could rank
    instead). For ``auto``, which found nothing to rank by: the sentence about the withheld metric ``auto``
    would have chosen, None when no such metric was withheld."""
    rows = withheld(records, declared)
    if objective in (None, "auto"):
        ranked = sorted(
            (int(d["objective_priority"]), str(r["column"]))
            for r in rows
            if (d := columns.by_column(declared, [str(r["column"])]).get(str(r["column"])) or {}).get(
                "objective_priority"
            )
            is not None
        )
        if not ranked:
            return None
        column, label = ranked[0][1], f"auto ({ranked[0][1]})"
    else:
        column, label = columns.column_of(objective, declared), objective
    rows = [r for r in rows if column in (r["column"], r["metric"])]
    evaluated = [r for r in records if any(c.metrics for c in r.checkpoints)]
    if rows:
        reasons = list(dict.fromkeys(str(r["reason"]) for r in rows))
        evaluator = (columns.by_column(declared, [column]).get(column) or {}).get("evaluator", "its")
        why = (
            f"the {evaluator} evaluator withheld it in {len(rows)} of {len(evaluated)} trials: {reasons[0]}"
            f"{f' (and {len(reasons) - 1} other reasons)' if len(reasons) > 1 else ''}"
        )
    else:
        why = f"its evaluator returned none in {len(evaluated)} trials (e.g. for lack of a reward model)"
    others = columns.candidates(declared, available)
    instead = f" (one of: {', '.join(others)})" if others else ""
    return (
        f"objective {label} has no value in any trial: {why}; the trials are listed unranked. Fix the "
        f"evaluator's settings and run again, or rank by another metric with "
        f"leaderboard.objective=<metric>{instead}."
    )
