"""Wall time of the main job (README), cold and warm, and of two trials run side by side against
one after another.

    python benchmarks/main_job.py [--reps 2] [--workdir DIR] [--only main|parallel]

``main``: ``python -m harness -m method=dpo,simpo,orpo`` (the toy world's full 375 steps, 4 evaluated
checkpoints, 128 + 64 prompts) as a whole process, **cold** (an empty harness cache: the reference evaluation
and DPO's reference pass are computed; the toy world itself is read from the usual cache) and **warm** (the
same cache again, as for any later sweep), alternating, ``--reps`` times each.

``parallel``: two DPO trials (``seed=1,2``) one after another (Hydra's basic launcher, torch's default
threads) and side by side (``hydra/launcher=joblib hydra.launcher.n_jobs=2``: each trial gets cores / 2
threads), warm, alternating; throughput = sequential wall time / parallel wall time.

Prints every run and the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def timed(args: list[str], cwd: Path, cache: Path, toyworld: str, log: Path) -> float:
    """Seconds ``python -m harness args`` took in ``cwd`` with ``HARNESS_CACHE_DIR=cache``;
    exits on failure."""
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args, f"toyworld.cache_dir={toyworld}", "leaderboard.print=false"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {done.returncode}); see {log}")
    return seconds


def main_job(workdir: Path, reps: int, toyworld: str) -> None:
    """Cold and warm runs of the main job, alternating."""
    cold, warm = [], []
    for rep in range(reps):
        cache = workdir / f"cache-{rep}"
        shutil.rmtree(cache, ignore_errors=True)
        for label, runs in (("cold", cold), ("warm", warm)):
            name = f"main-{rep}-{label}"
            runs.append(
                timed(
                    ["-m", "method=dpo,simpo,orpo", f"sweep_name={name}"],
                    workdir,
                    cache,
                    toyworld,
                    workdir / f"{name}.log",
                )
            )
            print(f"  main job {label}: {runs[-1]:6.1f} s", flush=True)
    print(
        f"main job (3 trials, 375 steps each): cold {statistics.median(cold):.1f} s, warm "
        f"{statistics.median(warm):.1f} s (medians of {reps})"
    )


def parallel(workdir: Path, reps: int, toyworld: str) -> None:
    """Two DPO trials one after another and side by side, warm, alternating."""
    cache = workdir / "cache-parallel"
    common = ["-m", "method=dpo", "seed=1,2"]
    timed([*common, "sweep_name=warmup"], workdir, cache, toyworld, workdir / "warmup.log")
    sequential, side_by_side = [], []
    for rep in range(reps):
        sequential.append(
            timed([*common, f"sweep_name=seq-{rep}"], workdir, cache, toyworld, workdir / f"seq-{rep}.log")
        )
        side_by_side.append(
            timed(
                [*common, f"sweep_name=par-{rep}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                workdir,
                cache,
                toyworld,
                workdir / f"par-{rep}.log",
            )
        )
        print(
            f"  two trials: one after another {sequential[-1]:6.1f} "
            f"s, side by side {side_by_side[-1]:6.1f} s",
            flush=True,
        )
    ratio = statistics.median(sequential) / statistics.median(side_by_side)
    print(
        f"two DPO trials side by side: throughput {ratio:.2f}x one after another "
        f"({statistics.median(side_by_side):.1f} s against "
        f"{statistics.median(sequential):.1f} s, medians of {reps})"
    )


def main() -> None:
    """Parse the command line and run the chosen measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="default: a new temporary directory (kept)"
    )
    parser.add_argument("--only", choices=["main", "parallel"], default=None)
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="main-job-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    from harness.cache import cache_dir
    from harness.toyworld import ToyWorldSpec, build_toy_world

    build_toy_world(ToyWorldSpec(), progress=False)
    toyworld = str(cache_dir("toyworld"))
    print(f"workdir {workdir}")
    if args.only in (None, "main"):
        main_job(workdir, args.reps, toyworld)
    if args.only in (None, "parallel"):
        parallel(workdir, args.reps, toyworld)


if __name__ == "__main__":
    main()
