"""Atomic writes of a cache's text files: readers see the old file or the new one, never a partial one.

The temporary file is hidden beside the target and names its writer (:func:`harness.cache.writer_tag`), so
that one a killed process left is removed at the next start (:func:`harness.cache.clean_stale`). The same
sequence as :func:`harness.records.atomic_write_text` (records and reports), kept here so that the cache
imports no other harness package: it sits below the config and the records in the import graph.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.cache.housekeeping import writer_tag


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{writer_tag()}.", suffix=".tmp")
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
