"""Trial records: the JSON file each trial leaves behind, and the only input of the leaderboard.

A record holds the config, method, hyperparameters, per-checkpoint metrics, status (completed, failed or
pruned) with its reason, timings, peak memory and library versions. It carries a schema version, is written
atomically (temporary file, fsync, rename), and is read back with plain ``json``: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_NAME = "trial.json"
STATUSES = ("running", "completed", "failed", "pruned", "interrupted")
_LIBRARIES = (
    "harness",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "hydra-core",
    "omegaconf",
    "pluggy",
    "optuna",
    "lm_eval",
)


def flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys: {"trl": {"loss_type": "x"}} -> {"trl.loss_type": "x"}."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def library_versions() -> dict[str, str | None]:
    """Versions of Python and the libraries that shape a result (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


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


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Validate and write a trial record atomically as JSON."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}, got {record.get('status')!r}")
    record = {"schema_version": SCHEMA_VERSION, **record}
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class RecordError(ValueError):
    """A record file that cannot be used (corrupt JSON, unknown schema, missing fields)."""


def read_record(path: Path) -> dict[str, Any]:
    """Read one record; raises RecordError if it is corrupt or of an unknown schema version."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: unreadable trial record ({exc})") from exc
    if not isinstance(record, dict):
        raise RecordError(f"{path}: a trial record must be a JSON object")
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(f"{path}: schema version {version!r} is not supported (expected {SCHEMA_VERSION})")
    for key in ("status", "method", "hyperparameters", "checkpoints"):
        if key not in record:
            raise RecordError(f"{path}: trial record has no {key!r}")
    return record


def find_record_files(paths: Iterable[Path | str]) -> list[Path]:
    """Every trial record under ``paths`` (files are taken as they are; directories are searched)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(p.rglob(RECORD_NAME)))
    return found


def load_records(paths: Iterable[Path | str]) -> Iterator[dict[str, Any]]:
    """Records under ``paths``; corrupt or foreign ones are skipped with a warning, never a crash."""
    for path in find_record_files(paths):
        try:
            record = read_record(path)
        except RecordError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        record["_path"] = str(path)
        yield record


def final_checkpoint(record: dict[str, Any]) -> dict[str, Any]:
    """The record's final checkpoint entry (the last evaluated one if none is marked final; {} if none)."""
    checkpoints = record.get("checkpoints") or []
    final = [c for c in checkpoints if c.get("final")]
    evaluated = [c for c in checkpoints if c.get("metrics")]
    return (final or evaluated or [{}])[-1]
