"""A killed grid, run again: how many trials the re-run trains, and the time it saves against running the grid
from the start.

    python benchmarks/resume.py [--workdir DIR] [--trials 6] [--kill-after 4] [--steps 60] [override ...]

Three runs of the same DPO grid (``seed=1..N`` on the toy world, ``method.max_steps`` each)
through the real CLI:

1. the full grid, uninterrupted (the baseline: wall time of the whole command);
2. the same grid under another ``sweep_name``, SIGKILLed once ``--kill-after`` trials have completed records;
3. the same command as 2 again: it skips the completed trials and runs the rest (the killed one included).

Prints the trials each run trained, the re-run's wall time against the full grid's, and checks that no
completed record of run 2 was touched by run 3.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
COMMON = ["eval.evaluators=[gold_reward,kl]", "train.save_checkpoints=false", "leaderboard.print=false"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the runs go (default: a new temp dir)"
    )
    parser.add_argument("--trials", type=int, default=6, help="trials in the grid (seeds 1..N; default 6)")
    parser.add_argument("--kill-after", type=int, default=4, help="SIGKILL once this many trials completed")
    parser.add_argument("--steps", type=int, default=60, help="method.max_steps per trial (default 60)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    return parser.parse_args(argv)


def _command(name: str, args: argparse.Namespace) -> list[str]:
    seeds = ",".join(str(s) for s in range(1, args.trials + 1))
    return [
        sys.executable,
        "-m",
        "harness",
        "-m",
        "method=dpo",
        f"seed={seeds}",
        f"method.max_steps={args.steps}",
        f"sweep_name={name}",
        *COMMON,
        *args.overrides,
    ]


def _completed(sweep: Path) -> dict[str, str]:
    """Trial directory -> finish time of its completed record."""
    done = {}
    for path in sweep.glob("*/trial.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("status") == "completed":
            done[path.parent.name] = record["finished_at"]
    return done


def _run(command: list[str], cwd: Path, kill_when=None) -> float:
    """Run ``command``; with ``kill_when``, SIGKILL it once ``kill_when()`` is true.
    Returns the wall seconds."""
    start = time.perf_counter()
    with open(cwd / "log.txt", "a") as log:
        proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=log)
        while proc.poll() is None:
            if kill_when is not None and kill_when():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.5)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run the three runs and print the figures."""
    args = parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="harness-resume-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    full_s = _run(_command("resume-full", args), workdir)
    killed = workdir / "multirun" / "resume-killed"
    killed_s = _run(
        _command("resume-killed", args), workdir, kill_when=lambda: len(_completed(killed)) >= args.kill_after
    )
    before = _completed(killed)
    rerun_s = _run(_command("resume-killed", args), workdir)
    after = _completed(killed)
    untouched = all(after.get(k) == v for k, v in before.items())
    trained = len(after) - len(before)
    print(f"workdir: {workdir}")
    print(f"grid of {args.trials} DPO trials, {args.steps} steps each, toy world")
    print(f"full grid, uninterrupted:      {args.trials} trials trained, {full_s:.1f} s")
    print(f"killed run:                    {len(before)} trials completed before SIGKILL at {killed_s:.1f} s")
    print(
        f"re-run of the same command:    {trained} trials trained ({len(before)} skipped), {rerun_s:.1f} s = "
        f"{rerun_s / full_s:.0%} of the full grid's time (saved {full_s - rerun_s:.1f} s)"
    )
    print(
        f"completed records untouched by the re-run: {'yes' if untouched else 'NO'}; all {len(after)} of "
        f"{args.trials} completed: {'yes' if len(after) == args.trials else 'NO'}"
    )


if __name__ == "__main__":
    main()
