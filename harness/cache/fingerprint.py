"""Content hashes of files, so that cache keys name what a model is, not where it lies.

A cache key that held a model's path (or its files' modification times) missed when the cache or the model was
moved or copied, and could not tell a model edited in place from the one it was. Keys hold
:func:`content_sha256` of the files instead: the SHA-256 of every byte, computed once per file and
remembered, per (resolved path, size, modification time, inode), in memory and in
``$HARNESS_CACHE_DIR/hashes/`` (a checked JSON entry per file; not written in read-only mode). A file seen
before costs one ``stat`` and a small read; a new or changed one is read once (measured in
docs/concepts/caches.md). A cheaper fingerprint (a safetensors header and the sizes) is not enough: two
checkpoints of one architecture have the same header and size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.cache.checked import read_checked_json, write_checked_json
from harness.cache.store import cache_dir, file_sha256

FOLDER = "hashes"
_memory: dict[tuple[str, int, int, int], str] = {}


def content_sha256(path: Path) -> str:
    """SHA-256 (hex) of the file at ``path``, memoized per (resolved path, size, mtime, inode)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    identity = (str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if identity in _memory:
        return _memory[identity]
    memo = cache_dir(FOLDER) / f"{hashlib.sha256(str(resolved).encode()).hexdigest()[:32]}.json"
    stored = read_checked_json(memo)
    if isinstance(stored, dict) and stored.get("identity") == list(identity):
        _memory[identity] = str(stored["sha256"])
        return _memory[identity]
    value = file_sha256(resolved)
    if os.stat(resolved).st_mtime_ns == stat.st_mtime_ns:  # not changed while read
        write_checked_json(memo, {"identity": list(identity), "sha256": value})
        _memory[identity] = value
    return value


def directory_fingerprint(directory: Path, suffixes: tuple[str, ...] | None = None) -> dict[str, list]:
    """``{name: [size, content SHA-256]}`` of the files directly in ``directory`` (those ending in one of
    ``suffixes`` when given; hidden files left out)."""
    return {
        path.name: [path.stat().st_size, content_sha256(path)]
        for path in sorted(Path(directory).iterdir())
        if path.is_file()
        and not path.name.startswith(".")
        and (suffixes is None or path.name.endswith(suffixes))
    }
