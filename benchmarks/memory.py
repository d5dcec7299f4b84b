"""Measured peak memory per method, to check the seed's "Compute" column (PPO > DPO > ORPO/SimPO).

    python benchmarks/memory.py [--methods ppo,dpo,orpo,simpo] [--hidden 512] [--layers 8] [--steps 3]

On the default toy world (0.56M parameters, ~2 MB a model) every method peaks at the same few hundred MB: the
Python process and its libraries dominate and the models do not show. So this script builds a *wider* toy
world (same data and tokenizer, a ~34M-parameter model at the defaults, barely pretrained: only memory matters
here) and trains each method a few steps in its own process (``python -m harness method=<m>``; a fresh process
each, so one trial's freed memory cannot hide in the next one's peak). It prints, per method, the models it
declares in memory, the measured peak resident memory of the process during training and its excess over the
lightest method. On a GPU the CUDA allocator's peak is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="ppo,dpo,orpo,simpo", help="comma-separated methods")
    parser.add_argument("--hidden", type=int, default=512, help="model width (default 512)")
    parser.add_argument("--layers", type=int, default=8, help="transformer layers (default 8)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per method (default 3)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the runs go (default: a temp dir)")
    return parser.parse_args(argv)


def world_overrides(args: argparse.Namespace) -> list[str]:
    """Overrides selecting the wide toy world."""
    heads = max(1, args.hidden // 64)
    spec = {
        "hidden_size": args.hidden,
        "intermediate_size": 4 * args.hidden,
        "num_layers": args.layers,
        "num_heads": heads,
        "pretrain_steps": 1,
    }
    return [f"toyworld.spec.{k}={v}" for k, v in spec.items()]


def run_method(method: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Train ``method`` a few steps in a fresh process; returns its trial record."""
    out = workdir / method
    # The method's own batch settings, but the same small number of steps and a minimal evaluation.
    command = [
        sys.executable,
        "-m",
        "harness",
        f"method={method}",
        *world_overrides(args),
        f"method.max_steps={args.steps}",
        "train.num_checkpoints=1",
        "train.save_checkpoints=false",
        "eval.evaluators=[kl]",
        "eval.num_prompts=8",
        f"hydra.run.dir={out}",
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    record_path = out / "trial.json"
    if result.returncode != 0 or not record_path.is_file():
        sys.exit(f"{method} failed:\n{result.stderr[-3000:]}")
    return json.loads(record_path.read_text())


def main(argv: list[str] | None = None) -> None:
    """Run every method and print the memory table."""
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="harness-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from harness.toyworld import ToyWorldSpec, build_toy_world

    spec = {o.split("=")[0].split(".")[-1]: int(o.split("=")[1]) for o in world_overrides(args)}
    world = build_toy_world(ToyWorldSpec(**spec), progress=False)
    print(f"wide toy world: {world.model_dir} ({args.hidden} wide, {args.layers} layers)")
    rows = []
    for method in args.methods.split(","):
        record = run_method(method, args, workdir)
        memory = record["peak_memory"] or {}
        rows.append(
            (
                method,
                record["models_in_memory"],
                record["train"].get("parameters"),
                memory.get("rss_peak_mb"),
                memory.get("cuda_peak_mb"),
                record["status"],
            )
        )
        print(f"  {method}: {memory.get('rss_peak_mb')} MB peak RSS", flush=True)
    lightest = min(r[3] for r in rows if r[3] is not None)
    print(
        f"\n{'method':<8} {'models':>6} {'params/model':>13} "
        f"{'peak RSS MB':>12} {'over lightest':>14} {'CUDA MB':>8}"
    )
    for method, models, params, rss, cuda, status in rows:
        print(
            f"{method:<8} {models:>6} {params or 0:>13,} {rss or 0:>12.1f} {(rss or 0) - lightest:>14.1f} "
            f"{cuda if cuda is not None else '-':>8}  {status}"
        )
    print(
        f"\none model's fp32 weights: {rows[0][2] * 4 / 2**20:.1f} "
        "MB (Adam adds two more copies for a trained one)"
    )


if __name__ == "__main__":
    main()
