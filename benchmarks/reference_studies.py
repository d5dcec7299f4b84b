"""Make the committed reference studies: the six offline methods, and online against offline, on a toy world
the toy defaults were never tuned on, several training seeds each; writes each leaderboard and a bundle of its
trial records (``records.jsonl.gz``) beside it, from which the report can be rebuilt and checked.

    python benchmarks/reference_studies.py [--workdir DIR] [--world 3] [--seeds 1,2,3,4,5] [--jobs 2]
                                           [--only reference|online] [--reuse] [--out leaderboards]

- ``toy-reference``: DPO, IPO, KTO, ORPO, SimPO and CPO at their toy defaults (chosen on worlds 0-2 by
  ``benchmarks/toy_defaults.py``), ``STEPS`` optimizer steps of 16 examples each, on world ``--world``
  (default 3) with training seeds ``--seeds`` (the tuning trained seed 0 only).
- ``toy-online-vs-offline``: PPO, GRPO and RLOO trained on a **reward model** (``method.reward=trained``: the
  harness's reward stage, trained once on the same world's preference pairs the offline methods train on)
  rather than on the gold reward they are evaluated with, with the same seeds and world, at budgets matched
  to DPO's by the leaderboard's FLOPs estimate (``ONLINE_STEPS``), merged with the offline trials above.

Every trial is evaluated at ``CHECKPOINTS`` checkpoints on the world's 128 test prompts and 64 selection
prompts; the leaderboard chooses checkpoints and settings on the selection prompts and reports the test
prompts. All runs go through the real CLI in ``--workdir`` (default: a new temporary directory, kept);
running again resumes (the harness skips finished trials), ``--reuse`` only rebuilds the reports. About 25
minutes on 2 CPU cores with ``--jobs 2``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pruning import command_line, run_sweep  # noqa: E402  (the sibling benchmark)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

OFFLINE = ("dpo", "ipo", "kto", "orpo", "simpo", "cpo")
STEPS = 375  # 3 epochs of 2,000 pairs at 16 (KTO: 1.5 epochs of its 4,000 unpaired rows)
CHECKPOINTS = 6
# Online budgets matched to DPO's FLOPs estimate (the cost table's flops_est: about 1.67e6 x N for 375 steps
# of 16 pairs of about 42 tokens, N the policy's parameters). An online example is a sampled completion of
# about 9 prompt + 24 completion tokens; GRPO and RLOO hold 3 models (policy, reference, reward model) and
# sample: 12 N per token, so 263 steps of 16; PPO holds 4 (and a value model) and makes 4 passes: 32 N per
# token, so 25 steps of 64.
ONLINE_STEPS = {"ppo": 25, "grpo": 263, "rloo": 263}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the sweeps run; default: a temp dir"
    )
    parser.add_argument("--world", type=int, default=3, help="the toy world's seed (default 3: held out)")
    parser.add_argument("--seeds", default="1,2,3,4,5", help="training seeds (default 1,2,3,4,5)")
    parser.add_argument("--jobs", type=int, default=1, help="trials side by side (the joblib launcher)")
    parser.add_argument("--only", choices=["reference", "online"], default=None, help="one study only")
    parser.add_argument("--reuse", action="store_true", help="run nothing: rebuild the reports")
    parser.add_argument("--out", type=Path, default=None, help="write the leaderboards under this directory")
    return parser.parse_args(argv)


def common(args: argparse.Namespace) -> list[str]:
    """The overrides every trial of both studies shares."""
    jobs = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if args.jobs > 1 else []
    return [
        f"toyworld.spec.seed={args.world}",
        f"seed={args.seeds}",
        f"train.num_checkpoints={CHECKPOINTS}",
        "train.save_checkpoints=false",
        "leaderboard.print=false",
        *jobs,
    ]


def sweeps(args: argparse.Namespace) -> dict[str, dict[str, list[str]]]:
    """Each study's multiruns by sweep name."""
    shared = common(args)
    reference = {
        f"reference-{m}-w{args.world}": ["-m", f"method={m}", f"method.max_steps={STEPS}", *shared]
        for m in OFFLINE
    }
    online = {
        f"online-{m}-w{args.world}": [
            "-m",
            f"method={m}",
            "method.reward=trained",
            f"method.max_steps={steps}",
            *shared,
        ]
        for m, steps in ONLINE_STEPS.items()
    }
    return {"toy-reference": reference, "toy-online-vs-offline": {**online, **reference}}


def bundle(dirs: list[Path], out: Path) -> int:
    """Every trial record under ``dirs`` as one gzipped JSON line each, in a stable order; the count."""
    lines = [
        json.dumps(json.loads(path.read_text()), sort_keys=True, allow_nan=False)
        for d in dirs
        for path in sorted(d.glob("*/trial.json"), key=lambda p: (p.parent.parent.name, int(p.parent.name)))
    ]
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


def study_readme(study: str, runs: dict[str, list[str]], args: argparse.Namespace, count: int) -> str:
    """What a committed study is: its world, seeds, settings and budgets, the commands that made it, and its
    record bundle."""
    commands = [shlex.join(["python", *command_line([*a, f"sweep_name={n}"])[1:]]) for n, a in runs.items()]
    board = (
        f"python -m harness.leaderboard {' '.join(f'multirun/{n}' for n in runs)} --out leaderboards/{study}"
    )
    online = ", ".join(f"{m} {s} steps" for m, s in ONLINE_STEPS.items())
    return "\n".join(
        [
            f"# `{study}`: how it was made",
            "",
            f"- **World**: toy world seed {args.world}, held out: the toy defaults were tuned on worlds 0-2 "
            "([`../toy-defaults/SUMMARY.md`](../toy-defaults/SUMMARY.md)), never on this one.",
            f"- **Seeds**: training seeds {args.seeds} for every method (the tuning trained seed 0 only).",
            "- **Settings**: every method at its toy default, each picked by the same tuning budget: a 3 x 3 "
            "grid of learning rate and main knob on each of the 3 tuning worlds, 27 trials of "
            f"{STEPS} steps per method, chosen on selection prompts.",
            f"- **Budget per trial**: offline methods {STEPS} optimizer steps of 16 examples"
            + (
                f"; online methods ({online}) matched to DPO's FLOPs estimate, trained on a reward model the "
                "reward stage trained on the same world's preference pairs (`method.reward=trained`); the "
                "report's cost table lists each method's steps, examples, tokens and FLOPs"
                if study == "toy-online-vs-offline"
                else ""
            )
            + ".",
            f"- **Evaluation**: {CHECKPOINTS} checkpoints per trial on the 128 test prompts and the 64 "
            "selection prompts; checkpoints, settings and matched-KL points are chosen on the selection "
            "prompts and every reported number is a test value.",
            "",
            f"Made with `python benchmarks/reference_studies.py --world {args.world} --seeds {args.seeds}`, "
            "which runs, in a work directory:",
            "",
            "```bash",
            *commands,
            board,
            "```",
            "",
            f"`records.jsonl.gz` holds the {count} trial records the report was built from, one JSON record "
            "per line; `tests/test_committed_reports.py` rebuilds the report from them and checks its means, "
            "intervals and Holm-adjusted p-values.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Run (or reuse) the studies and write their leaderboards and record bundles."""
    args = parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="harness-reference-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    studies = sweeps(args)
    wanted = {"reference": ["toy-reference"], "online": ["toy-online-vs-offline"]}.get(
        args.only, list(studies)
    )
    print(f"workdir: {workdir}  (reports again: --workdir {workdir} --reuse)", flush=True)
    for study in wanted:
        for name, argv in studies[study].items():
            if not args.reuse:
                run_sweep(name, [*argv, f"sweep_name={name}"], workdir, env, False, set())
        if args.out is None:
            continue
        dirs = [workdir / "multirun" / name for name in studies[study]]
        target = args.out / study
        command = [sys.executable, "-m", "harness.leaderboard", *map(str, dirs), "--out", str(target)]
        subprocess.run(command, check=False, env=env)
        count = bundle(dirs, target / "records.jsonl.gz")
        (target / "README.md").write_text(study_readme(study, studies[study], args, count))
        print(f"wrote {target} ({count} records)", flush=True)


if __name__ == "__main__":
    main()
