"""The cache directory's upkeep: read-only mode, the check before compute, the cleanup of half-built entries.

- **Read-only mode** (``HARNESS_CACHE_READONLY=1``): the harness reads a shared cache that it may not write
  (another team's, a read-only mount) and writes nothing there: no entry, no lock, no cleanup. A miss is
  computed for this process only (kept in memory, or in a private temporary directory removed at exit, see
  :func:`private_dir`). An environment variable, like ``HARNESS_CACHE_DIR`` beside it, because it describes
  the machine rather than the experiment and must reach every process the harness starts (stages, the toy
  world's builder) without being part of any config or cache key.
- :func:`check_directory` is what config validation runs before any trial: the directory exists or can be
  created, is a directory, and is writable (read-only mode: exists and is readable), else one line naming the
  path and the fix.
- :func:`clean_stale` removes the hidden temporary files and directories a killed writer left (an atomic write
  or a toy-world build that never got to its rename). A writer names its temporaries with :func:`writer_tag`
  (its pid and host): one whose process is gone on this host is removed at once, one of another host
  after :data:`FOREIGN_AGE_S`; an untagged temporary (an atomic write of a few milliseconds, or an earlier
  version's) after :data:`UNTAGGED_AGE_S`. A live writer's temporary is never touched.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

READONLY_VARIABLE = "HARNESS_CACHE_READONLY"
FOREIGN_AGE_S = 24 * 3600  # a temporary of a writer on another host: removed once this old
UNTAGGED_AGE_S = 3600  # a temporary that names no writer: removed once this old
_TAG = re.compile(r"\.pid(\d+)@([A-Za-z0-9_-]*)\.")
#: The names of temporaries: tagged ones (``.<name>.pid<pid>@<host>.<suffix>.tmp``; ``.old``: a world moved
#: aside), and untagged ones as ``tempfile`` names them (8 random characters) in earlier versions and in
#: :func:`harness.records.atomic_write_text` (``.<name>.<random>.tmp``; the judge's ``.tmp-<random>.json``).
_TEMPORARY = re.compile(
    r"^\..+\.pid\d+@[A-Za-z0-9_-]*\..+\.(tmp|old)$|^\..+\.[a-z0-9_]{8}\.(tmp|old)$|^\.tmp-[a-z0-9_]{8}\.json$"
)


def readonly() -> bool:
    """Whether the cache is read-only for this process (``HARNESS_CACHE_READONLY`` set to 1, true or yes)."""
    return os.environ.get(READONLY_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40]


def writer_tag() -> str:
    """``pid<pid>@<host>``: what a writer puts in its temporaries' names, so that :func:`clean_stale` can tell
    whether it still runs."""
    return f"pid{os.getpid()}@{_host()}"


def temporary_name(final: Path) -> str:
    """A hidden temporary name beside ``final`` for this writer: ``.<name>.<writer_tag>.<ns>.tmp``."""
    return f".{final.name}.{writer_tag()}.{time.monotonic_ns()}.tmp"


@functools.cache
def private_dir() -> Path:
    """A temporary directory of this process, removed when it exits: where read-only mode keeps what it
    computed on a miss that must live on disk (a toy world, a stage's model)."""
    path = Path(tempfile.mkdtemp(prefix=f"harness-cache-{writer_tag()}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def check_directory(path: Path, setting: str = "HARNESS_CACHE_DIR") -> str | None:
    """What stops the harness from using ``path`` (placed by ``setting``) as a cache directory, as one line
    with the fix, or None.

    Writable mode: it exists or can be created, is a directory and is writable. Read-only mode: it is a
    readable directory, or does not exist (everything is then a miss)."""
    what = f"cache directory {path} ({setting})"
    elsewhere = f"or set {setting} to another directory"
    if path.exists() and not path.is_dir():
        return f"the {what} is not a directory; remove that file {elsewhere}"
    if readonly():
        if path.exists() and not os.access(path, os.R_OK | os.X_OK):
            return f"the {what} is not readable; make it readable {elsewhere}"
        return None
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return (
            f"the {what} cannot be created ({existing} is not a directory); {elsewhere.removeprefix('or ')}"
        )
    if not _can_write(existing):
        where = "is not writable" if existing == path else f"cannot be created ({existing} is not writable)"
        return (
            f"the {what} {where}; make it writable, {elsewhere}, "
            f"or set {READONLY_VARIABLE}=1 to read it as a shared cache without writing to it"
        )
    return None


def _can_write(directory: Path) -> bool:
    """Whether this process can create a file in ``directory``: tried (permissions alone miss a read-only
    mount, and say nothing for root)."""
    try:
        handle, name = tempfile.mkstemp(dir=directory, prefix=f".probe.{writer_tag()}.", suffix=".tmp")
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def _writer_gone(name: str, age: float) -> bool:
    """Whether the writer of the temporary ``name`` (last modified ``age`` seconds ago) has stopped."""
    tag = _TAG.search(name)
    if tag is None:
        return age > UNTAGGED_AGE_S
    if tag.group(2) != _host():
        return age > FOREIGN_AGE_S
    try:
        os.kill(int(tag.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):  # another user's live process / not a pid
        return False
    return False


def clean_stale(root: Path, depth: int = 3) -> list[Path]:
    """Remove the temporaries under ``root`` (``depth`` levels) whose writer has stopped; returns them. Does
    nothing in read-only mode; a path that cannot be removed is left (a later start tries again)."""
    if readonly() or not root.is_dir():
        return []
    removed: list[Path] = []
    now = time.time()
    folders = [root]
    for _ in range(depth):
        found: list[Path] = []
        for folder in folders:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                path = Path(entry.path)
                if _TEMPORARY.match(entry.name):
                    try:
                        age = now - entry.stat(follow_symlinks=False).st_mtime
                    except OSError:
                        continue
                    if _writer_gone(entry.name, age):
                        _remove(path)
                        removed.append(path)
                elif entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    found.append(path)
        folders = found
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
