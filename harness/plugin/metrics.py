"""What an evaluator declares about each value it returns: :class:`Metric`, checked on creation.

A metric's declaration says what the value means (direction, unit in its help), where it shows (leaderboard
column, headline table or only ``checkpoints.csv``), where its standard error is, and whether ``auto`` may
pick it as the objective. The leaderboard, the objective resolution (:mod:`harness.config.metrics`) and the
registration checks (:mod:`harness.plugin.checks`) read these declarations; an
:class:`~harness.plugin.specs.EvaluatorSpec` lists them. Like the specs, it checks its fields when it is
created and raises :class:`harness.errors.PluginError` naming the field, the value and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from harness.plugin.settings import check_name, reject

Direction = Literal["maximize", "minimize"]
DIRECTIONS = ("maximize", "minimize")

_METRIC = re.compile(r"^[A-Za-z0-9_*][A-Za-z0-9_./*-]*$")


@dataclass(frozen=True)
class Metric:
    """A value an evaluator returns for each checkpoint.

    Attributes:
        name: the key in the evaluator's result; ``*`` matches any text, for metrics named after their
            settings (``lm_eval/*/acc``).
        help: one line: what it measures and its unit (the report's glossary and column tooltips).
        direction: ``"maximize"`` or ``"minimize"`` when higher or lower is better (it may then be the
            leaderboard's or Optuna's objective); ``None`` for a descriptive value (length, entropy).
        column: its leaderboard column (default: the name).
        headline: shown as a column of the leaderboard's ranked tables;
            every metric is in ``checkpoints.csv``.
        se: the key of its standard error, when the evaluator returns one.
        objective_priority: when the objective is ``auto``, the leaderboard ranks by the metric with the
            lowest priority among those the checkpoints have (``None``: never chosen automatically).
    """

    name: str
    help: str = ""
    direction: Direction | None = None
    column: str | None = None
    headline: bool = False
    se: str | None = None
    objective_priority: int | None = None

    def __post_init__(self) -> None:
        owner = f"Metric {self.name!r}"
        check_name(owner, "name", self.name, _METRIC)
        if self.direction not in (*DIRECTIONS, None):
            reject(owner, f"direction {self.direction!r} is invalid; use 'maximize', 'minimize' or None.")
        if self.column is not None:
            check_name(owner, "column", self.column, _METRIC)
        if self.objective_priority is not None and self.direction is None:
            reject(owner, "an objective_priority needs a direction (maximize or minimize).")

    @property
    def label(self) -> str:
        """The leaderboard column."""
        return self.column or self.name

    def matches(self, key: str) -> bool:
        """Whether the metric key (or column name) ``key`` is this metric."""
        return fnmatchcase(key, self.name) or (self.column is not None and fnmatchcase(key, self.column))

    def to_record(self, evaluator: str) -> dict[str, Any]:
        """The declaration as stored in trial records (the leaderboard reads it from there)."""
        return {
            "evaluator": evaluator,
            "help": self.help,
            "direction": self.direction,
            "column": self.label,
            "headline": self.headline,
            "se": self.se,
            "objective_priority": self.objective_priority,
        }
