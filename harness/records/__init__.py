"""Trial records: the JSON file each trial leaves behind, and the only input of the leaderboard.

A record (:class:`TrialRecord`, with one :class:`Checkpoint` per checkpoint and small typed parts: its
:class:`TrialError`, :class:`ReferenceEvaluation`, :class:`SelectionPlan`, :class:`DataSummary`,
:class:`TrainSummary`, :class:`PeakMemory`, :class:`Host`, :class:`Rendering`) holds the config, method,
hyperparameters, per-checkpoint metrics, status (running, completed, failed, pruned or interrupted) with its
reason, timings, peak memory and library versions. It carries a schema version (:data:`SCHEMA_VERSION`; older
records are migrated on reading, :mod:`~harness.records.migration`), is written atomically (temporary file,
fsync, rename), and is read back with plain ``json``: nothing is unpickled (:mod:`~harness.records.io`).

Modules: ``base`` (how a part becomes JSON and back), ``parts`` (the small typed parts), ``trial`` (the record
and its checkpoints), ``io`` (reading and writing), ``migration`` (earlier versions), ``values`` (flattened
hyperparameters, library versions).

**Why dataclasses, not pydantic.** A record must be written back with exactly the keys and values it was read
with (the leaderboard is rebuilt bit-identically from old and new records): no coercion (pydantic would turn a
metric ``1`` into ``1.0`` in a ``dict[str, float]``), explicit control of which null keys are written, unknown
keys kept as they are. That is a few lines over the standard library's dataclasses
(:mod:`~harness.records.base`), which the rest of the code already uses for its declarations, and no
dependency.
"""

from __future__ import annotations

from harness.records.base import Part
from harness.records.io import (
    RecordError,
    atomic_write_text,
    final_checkpoint,
    find_record_files,
    load_records,
    parse_record,
    read_record,
    record_json,
    write_record,
)
from harness.records.parts import (
    DataSummary,
    Host,
    PeakMemory,
    ReferenceEvaluation,
    Rendering,
    SelectionPlan,
    SelectionResult,
    TokenizerRendering,
    TrainSummary,
    TrialError,
)
from harness.records.trial import RECORD_NAME, SCHEMA_VERSION, STATUSES, Checkpoint, TrialRecord
from harness.records.values import flatten, library_versions

__all__ = [
    "RECORD_NAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "Checkpoint",
    "DataSummary",
    "Host",
    "Part",
    "PeakMemory",
    "RecordError",
    "ReferenceEvaluation",
    "Rendering",
    "SelectionPlan",
    "SelectionResult",
    "TokenizerRendering",
    "TrainSummary",
    "TrialError",
    "TrialRecord",
    "atomic_write_text",
    "final_checkpoint",
    "find_record_files",
    "flatten",
    "library_versions",
    "load_records",
    "parse_record",
    "read_record",
    "record_json",
    "write_record",
]
