"""What naming a model by its contents costs: the content hash of a 100 MiB file and the fingerprints of the
tests' tiny real-architecture models (tests/realworld.py), the first time (every byte read), in a later run
(the hash remembered in the cache) and again in the same process.

    python benchmarks/cache_fingerprint.py

Writes nothing outside a temporary directory (its cache included); prints one line per file or model.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def timed(call, *args) -> float:
    """Milliseconds ``call(*args)`` took."""
    start = time.perf_counter()
    call(*args)
    return 1000 * (time.perf_counter() - start)


def costs(call, target: str) -> tuple[float, float, float]:
    """The first, remembered-on-disk and in-memory times of ``call(target)``."""
    from harness.cache import fingerprint

    fingerprint._memory.clear()
    first = timed(call, target)
    fingerprint._memory.clear()
    return first, timed(call, target), timed(call, target)


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="harness-fingerprint-"))
    os.environ["HARNESS_CACHE_DIR"] = str(scratch / "cache")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.cache import content_sha256
    from harness.evaluation.refcache_key import model_fingerprint
    from tests.realworld import build_real_world

    big = scratch / "big.safetensors"
    big.write_bytes(os.urandom(100 * 2**20))
    rows = [("a 100 MiB file", *costs(lambda p: content_sha256(Path(p)), str(big)))]
    world = build_real_world(scratch / "models")
    for name, value in dataclasses.asdict(world).items():
        path = Path(str(value))
        if path.is_dir() and (path / "config.json").is_file():
            size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6
            rows.append((f"{name} ({size:.2f} MB)", *costs(model_fingerprint, str(path))))
    for label, first, later, memory in rows:
        print(f"{label}: first {first:.2f} ms, later run {later:.2f} ms, same process {memory:.3f} ms")


if __name__ == "__main__":
    main()
