"""What evaluation costs, next to training: one trial's train seconds, eval seconds per checkpoint and the
breakdown by evaluator, then a second trial with the same model, data and eval settings to show that the
reference model's evaluation is reused from the on-disk cache rather than recomputed.

    python benchmarks/eval_cost.py [--method dpo] [--toyworld-cache DIR] [override ...]

Extra arguments are Hydra overrides (e.g. ``eval=full``, ``method.epochs=1``). Runs on the default toy world;
prints its figures and writes nothing outside a temporary directory (and the toy-world cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def main() -> None:
    """Run two trials and print train time, per-checkpoint eval time,
    per-evaluator breakdown and cache reuse."""
    from harness.config.compose import compose_job
    from harness.trial import run_trial

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="dpo")
    parser.add_argument(
        "--toyworld-cache", default=None, help="toy-world cache dir (default: the user cache)"
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = [f"method={args.method}", f"eval.cache_dir={Path(tmp) / 'refeval'}", *args.overrides]
        if args.toyworld_cache:
            base.append(f"toyworld.cache_dir={args.toyworld_cache}")
        first = run_trial(compose_job(base, {}), Path(tmp) / "trial-1")
        second = run_trial(compose_job([*base, "seed=1"], {}), Path(tmp) / "trial-2")

    for record in (first, second):
        if record["status"] != "completed":
            raise SystemExit(f"trial {record['trial_dir']} {record['status']}: {record['error']['message']}")
    checkpoints = [c for c in first["checkpoints"] if c.get("metrics")]
    train_s = first["timings"]["train_s"]
    steps = first["train"]["steps"]
    eval_each = [c["eval_seconds"] for c in checkpoints]
    interval_s = train_s / max(len(checkpoints), 1)
    print(
        f"method {first['method']}: {steps} steps, {len(checkpoints)} evaluated checkpoints, "
        f"{first['eval_prompts']} held-out prompts"
    )
    print(f"train seconds (evaluation excluded)       {train_s:8.2f}")
    print(f"train seconds between two checkpoints     {interval_s:8.2f}")
    print(
        f"eval seconds per checkpoint (mean)        {statistics.mean(eval_each):8.2f}   "
        f"(each: {', '.join(f'{s:.2f}' for s in eval_each)})"
    )
    print(f"eval / train between checkpoints          {statistics.mean(eval_each) / interval_s:8.1%}")
    selection = [(c.get("selection") or {}).get("eval_seconds") for c in checkpoints]
    if selection and all(s is not None for s in selection):
        chosen_by = ", ".join(first["selection"].get("evaluators") or []) or "every evaluator"
        print(
            f"  of which on the {first['selection']['num_prompts']:>3} selection "
            f"prompts    {statistics.mean(selection):8.2f}   ({chosen_by}: choosing the "
            "checkpoint; the rest is the reported evaluation)"
        )
    print("eval seconds per checkpoint, by evaluator (mean; sampling is charged to the first that samples):")
    names = list(checkpoints[0]["eval_breakdown_s"])
    for name in names:
        print(f"  {name:<24}{statistics.mean(c['eval_breakdown_s'][name] for c in checkpoints):8.3f}")
    for label, record in (("first trial", first), ("second trial", second)):
        ref = record["reference"]
        selection = ref.get("selection") or {}
        of_which = (
            f"   (selection prompts {selection['eval_seconds']:.3f} s, cached={selection.get('cached')})"
            if selection
            else ""
        )
        print(
            f"reference evaluation, {label:<13} {ref.get('eval_s', 0):8.3f} "
            f"s   cached={ref.get('cached')}{of_which}"
        )


if __name__ == "__main__":
    main()
