"""The Optuna study of a sweep: where it is stored, what it optimises, and what a trial's record tells it.

The sweep's settings are written to ``<sweep dir>/study.json`` (and kept on the study itself, with each
finished trial's record: :mod:`harness.sweep.stored`) so that each trial's own process (which reports
intermediate values and asks the pruner) and ``python -m harness.leaderboard`` open the same study. Storage is
an Optuna journal file in the sweep directory by default (Optuna advises against SQLite for parallel workers);
any storage URL (``postgresql://...`` for several machines) works too (:mod:`harness.sweep.storage`: drivers,
passwords, the schema race). A URL's password is never written: the settings hold its redacted form.

A trial's objective values are read from its record with the leaderboard's own rule
(:func:`harness.leaderboard.analysis.ranking.best_checkpoints`): the best checkpoint by the objective within
the KL budget, else the final one. Both the choice and the values told to Optuna are measured on the selection
prompts (``eval.selection``, :mod:`harness.trial.selection`), so Optuna never sees a score the leaderboard
reports (the reported prompts are the test set); records without selection metrics use their reported ones.
Optuna's best trial is the one whose chosen checkpoint is best on the selection prompts; the leaderboard ranks
by the test values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import settings_sweeper
from harness.config.settings_run import LEADERBOARD
from harness.errors import ConfigError
from harness.records import Checkpoint, TrialRecord, atomic_write_text

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

    from harness.config.setting import SettingsGroup

SETTINGS_NAME = "study.json"
JOURNAL_NAME = "optuna.journal"
# User attributes the harness keeps on Optuna trials (visible in optuna-dashboard).
ATTR_DIR = "harness.trial_dir"
ATTR_OVERRIDES = "harness.overrides"
ATTR_OWNER = "harness.owner"  # {"host", "pid", "started"} of the sweeper process that asked the trial
ATTR_RUNNER = "harness.runner"  # the same for the process that runs the trial
ATTR_HEARTBEAT = "harness.heartbeat"  # unix time, refreshed by the trial's process while it runs
ATTR_STATUS = "harness.status"  # the trial record's status (completed, pruned, failed)
ATTR_ERROR = "harness.error"
ATTR_STEP = "harness.step"  # the checkpoint step whose metrics were told (or the step pruned at)
ATTR_LOST = "harness.lost"  # the process running the trial died; the text says why we think so
ATTR_RETRY_OF = "harness.retry_of"  # the number of the lost trial this one retries
ATTR_RETRIED = "harness.retried_as"  # set on a lost trial once a retry is queued: it no longer counts
ATTR_SURPLUS = "harness.surplus"  # asked by a worker after the planned number was reached: not counted
ATTR_METHOD = "harness.method"  # the method the trial trains
ATTR_SAME_AS = "harness.same_as"  # not trained: told the result of this completed trial with equal parameters
ATTR_PLANNED = (
    "harness.planned_steps"  # the optimizer steps the trial's method announced (the pruner's warm-up)
)


# What a trial reports to the pruner after each checkpoint (``hydra.sweeper.prune_value``), with the words a
# pruned trial's reason uses for it: declared with the sweeper's settings
# (:mod:`harness.config.settings_sweeper`).
PRUNE_VALUES = settings_sweeper.PRUNE_VALUES
PRUNE_EMA = 0.5
SWEEPER = settings_sweeper.SWEEPER


def _default(group: SettingsGroup, name: str, kind: type) -> Any:
    """The declared default of ``<group>.<name>``, as ``kind``."""
    return kind(group.option(name).default)


@dataclass
class StudySettings:
    """What a sweep optimises and where its study lives; saved as ``study.json`` in the sweep directory."""

    study_name: str
    storage: str  # an Optuna storage URL, or a journal file path
    objectives: list[str]  # metric names, the first one resolved from "auto" when auto_objective
    directions: list[str]  # "maximize" / "minimize", one per objective
    # The defaults below are the declared ones (hydra.sweeper.*; kl_budget the leaderboard's), as the sweeper
    # types them. With kl_constraint, samplers are also told that a trial with no checkpoint within budget is
    # infeasible; pruner is the pruner's Hydra config (for the trials' processes); no pruning before
    # prune_warmup of a trial's planned steps; prune_by_method compares a trial with its own method's only;
    # prune_value is what each checkpoint reports to the pruner (PRUNE_VALUES); a RUNNING trial with no
    # heartbeat for stale_after_s is lost (any host) and run again up to max_retries times.
    kl_budget: float | None = _default(LEADERBOARD, "kl_budget", float)
    kl_constraint: bool = _default(SWEEPER, "kl_constraint", bool)
    pruner: dict[str, Any] = field(default_factory=dict)
    prune_warmup: float = _default(SWEEPER, "prune_warmup", float)
    prune_by_method: bool = _default(SWEEPER, "prune_by_method", bool)
    prune_value: str = _default(SWEEPER, "prune_value", str)
    heartbeat_s: float = _default(SWEEPER, "heartbeat_s", float)
    stale_after_s: float = _default(SWEEPER, "stale_after_s", float)
    max_retries: int = _default(SWEEPER, "max_retries", int)
    sweep_dir: str = ""
    auto_objective: bool = False  # the first objective is what "auto" resolved to (the best metric available)

    @property
    def multi_objective(self) -> bool:
        """Whether the study has several objectives (Optuna does not prune those)."""
        return len(self.objectives) > 1

    def save(self, sweep_dir: Path) -> Path:
        """Write the settings to ``<sweep_dir>/study.json`` (atomically, a storage URL's password hidden);
        returns the path."""
        path = Path(sweep_dir) / SETTINGS_NAME
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (``study.json``'s content), a storage URL's password hidden."""
        from harness.sweep.storage import redact

        return {**asdict(self), "storage": redact(self.storage)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudySettings:
        """Settings from :meth:`to_dict`'s data (unknown keys ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> StudySettings:
        """Read settings written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def check_objectives(
    objectives: Sequence[str], directions: Sequence[str] | None, declared: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """Objectives and directions, validated (one direction each; a single direction applies to all). With no
    directions given, each objective's ``declared`` direction (its metric's ``Metric.direction``), else
    maximize."""
    objectives = [str(o) for o in objectives] or ["auto"]
    directions = (
        [str(d).lower() for d in directions or ()] or [str(d) for d in declared or ()] or ["maximize"]
    )
    if len(directions) == 1 and len(objectives) > 1:
        directions = directions * len(objectives)
    bad = [d for d in directions if d not in ("maximize", "minimize")]
    if bad:
        raise ConfigError(f"hydra.sweeper.directions has {bad[0]!r}; use maximize or minimize.")
    if len(directions) != len(objectives):
        raise ConfigError(
            f"hydra.sweeper.objectives has {len(objectives)} entries but directions has "
            f"{len(directions)}; give one direction per objective."
        )
    return objectives, directions


def goal_text(objectives: Sequence[str], directions: Sequence[str]) -> str:
    """``"maximize gold_reward, minimize kl"``."""
    return ", ".join(f"{d} {o}" for o, d in zip(objectives, directions, strict=True))


def open_storage(storage: str) -> Any:
    """An Optuna storage for ``storage``: a journal file for a path (``*.journal``/``*.log`` or no scheme),
    else the URL as Optuna reads it (``sqlite:///...``, ``postgresql://...``, its password possibly redacted);
    see :func:`harness.sweep.storage.open_storage`."""
    from harness.sweep.storage import open_storage as opened

    return opened(storage)


def trial_handle(study: optuna.Study, storage: BaseStorage, number: int) -> optuna.trial.Trial:
    """A live :class:`optuna.trial.Trial` for trial ``number`` of ``study`` (opened on ``storage``), to report
    to it from another process; found through the storage's public lookup API."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


# ---------------------------------------------------------------------------------------------------
# Objective values from checkpoint metrics (the leaderboard's rule).
# ---------------------------------------------------------------------------------------------------


def choose_checkpoint(
    checkpoints: Sequence[Checkpoint],
    objectives: Sequence[str],
    kl_budget: float | None,
    direction: str = "maximize",
    declared: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """The checkpoint a trial is judged by (its metrics by column) and the column of its first objective.

    ``checkpoints`` are the record's (step, final, metrics, selection); ``declared`` the trial's metric
    declarations (``record.metric_declarations``), which map metric keys to columns. The rule is the
    leaderboard's: the best by the first objective on the selection prompts, in ``direction``, among
    checkpoints within the KL budget there, else the final one. The metrics on the selection prompts are the
    ``sel_<column>`` entries of the result.
    """
    from harness.leaderboard.analysis import frames as board_frames
    from harness.leaderboard.analysis import ranking

    declarations = dict(declared or {})
    record = TrialRecord(trial_id="t", checkpoints=list(checkpoints))
    frame = board_frames.checkpoints_frame([record], [], declarations)
    if frame.empty:
        return None, None
    try:
        name = ranking.resolve_objective(frame, objectives[0], declarations)
    except ConfigError:  # not measured (yet): no value
        return None, None
    best = ranking.best_checkpoints(ranking.annotate(frame, name, kl_budget, direction)).iloc[0]
    return {**best.to_dict(), "step": int(best["step"])}, name


def objective_values(
    checkpoints: Sequence[Checkpoint],
    settings: StudySettings,
    declared: Mapping[str, Any] | None = None,
) -> tuple[list[float] | None, int | None]:
    """The study's objective values for a trial with these evaluated checkpoints (``declared``: the trial's
    metric declarations), and the chosen step; (None, None) when a value is missing (nothing evaluated, or no
    such metric). The values are the chosen checkpoint's on the selection prompts
    (``checkpoints[i].selection``; its reported ones when it has none)."""
    from harness.leaderboard.analysis import columns

    direction = settings.directions[0] if settings.directions else "maximize"
    chosen, first = choose_checkpoint(
        checkpoints, settings.objectives, settings.kl_budget, direction, declared
    )
    if chosen is None:
        return None, None
    values = []
    for i, name in enumerate(settings.objectives):
        if i and name == "auto":
            raise ConfigError("objective 'auto' may only be the first objective; name the others (e.g. kl).")
        column = first if i == 0 else columns.column_of(name, dict(declared or {}))
        value = _selection_value(chosen, column)
        if _missing(value):
            value = chosen.get(column, chosen.get(name))
        if _missing(value):
            return None, chosen["step"]
        values.append(float(value))
    return values, chosen["step"]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _selection_value(chosen: Mapping[str, Any], column: str | None) -> Any:
    """The chosen checkpoint's value of ``column`` on the selection prompts (None when it has none)."""
    from harness.leaderboard.analysis.frames import SELECTION_PREFIX

    return chosen.get(f"{SELECTION_PREFIX}{column}") if column else None


def min_kl(checkpoints: Sequence[Checkpoint]) -> float | None:
    """The lowest KL over evaluated checkpoints, on the selection prompts where a checkpoint has them (None if
    none has a KL)."""
    kls = []
    for c in checkpoints:
        kl = (c.selection_metrics or {}).get("kl")
        kl = kl if kl is not None else c.metrics.get("kl")
        if kl is not None:
            kls.append(kl)
    return min(kls) if kls else None
