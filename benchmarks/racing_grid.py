"""The exhaustive answer the racing benchmark replays: every candidate x every seed on several toy worlds.

    python benchmarks/racing_grid.py --workdir DIR [--worlds 0,3,4] [--seeds 1,2,3,4,5] [--jobs 2]

Candidates: DPO, SimPO and ORPO, each at its toy default with its learning rate x1/3, x1 and x3 (the knob that
moves a toy trial most; the other settings at the toy default): 9 candidates. Each runs with training seeds
``--seeds`` on each toy world of ``--worlds`` (world 0 is the default toy world, a tuning world of the toy
defaults; worlds 3 and 4 were never tuned on), at the default budget (375 steps, 4 checkpoints, 128 test and
64 selection prompts), through the real CLI: one multirun per method and world, ``multirun/race-
grid-<method>-w<world>``. Running again resumes (the harness skips finished trials). About 135 trials, ~55
minutes on 2 CPU cores with ``--jobs 2``. ``benchmarks/racing.py`` reads the records.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pruning import run_sweep  # noqa: E402  (the sibling benchmark)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

METHODS = ("dpo", "simpo", "orpo")
LR_FACTORS = (1 / 3, 1.0, 3.0)


def toy_learning_rates(method: str) -> list[float]:
    """The candidates' learning rates of ``method``: its toy default times each of :data:`LR_FACTORS`."""
    from harness.plugin.manager import get_plugin_manager

    spec = get_plugin_manager([]).methods[method]
    default = float(spec.profiles["toy"].defaults["learning_rate"])
    return [float(f"{default * f:.3g}") for f in LR_FACTORS]


def sweep_name(method: str, world: int) -> str:
    """The multirun directory name of one method's candidates on one world."""
    return f"race-grid-{method}-w{world}"


def sweeps(worlds: list[int], seeds: str, jobs: int) -> dict[str, list[str]]:
    """Each multirun's CLI arguments by sweep name."""
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"] if jobs > 1 else []
    out: dict[str, list[str]] = {}
    for world in worlds:
        for method in METHODS:
            rates = ",".join(str(r) for r in toy_learning_rates(method))
            out[sweep_name(method, world)] = [
                "-m",
                f"method={method}",
                f"method.learning_rate={rates}",
                f"seed={seeds}",
                f"toyworld.spec.seed={world}",
                "train.save_checkpoints=false",
                "leaderboard.print=false",
                *launcher,
                f"sweep_name={sweep_name(method, world)}",
            ]
    return out


def main(argv: list[str] | None = None) -> None:
    """Run every multirun (resuming finished ones)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--worlds", default="0,3,4")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    worlds = [int(w) for w in args.worlds.split(",")]
    for name, cli in sweeps(worlds, args.seeds, args.jobs).items():
        run_sweep(name, cli, args.workdir.resolve(), dict(os.environ), False, set())


if __name__ == "__main__":
    main()
