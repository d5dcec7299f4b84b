"""Records of earlier schema versions, read into the current one.

Schema version 1 (every record written before the typed :class:`~harness.records.trial.TrialRecord`) has the
same layout as version 2: the same keys holding the same values. Version 1 was a dict filled as a trial went,
so a record written by an older harness may lack keys added since (``loss_notes``, ``paper_names``,
``models_in_memory``, ``metric_declarations``, ``selection``, ``health``, ...); version 2 is written from the
typed record, so every key of :data:`~harness.records.trial.TrialRecord.ALWAYS` is present (null or empty when
unknown) and the others appear once known. Migrating a version 1 record is therefore reading its keys into the
typed record, whose defaults fill what is missing: the leaderboard reads the same values from either.

A later layout change adds a step to :data:`STEPS` (version -> function giving the next version's dict).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.records.trial import SCHEMA_VERSION


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: the layout is the same; the typed record fills the keys a version 1 record lacks."""
    return {**data, "schema_version": 2}


#: version -> the step that turns a record of that version into one of the next.
STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a record's JSON object) at the current schema version.

    :raises ValueError: its ``schema_version`` is neither the current one nor one :data:`STEPS` migrates."""
    version = data.get("schema_version")
    while version != SCHEMA_VERSION:
        step = STEPS.get(version) if isinstance(version, int) and not isinstance(version, bool) else None
        if step is None:
            readable = ", ".join(str(v) for v in [*STEPS, SCHEMA_VERSION])
            raise ValueError(f"schema version {version!r} is not supported (this harness reads {readable})")
        data = step(data)
        version = data.get("schema_version")
    return data
