"""Weights files checked from their structure alone, so that a truncated download is named instead of
surfacing as a library's error: a safetensors file must hold its header and exactly the bytes that header
lists, a PyTorch (zip) file its central directory. No tensor is read."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")


def weights_problem(path: Path) -> str | None:
    """What is wrong with a weights file, from its structure alone (no tensor is read), or None: a safetensors
    file must hold its header and exactly the bytes that header lists, a PyTorch (zip) file its central
    directory."""
    try:
        size = path.stat().st_size
        if path.suffix != ".safetensors":  # torch.save's zip format; an old pickle (no zip) is not checked
            with open(path, "rb") as handle:
                pickled = handle.read(1) == b"\x80"
            return None if pickled or zipfile.is_zipfile(path) else "not a complete zip archive"
        if size < 8:
            return f"{size} bytes, too short to hold a header"
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if 8 + length > size:
                return f"{size} bytes, shorter than its {length}-byte header"
            header = json.loads(handle.read(length))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (OSError, struct.error, ValueError, TypeError, KeyError, IndexError) as exc:
        return f"unreadable header ({type(exc).__name__})"
    return None if 8 + length + end == size else f"{size} bytes, its header lists {8 + length + end}"


def damaged_weights(directory: Path) -> tuple[Path, str] | None:
    """The first weights file in ``directory`` that is truncated or corrupt, with what is wrong;
    None if none is."""
    for weights_file in sorted(p for p in Path(directory).glob("*") if p.suffix in WEIGHT_SUFFIXES):
        problem = weights_problem(weights_file)
        if problem is not None:
            return weights_file, problem
    return None
