"""JSON cache entries that verify themselves, and the one-line warning a damaged entry gives.

An entry is ``{"sha256": <hash of data>, "data": <data>}``, the hash taken over ``data`` as canonical JSON
(:func:`digest`), written atomically (a temporary file renamed into place) by :func:`write_checked_json`.
:func:`read_checked_json` returns the data, :data:`MISSING` when there is no entry, or a string saying what is
wrong with it (unreadable, no checksum, a checksum that does not match): the caller treats that as a miss,
recomputes, and says so once with :func:`warn_damaged`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from harness.cache.atomic import atomic_write_text
from harness.cache.housekeeping import readonly

MISSING = None


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_checked_json(path: Path, data: Any) -> bool:
    """Store ``data`` at ``path`` with its checksum, atomically; returns whether it was written (not in
    read-only mode, nor when the disk refuses: a failed write costs the reuse, never the result)."""
    if readonly():
        return False
    try:
        atomic_write_text(path, json.dumps({"sha256": digest(data), "data": data}, ensure_ascii=False) + "\n")
    except OSError:
        return False
    return True


def read_checked_json(path: Path) -> Any:
    """The data stored at ``path`` when its checksum matches; :data:`MISSING` (None) when there is no file;
    else a ``str`` naming the problem ("no checksum", "does not match its checksum (edited or damaged)",
    "unreadable (...)")."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return MISSING
    except (OSError, ValueError) as exc:
        return f"unreadable ({type(exc).__name__})"
    if not isinstance(stored, dict) or "sha256" not in stored or "data" not in stored:
        return "no checksum (written by an earlier version, or edited)"
    if stored["sha256"] != digest(stored["data"]):
        return "does not match its checksum (edited or damaged)"
    return stored["data"]


def warn_damaged(what: str, path: Path, problem: str) -> None:
    """Warn in one line that the cache entry ``path`` (of the cache ``what``) is not used and is computed
    again: ``harness: warning: <what> cache entry <path> <problem>; computing it again``."""
    warnings.warn(f"{what} cache entry {path} {problem}; computing it again", stacklevel=3)
