"""Reading and writing trial records: the only place a ``trial.json`` is parsed or produced.

:func:`write_record` validates the status and writes the record's JSON form atomically (temporary file, fsync,
rename: readers see the old file or the new one, never a partial one). :func:`read_record` parses a file with
plain ``json`` (nothing is unpickled), migrates a record of an earlier schema version
(:mod:`harness.records.migration`) and returns a :class:`~harness.records.trial.TrialRecord`; a corrupt file,
a foreign object or an unknown version raises :class:`RecordError`. :func:`load_records` reads every record
under some paths, skipping unusable files with a warning.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.records.migration import migrate
from harness.records.redaction import redact_value
from harness.records.trial import RECORD_NAME, STATUSES, Checkpoint, TrialRecord

#: Keys every record file must hold (a file without them is not a trial record).
REQUIRED = ("status", "method", "hyperparameters", "checkpoints")


class RecordError(ValueError):
    """A record file that cannot be used (corrupt JSON, unknown schema, missing fields)."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files; reports and records are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_json(record: TrialRecord | Mapping[str, Any]) -> str:
    """The text of ``record``'s file (a mapping is read as a record of the current version first).

    :raises ValueError: its status is not one of :data:`STATUSES`. :raises TypeError: a value is not JSON."""
    typed = record if isinstance(record, TrialRecord) else TrialRecord.from_dict(record)
    if typed.status not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}, got {typed.status!r}")
    return json.dumps(redact_value(typed.to_dict()), indent=2, sort_keys=False, default=_json_default) + "\n"


def write_record(path: Path, record: TrialRecord | Mapping[str, Any]) -> None:
    """Validate and write a trial record atomically as JSON (see :func:`record_json`)."""
    atomic_write_text(path, record_json(record))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def parse_record(data: Any, where: str = "trial record", default_version: int | None = None) -> TrialRecord:
    """The record a decoded JSON value describes, migrated to the current schema; ``default_version``: the
    version of a value without ``schema_version`` (the copies a study's storage kept before version 2 have
    none: 1).

    :raises RecordError: not an object, an unknown version, a missing required key or a malformed part."""
    if not isinstance(data, dict):
        raise RecordError(f"{where}: a trial record must be a JSON object")
    if "schema_version" not in data and default_version is not None:
        data = {"schema_version": default_version, **data}
    try:
        data = migrate(data)
    except ValueError as exc:
        raise RecordError(f"{where}: {exc}") from None
    for key in REQUIRED:
        if key not in data:
            raise RecordError(f"{where}: trial record has no {key!r}")
    try:
        return TrialRecord.from_dict(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise RecordError(f"{where}: malformed trial record ({exc})") from None


def read_record(path: Path) -> TrialRecord:
    """Read one record; raises RecordError if it is corrupt or of an unknown schema version."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: unreadable trial record ({exc})") from exc
    return parse_record(data, str(path))


def find_record_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every trial record under ``paths`` (files are taken as they are; directories are searched)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(p.rglob(RECORD_NAME)))
    return found


def load_records(paths: Iterable[Path | str]) -> Iterator[TrialRecord]:
    """Records under ``paths`` (each with the ``path`` it was read from); corrupt or foreign ones are skipped
    with a warning, never a crash."""
    for path in find_record_files(paths):
        try:
            record = read_record(path)
        except RecordError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        record.path = path
        yield record


def final_checkpoint(record: TrialRecord | Mapping[str, Any]) -> Checkpoint | None:
    """The record's final checkpoint (the last evaluated one if none is marked final; None if there is none);
    a mapping is read as a record first."""
    typed = record if isinstance(record, TrialRecord) else TrialRecord.from_dict(record)
    return typed.final_checkpoint()
