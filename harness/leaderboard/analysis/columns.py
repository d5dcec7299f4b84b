"""Metric columns from what the evaluators declared: names, directions, meanings, which are headlines.

Every trial record carries its evaluators' metric declarations (``record.metric_declarations``, written from
each :class:`~harness.plugin.metrics.Metric`), so the leaderboard stays a pure function of records: a plugin's
metric becomes a column (headline metrics in the ranked tables, every metric in ``checkpoints.csv``), may be
the objective, and explains itself in the report's glossary without the plugin being installed. A record
written before declarations existed (or a metric no declaration matches) shows its metrics by their keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, UnknownNameError
from harness.records import TrialRecord

if TYPE_CHECKING:
    import pandas as pd


class ObjectiveNotMeasured(ConfigError):
    """A named objective the records declare but no checkpoint measured (the leaderboard reports the trials
    unranked and says so at the top: :mod:`harness.leaderboard.analysis.problems`)."""


Declarations = dict[str, dict[str, Any]]  # declared metric name (maybe a * pattern) -> its declaration


def declarations(records: Iterable[TrialRecord]) -> Declarations:
    """The metric declarations of ``records``, merged (the first record declaring a name wins)."""
    merged: Declarations = {}
    for record in records:
        for name, declaration in (record.metric_declarations or {}).items():
            merged.setdefault(name, dict(declaration))
    return merged


def declaration_of(key: str, declared: Declarations) -> tuple[str, dict[str, Any]] | None:
    """``(declared name, declaration)`` of metric ``key``
    (its exact name, else the first matching pattern)."""
    if key in declared:
        return key, declared[key]
    return next(((name, d) for name, d in declared.items() if "*" in name and fnmatchcase(key, name)), None)


def column_of(key: str, declared: Declarations) -> str:
    """The column of metric ``key``: its declared column; a pattern-declared or undeclared metric
    keeps its key."""
    found = declaration_of(key, declared)
    if found is None or "*" in found[0]:
        return key
    return str(found[1].get("column") or key)


def metric_row(metrics: Mapping[str, Any], declared: Declarations) -> dict[str, Any]:
    """One checkpoint's ``metrics`` keyed by their columns."""
    return {column_of(key, declared): value for key, value in metrics.items()}


def by_column(declared: Declarations, columns: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The declaration of each of ``columns`` that is a metric column."""
    out = {}
    for column in columns:
        exact = next((d for d in declared.values() if d.get("column") == column), None)
        found = exact or (declaration_of(column, declared) or (None, None))[1]
        if found is not None:
            out[column] = found
    return out


def headline_columns(declared: Declarations, columns: Sequence[str]) -> list[str]:
    """Which of ``columns`` are headline metrics, in ``columns`` order; with no declarations at all (old
    records), every column is."""
    if not declared:
        return list(columns)
    notes = by_column(declared, columns)
    return [c for c in columns if notes.get(c, {}).get("headline")]


def objective_column(objective: str, declared: Declarations, available: Sequence[str]) -> str:
    """The column of a named objective (a metric key or column), checked against the declarations.

    :raises ConfigError: a metric no record declares or measured, or one without a direction;
        :class:`ObjectiveNotMeasured` for one declared but measured by no checkpoint.
    """
    column = column_of(objective, declared)
    if column not in available and objective in available:
        column = objective
    declaration = by_column(declared, [column]).get(column)
    if declaration is not None and declaration.get("direction") is None:
        raise ConfigError(
            f"objective {objective!r} is a descriptive metric (no better or worse direction); choose "
            f"one of: {', '.join(candidates(declared, available))}."
        )
    if column not in available and declaration is not None:
        raise ObjectiveNotMeasured(
            f"objective {objective!r} has no value in any checkpoint (its evaluator returned none, e.g. "
            f"for lack of a reward model); choose one of: {', '.join(candidates(declared, available))}."
        )
    if column not in available:
        raise UnknownNameError(
            "leaderboard objective",
            objective,
            candidates(declared, available),
            hint="(Metrics the trials' evaluators declare with a direction, or auto.)",
        )
    return column


def candidates(declared: Declarations, available: Sequence[str]) -> list[str]:
    """The columns among ``available`` that may be objectives
    (declared with a direction; all when none is)."""
    if not declared:
        return [c for c in available if c not in ("trial_id", "method", "step", "final", "health")]
    notes = by_column(declared, available)
    return [c for c in available if notes.get(c, {}).get("direction")]


def se_column_of(column: str | None, declared: Declarations, available: Sequence[str] = ()) -> str | None:
    """The column of ``column``'s standard error: its declared ``se`` metric's column (a ``*`` pattern filled
    in), else ``<column>_se`` for undeclared metrics; None when that column is not among ``available``."""
    if not column:
        return None
    declaration = by_column(declared, [column]).get(column) or {}
    se = str(declaration.get("se") or f"{column}_se")
    found = declaration_of(column, declared)
    if found and "*" in found[0] and "*" in se:
        prefix, suffix = found[0].split("*", 1)
        name = se.replace("*", column[len(prefix) : len(column) - len(suffix)], 1)
    else:
        name = column_of(se, declared)
    return name if name in available else None


def undeclared_se(declared: Declarations, shown: Sequence[str], available: Sequence[str]) -> dict[str, str]:
    """Metric column -> the column of its standard error, for the metrics among ``shown`` whose declared
    ``se`` key is not declared as a metric of its own (a plugin's may not be; the built-in evaluators declare
    theirs, which then show or not as declared), where that column is among ``available``."""
    out = {}
    for column, declaration in by_column(declared, shown).items():
        se = se_column_of(column, declared, available) if declaration.get("se") else None
        if se and not by_column(declared, [se]):
            out[column] = se
    return out


# Before metrics were declared, these ranked trials when the objective was auto.
_LEGACY_AUTO = ("gold_reward", "rm_score", "rm_acc")


def auto_objective(declared: Declarations, checkpoints: pd.DataFrame) -> str | None:
    """The column ``auto`` ranks by: the measured metric with the lowest ``objective_priority`` (the gold
    reward, else the reward-model score, ...); None when no checkpoint has one."""
    ranked = sorted(
        (d["objective_priority"], str(d.get("column") or name))
        for name, d in declared.items()
        if d.get("objective_priority") is not None
    )
    order = [column for _, column in ranked] or list(_LEGACY_AUTO)
    return next((c for c in order if c in checkpoints.columns and checkpoints[c].notna().any()), None)


def direction_of(column: str | None, declared: Declarations) -> str:
    """``"maximize"`` or ``"minimize"`` for an objective column (maximize when undeclared)."""
    if column is None:
        return "maximize"
    return str(by_column(declared, [column]).get(column, {}).get("direction") or "maximize")
