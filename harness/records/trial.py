"""The trial record (:class:`TrialRecord`) and its checkpoint entries (:class:`Checkpoint`).

A trial's record is what its ``trial.json`` holds: how it ran (status, error, timings, memory, host,
versions), what it was (method, hyperparameters, config, overrides, sweep) and what it measured (the reference
evaluation and one :class:`Checkpoint` per checkpoint taken). The runner builds and updates one; the
leaderboard, the sweeps and the ``harness_trial_end`` hook read it. Fields are read as attributes
(``record.status``, ``record.checkpoints[-1].metrics``); ``record["status"]`` and ``record.get("status")``
still return what the JSON file holds under that key (:class:`~harness.records.base.MappingView`), for code
written against the old dict form. Reading and writing: :mod:`harness.records.io`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.records.base import MappingView, Part
from harness.records.parts import (
    DataSummary,
    Host,
    PeakMemory,
    ReferenceEvaluation,
    Rendering,
    SelectionPlan,
    SelectionResult,
    TrainSummary,
    TrialError,
)

SCHEMA_VERSION = 2
RECORD_NAME = "trial.json"
STATUSES = ("running", "completed", "failed", "pruned", "interrupted")


@dataclass(eq=True)
class Checkpoint(MappingView, Part):
    """One checkpoint of a trial (``record.checkpoints[i]``; :mod:`harness.trial.checkpoints`).

    ``step``: the optimizer step; ``final``: the final model; ``path``: its saved weights (None: not saved);
    ``metrics``: its metrics by key ({} until evaluated). An evaluated one also has the seconds per evaluator
    (``eval_breakdown_s``), its readable samples (``samples``), the policy's per-sample scores on every
    held-out prompt by score name (``prompt_scores``: the paired tests' data), the evaluators that failed on
    it (``evaluator_errors``: evaluator, plugin, type, message) and its non-finite metrics
    (``nonfinite_metrics``: key -> evaluator) and the metrics its evaluators withheld
    (``withheld_metrics``: key -> why, e.g. "unusable (31/32 verdicts unusable)"), each only when there is one
    (:mod:`harness.evaluation.failures`), its evaluation on the selection prompts (``selection``), the seconds
    its evaluation took (``eval_seconds``) and its health flags (``health``)."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("step", "final", "path", "metrics")
    PARTS: ClassVar[dict[str, type[Part]]] = {"selection": SelectionResult}

    step: int
    final: bool = False
    path: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    eval_breakdown_s: dict[str, float] | None = None
    samples: list[dict[str, Any]] | None = None
    prompt_scores: dict[str, list[float | None]] | None = None
    evaluator_errors: list[dict[str, Any]] | None = None
    nonfinite_metrics: dict[str, str] | None = None
    withheld_metrics: dict[str, str] | None = None
    selection: SelectionResult | None = None
    eval_seconds: float | None = None
    health: list[str] | None = None

    @property
    def selection_metrics(self) -> dict[str, float] | None:
        """Its metrics on the selection prompts (None: not evaluated there)."""
        return self.selection.metrics if self.selection is not None else None


@dataclass(eq=True)
class TrialRecord(MappingView, Part):
    """A trial's record: the content of its ``trial.json`` (schema version :data:`SCHEMA_VERSION`).

    What the trial was: ``trial_id`` (``<sweep>/<job>``, else its directory), ``method`` with its
    ``method_description``, ``loss_notes``, ``paper_names`` and ``data_kind``, ``models_in_memory``,
    ``hyperparameters`` (dotted keys), the command line's ``overrides``, the ``sweep`` it belongs to (name,
    dir, job, parallel), ``trial_dir`` and the resolved ``config``. How it ran: ``status`` (one of
    :data:`STATUSES`) and ``error`` (:class:`TrialError`, None when completed), ``timings`` (seconds by
    phase), ``peak_memory``, ``versions`` (Python and libraries), ``host``, ``started_at``/``finished_at``
    (ISO 8601, UTC), the history of earlier runs of the trial (``attempts``, oldest first: status, reason,
    step, host, start and end times) and plugins that raised (``plugin_errors``: plugin, hook, type, message).
    What it measured: the ``reference`` evaluation, the ``checkpoints``, ``train`` (:class:`TrainSummary`),
    ``data`` (:class:`DataSummary`), the evaluators' ``metric_declarations``, the number of reported prompts
    (``eval_prompts``), the ``selection`` plan, the trial's ``health`` flags (flag, message, fix, steps), the
    ``stages`` it used (:mod:`harness.trial.stages`) and the reward model found by a plugin
    (``eval_reward_model``), how its models render text (``rendering``, :class:`Rendering`).
    ``samples_left_out``: a copy stored without its readable samples (too large).
    ``path``: the file it was read from (not written; ``record["_path"]`` in the dict view)."""

    ALWAYS: ClassVar[tuple[str, ...]] = (
        "trial_id",
        "status",
        "error",
        "method",
        "method_description",
        "loss_notes",
        "paper_names",
        "data_kind",
        "models_in_memory",
        "hyperparameters",
        "overrides",
        "sweep",
        "trial_dir",
        "config",
        "reference",
        "checkpoints",
        "train",
        "timings",
        "peak_memory",
        "versions",
        "host",
        "started_at",
        "finished_at",
    )
    PARTS: ClassVar[dict[str, type[Part]]] = {
        "error": TrialError,
        "reference": ReferenceEvaluation,
        "checkpoints": Checkpoint,
        "train": TrainSummary,
        "peak_memory": PeakMemory,
        "host": Host,
        "data": DataSummary,
        "selection": SelectionPlan,
        "rendering": Rendering,
    }
    #: Lists written only when they hold something.
    WHEN_NOT_EMPTY: ClassVar[tuple[str, ...]] = ("attempts", "plugin_errors")

    trial_id: str | None = None
    status: str = "running"
    error: TrialError | None = None
    method: str | None = None
    method_description: str | None = None
    loss_notes: str | None = None
    paper_names: dict[str, str] = field(default_factory=dict)
    data_kind: str | None = None
    models_in_memory: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    sweep: dict[str, Any] | None = None
    trial_dir: str | None = None
    config: dict[str, Any] | None = None
    reference: ReferenceEvaluation | None = None
    checkpoints: list[Checkpoint] = field(default_factory=list)
    train: TrainSummary = field(default_factory=TrainSummary)
    timings: dict[str, float] = field(default_factory=dict)
    peak_memory: PeakMemory | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    host: Host | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    data: DataSummary | None = None
    metric_declarations: dict[str, dict[str, Any]] | None = None
    eval_reward_model: str | None = None
    eval_prompts: int | None = None
    selection: SelectionPlan | None = None
    health: list[dict[str, Any]] | None = None
    plugin_errors: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] | None = None
    samples_left_out: bool | None = None
    rendering: Rendering | None = None
    path: Path | None = field(default=None, compare=False)

    def field_names(self) -> list[str]:
        """The fields that are keys of the JSON form (``path`` is where it was read from, not a key)."""
        return [name for name in super().field_names() if name != "path"]

    def written(self, name: str, value: Any) -> bool:
        """Whether field ``name`` is written: see :class:`~harness.records.base.Part`; the lists of
        :data:`WHEN_NOT_EMPTY` only when not empty."""
        if name in self.WHEN_NOT_EMPTY:
            return bool(value)
        return super().written(name, value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what ``trial.json`` holds), its ``schema_version`` first."""
        return {"schema_version": SCHEMA_VERSION, **super().to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:  # type: ignore[override]
        """The record a JSON object of the current schema describes (``schema_version`` and ``_path`` are not
        fields; older versions: :func:`harness.records.io.read_record` migrates them first)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a trial record must be a JSON object, got {type(data).__name__}")
        record = cls._from_fields({k: v for k, v in data.items() if k not in ("schema_version", "_path")})
        if data.get("_path"):
            record.path = Path(str(data["_path"]))
        return record

    def _keys(self) -> list[str]:
        return ["schema_version", *super()._keys(), *(["_path"] if self.path is not None else [])]

    def _value(self, key: str) -> Any:
        if key == "schema_version":
            return SCHEMA_VERSION
        if key == "_path" and self.path is not None:
            return str(self.path)
        return super()._value(key)

    def final_checkpoint(self) -> Checkpoint | None:
        """The final checkpoint (the last evaluated one if none is marked final; None if there is none)."""
        final = [c for c in self.checkpoints if c.final]
        evaluated = [c for c in self.checkpoints if c.metrics]
        return (final or evaluated or [None])[-1]

    def checkpoint_at(self, step: int) -> Checkpoint | None:
        """The checkpoint taken at ``step``, if any."""
        return next((c for c in self.checkpoints if c.step == step), None)

    @property
    def reference_metrics(self) -> dict[str, float] | None:
        """The reference evaluation's metrics (None when the reference was not evaluated)."""
        return self.reference.metrics if self.reference is not None else None

    @property
    def error_message(self) -> str | None:
        """The error's one-line message (None for a completed trial)."""
        return self.error.message if self.error is not None else None
