"""Trial records and study settings kept in the study's storage, so that they travel with the study.

A trial's directory (its ``trial.json``, checkpoints and samples) lives on the machine that ran it; the
study's storage is shared. When a trial finishes, its record is stored on the Optuna trial as well (system
attributes, out of optuna-dashboard's view): the JSON, zlib-compressed and base64-encoded, in parts of at most
:data:`PART_CHARS` characters (Optuna's RDB schema keeps attribute values as TEXT, which MySQL caps at 64 KiB;
PostgreSQL and journal files have no such limit). The study's settings (``study.json``'s content) are a user
attribute of the study. ``python -m harness.leaderboard <storage URL>`` rebuilds the report from these alone
(:mod:`harness.sweep.results`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.records import TrialRecord, parse_record
from harness.sweep import study as st

if TYPE_CHECKING:
    import optuna

ATTR_RECORD = (
    "harness.record"  # system attr: {"encoding", "parts", "chars"}; the parts in "harness.record.<i>"
)
ATTR_SETTINGS = "harness.settings"  # study user attr: the study's settings (study.json's content)
PART_CHARS = 60_000
ENCODING = "zlib+base64"
MAX_CHARS = 16_000_000  # a record larger than this (encoded) is stored without its readable samples


def _encode(record: TrialRecord) -> str:
    text = json.dumps(record.to_dict(), default=str)
    return base64.b64encode(zlib.compress(text.encode("utf-8"), 6)).decode("ascii")


def encode_record(record: TrialRecord) -> dict[str, Any]:
    """The system attributes that hold ``record`` (see the module docstring), by key; a record too large even
    compressed is stored without its checkpoints' readable samples (marked ``"samples_left_out": true``)."""
    encoded = _encode(record)
    if len(encoded) > MAX_CHARS:
        checkpoints = [dataclasses.replace(c, samples=None) for c in record.checkpoints]
        encoded = _encode(dataclasses.replace(record, checkpoints=checkpoints, samples_left_out=True))
    parts = [encoded[i : i + PART_CHARS] for i in range(0, len(encoded), PART_CHARS)] or [""]
    attrs: dict[str, Any] = {f"{ATTR_RECORD}.{i}": part for i, part in enumerate(parts)}
    attrs[ATTR_RECORD] = {"encoding": ENCODING, "parts": len(parts), "chars": len(encoded)}
    return attrs


def decode_record(system_attrs: Mapping[str, Any]) -> TrialRecord | None:
    """The record stored in a trial's ``system_attrs`` by :func:`store_record` (None if none, or unreadable);
    a copy stored before schema version 2 (it has no ``schema_version``) is read as version 1."""
    meta = system_attrs.get(ATTR_RECORD)
    if not isinstance(meta, Mapping) or meta.get("encoding") != ENCODING:
        return None
    try:
        encoded = "".join(str(system_attrs[f"{ATTR_RECORD}.{i}"]) for i in range(int(meta["parts"])))
        data = json.loads(zlib.decompress(base64.b64decode(encoded)).decode("utf-8"))
        return parse_record(data, "a trial record kept in the study's storage", default_version=1)
    except (KeyError, ValueError, TypeError, zlib.error):  # RecordError is a ValueError
        return None


def store_record(study: optuna.Study, number: int, record: TrialRecord, settings: st.StudySettings) -> None:
    """Keep ``record`` on trial ``number`` of ``study`` (whose storage ``settings`` name), before the trial is
    told: Optuna refuses attributes on finished trials."""
    storage = st.open_storage(settings.storage)
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    for key, value in encode_record(record).items():
        storage.set_trial_system_attr(trial_id, key, value)


def store_settings(study: optuna.Study, settings: st.StudySettings) -> None:
    """Keep the study's settings (``study.json``'s content, password hidden) on the study."""
    data = settings.to_dict()
    if study.user_attrs.get(ATTR_SETTINGS) != data:
        study.set_user_attr(ATTR_SETTINGS, data)


def stored_settings(study: optuna.Study) -> st.StudySettings | None:
    """The settings :func:`store_settings` kept on ``study`` (None for a study without them)."""
    data = study.user_attrs.get(ATTR_SETTINGS)
    if not isinstance(data, Mapping):
        return None
    try:
        return st.StudySettings.from_dict(data)
    except TypeError:
        return None
