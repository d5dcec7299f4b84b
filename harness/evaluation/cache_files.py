"""The files of a reference-cache entry: each written atomically with a SHA-256 of its contents, and checked
when read back.

A JSON file holds ``{"sha256", "data"}``, the hash of ``data`` as canonical JSON (:func:`digest`); a
safetensors file holds ``sha256`` in its metadata, the hash of its tensors and other metadata
(:func:`tensors_sha256`). A reader gets the contents, or a string saying what is wrong with the file
(unreadable, no checksum, or a checksum that does not match).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from harness.records import atomic_write_text


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tensors_sha256(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> str:
    """SHA-256 (hex) of named tensors (name, dtype, shape and bytes of each) and of string ``metadata``."""
    hasher = hashlib.sha256(digest(dict(metadata)).encode())
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        hasher.update(f"{name}|{value.dtype}|{list(value.shape)}|".encode())
        hasher.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def atomic_save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Write named tensors to the safetensors file ``path`` atomically, their checksum added to
    ``metadata``."""
    from safetensors.torch import save_file

    metadata = {**(metadata or {}), "sha256": tensors_sha256(tensors, metadata or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary shared directory
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` as indented JSON with sorted keys, atomically (world-readable)."""
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True, default=str))
    with contextlib.suppress(OSError):
        os.chmod(path, 0o644)


NO_CHECKSUM = "it has no checksum (written by an earlier harness version, or edited)"
MISMATCH = "its contents do not match its checksum (edited or damaged)"


def load_checked_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]] | str | None:
    """A safetensors file's tensors and metadata (its checksum checked and removed); None when absent; a
    string saying what is wrong when it is unreadable, has no checksum or does not match it."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not iterable)
            metadata = dict(fh.metadata() or {})
    except Exception as exc:  # a damaged entry is a miss, not a failed trial
        return f"it is unreadable ({exc})".splitlines()[0]
    checksum = metadata.pop("sha256", None)
    if checksum is None:
        return NO_CHECKSUM
    return (tensors, metadata) if checksum == tensors_sha256(tensors, metadata) else MISMATCH


def checked_json_data(stored: Any) -> dict[str, Any] | str:
    """The ``data`` of a checksummed JSON file's contents, or a string saying what is wrong with them."""
    if not isinstance(stored, dict) or not isinstance(stored.get("data"), dict) or "sha256" not in stored:
        return NO_CHECKSUM
    return stored["data"] if stored["sha256"] == digest(stored["data"]) else MISMATCH
