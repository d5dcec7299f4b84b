"""Where the harness caches what it builds once (toy worlds, reference evaluations, reward models), the
inter-process lock that lets concurrent trials share one entry instead of building it twice, and the manifest
that lets a cached directory verify itself.

In read-only mode (:func:`harness.cache.housekeeping.readonly`) :func:`file_lock` takes no lock: nothing is
written to the shared cache, and its entries are replaced atomically by their writers, so a reader sees a
whole entry or none.

A manifest (``manifest.json``, written last and atomically by :func:`write_manifest`) lists every other file
of a directory with its size and SHA-256; :func:`verify_manifest` compares the directory against it and names
the first file that is missing, has another size or another checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from harness.cache.atomic import atomic_write_text
from harness.cache.housekeeping import readonly

try:  # POSIX only; elsewhere concurrent builders merely duplicate work (writes are atomic)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def cache_dir(name: str) -> Path:
    """``$HARNESS_CACHE_DIR/<name>`` if that variable is set, else ``~/.cache/harness/<name>``."""
    base = os.environ.get("HARNESS_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "harness") / name


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes; released on exit. In read-only
    mode, no lock (nothing is created)."""
    if readonly():
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _listed_files(directory: Path) -> list[str]:
    """Relative POSIX paths of the files under ``directory`` (sorted), but the manifest and hidden files."""
    return sorted(
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and path.name != MANIFEST and not path.name.startswith(".")
    )


def write_manifest(directory: Path) -> None:
    """Write ``directory/manifest.json`` atomically: each file's relative path, size and SHA-256.

    Call it last, once every other file is complete: a directory with a manifest is a finished one.
    """
    files = {
        name: {"size": (directory / name).stat().st_size, "sha256": file_sha256(directory / name)}
        for name in _listed_files(directory)
    }
    atomic_write_text(
        directory / MANIFEST, json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1) + "\n"
    )


def verify_manifest(directory: Path, checksums: bool = True) -> str | None:
    """What is wrong with ``directory`` against its manifest, or None when every listed file matches.

    Sizes are always compared, SHA-256 checksums only with ``checksums``. Files the manifest does not list are
    ignored. The answer names the file: "model/model.safetensors has 1000 bytes, manifest.json says 2252360".
    """
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        entries = [(str(name), int(entry["size"]), str(entry["sha256"])) for name, entry in files.items()]
    except FileNotFoundError:
        return f"{MANIFEST} is missing"
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"{MANIFEST} is unreadable ({type(exc).__name__}: {exc})".splitlines()[0]
    for name, size, _ in entries:
        try:
            actual = (directory / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} bytes, {MANIFEST} says {size}"
    for name, _, sha256 in entries if checksums else ():
        try:
            if file_sha256(directory / name) != sha256:
                return f"{name} does not match its SHA-256 in {MANIFEST} (edited or damaged)"
        except OSError as exc:
            return f"{name} is unreadable ({exc})"
    return None
