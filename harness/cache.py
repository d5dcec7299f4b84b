"""Where the harness caches what it builds once (toy worlds, reference evaluations, reward models), and the
inter-process lock that lets concurrent trials share one entry instead of building it twice."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX only; elsewhere concurrent builders merely duplicate work (writes are atomic)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def cache_dir(name: str) -> Path:
    """``$HARNESS_CACHE_DIR/<name>`` if that variable is set, else ``~/.cache/harness/<name>``."""
    base = os.environ.get("HARNESS_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "harness") / name


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes; released on exit."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)
