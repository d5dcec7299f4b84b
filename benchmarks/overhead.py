"""What the harness costs on top of TRL: the same DPO training as a plain TRL script and through the harness
(no evaluation; the default evaluation), whole processes, alternating runs, and whether the losses are
bit-identical.

    python benchmarks/overhead.py [--reps 3] [--workdir DIR] [--threads N] [override ...]

The plain script (``benchmarks/plain_trl_dpo.py``) gets the model directory, the exact rows the harness trains
on and the ``DPOConfig`` arguments the harness builds for ``method=dpo`` (the toy world's 375 steps unless
overrides change them). Three variants run in turn, ``--reps`` times, each a fresh process:

- ``plain``: the TRL script;
- ``harness, no eval``: ``python -m harness method=dpo eval.evaluators=[] eval.selection.num_prompts=0
  train.num_checkpoints=1 train.save_checkpoints=false``;
- ``harness, default eval``: ``python -m harness method=dpo`` (4 evaluated checkpoints, reported and selection
  prompts, lm-eval, saved checkpoints).

The harness runs with a cache of their own (``HARNESS_CACHE_DIR=<workdir>/cache``; the toy world is read from
the usual one), so the first round shows the cold start (reference evaluation and reference pass computed) and
later rounds the warm one (both read from the cache, as in every trial of a sweep after the first). Prints
each run, the medians of the warm rounds, the ratios to the plain script, the evaluation's share, the seconds
from process start to training, and whether every run's losses equal the plain script's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

HERE = Path(__file__).resolve().parent
NO_EVAL = [
    "eval.evaluators=[]",
    "eval.selection.num_prompts=0",
    "train.num_checkpoints=1",
    "train.save_checkpoints=false",
]
VARIANTS = ("plain", "harness, no eval", "harness, default eval")


def write_plain_job(workdir: Path, overrides: list[str], threads: int | None) -> Path:
    """The plain script's job: the model, the rows the harness trains on, and its DPOConfig arguments."""
    from harness.config.compose import compose_job
    from harness.config.trainer_config import hyperparameter_fields, trl_overrides
    from harness.trial import TrialRun

    cfg = compose_job(["method=dpo", *overrides], {})
    run = TrialRun(cfg, workdir / "prepare")
    ctx = run.prepare(evaluate_reference=False)
    config = ctx.training_arguments()
    config.update(hyperparameter_fields(ctx.spec, ctx.method_cfg))
    config.update(trl_overrides(ctx.method_cfg))
    config["output_dir"] = str(workdir / "plain-trainer")
    rows = workdir / "rows.jsonl"
    ctx.train_data.to_json(str(rows))
    job = workdir / "plain-job.json"
    job.write_text(
        json.dumps(
            {"model": str(ctx.policy.name_or_path), "rows": str(rows), "config": config, "threads": threads},
            indent=1,
            default=str,
        )
    )
    return job


def command(
    variant: str, workdir: Path, run_dir: Path, job: Path, overrides: list[str], threads: int | None
) -> list[str]:
    """The command line of one run of ``variant``."""
    if variant == "plain":
        return [sys.executable, str(HERE / "plain_trl_dpo.py"), str(job), str(run_dir / "plain.json")]
    extra = NO_EVAL if variant == "harness, no eval" else []
    return [
        sys.executable,
        "-m",
        "harness",
        "method=dpo",
        *extra,
        *overrides,
        f"hydra.run.dir={run_dir}",
        f"eval.cache_dir={workdir / 'cache' / 'refeval'}",
        *([f"train.num_threads={threads}"] if threads else []),
    ]


def run_once(
    variant: str,
    workdir: Path,
    n: int,
    job: Path,
    overrides: list[str],
    threads: int | None,
    env: dict[str, str],
) -> dict[str, Any]:
    """Run ``variant`` once as a whole process; its wall seconds, losses and (harness) timings."""
    run_dir = workdir / "runs" / f"{n:02d}-{variant.replace(', ', '-').replace(' ', '-')}"
    run_dir.mkdir(parents=True)
    start = time.perf_counter()
    done = subprocess.run(
        command(variant, workdir, run_dir, job, overrides, threads),
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    (run_dir / "output.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed (exit {done.returncode}); see {run_dir / 'output.log'}")
    if variant == "plain":
        out = json.loads((run_dir / "plain.json").read_text())
        return {
            "wall": wall,
            "losses": [e["loss"] for e in out["log_history"] if "loss" in e],
            "to_training": out["process_s_at_training_start"],
            "eval": 0.0,
        }
    record = json.loads((run_dir / "trial.json").read_text())
    timings = record["timings"]
    return {
        "wall": wall,
        "losses": [e["loss"] for e in record["train"]["log_history"] if "loss" in e],
        "to_training": timings.get("process_s_at_training_start"),
        "eval": timings.get("eval_s", 0.0),
        "reference_pass": (record["train"].get("reference_logprobs") or {}).get("computed"),
    }


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="warm rounds after the cold one (default 3)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="default: a new temporary directory (kept)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for every run (default: torch's)"
    )
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for the harness runs (and the plain job)"
    )
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="overhead-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    from harness.cache import cache_dir

    toyworld = [f"toyworld.cache_dir={cache_dir('toyworld')}"]
    job = write_plain_job(workdir, [*toyworld, *args.overrides], args.threads)
    env = {**os.environ, "HARNESS_CACHE_DIR": str(workdir / "cache")}
    overrides = [*toyworld, *args.overrides]
    print(f"workdir {workdir}; {1 + args.reps} rounds of {', '.join(VARIANTS)} (order rotates each round)")
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    n = 0
    for round_ in range(1 + args.reps):
        order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]
        for variant in order:
            result = run_once(variant, workdir, n, job, overrides, args.threads, env)
            n += 1
            results[variant].append(result)
            label = "cold" if round_ == 0 else f"warm {round_}"
            print(
                f"  {label:<7} {variant:<22} {result['wall']:7.1f} s   training from "
                f"{result['to_training']:5.1f} s   eval {result['eval']:5.1f} s   reference pass "
                f"computed: {result.get('reference_pass', '-')}",
                flush=True,
            )
    report(results)


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    """Medians of the warm rounds, ratios to the plain script, and the loss check."""

    def median(variant: str, key: str, rounds: slice = slice(1, None)) -> float:
        return statistics.median(r[key] for r in results[variant][rounds])

    plain = median("plain", "wall")
    print("\nwarm rounds (median):")
    for variant in VARIANTS:
        wall = median(variant, "wall")
        share = median(variant, "eval") / wall
        print(
            f"  {variant:<22} {wall:7.1f} s   ratio to plain {wall / plain:5.3f}   eval share {share:6.1%}   "
            f"process start to training {median(variant, 'to_training'):5.1f} s"
        )
    cold_plain = results["plain"][0]["wall"]
    print(
        "cold round (empty harness cache): "
        + ", ".join(f"{v} {results[v][0]['wall'] / cold_plain:5.3f}" for v in VARIANTS[1:])
        + " of plain"
    )
    reference = results["plain"][0]["losses"]
    same = all(r["losses"] == reference for runs in results.values() for r in runs)
    print(
        f"losses bit-identical to the plain script in every run: {same} ({len(reference)} logged losses each)"
    )


if __name__ == "__main__":
    main()
