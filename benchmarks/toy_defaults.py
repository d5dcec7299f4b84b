"""Pick the toy world's per-method defaults with the harness's own Optuna sweeper, on the selection prompts,
and check the picks on other toy worlds. Writes the study's summary (Markdown and CSV) for the repository.

    python benchmarks/toy_defaults.py [--workdir DIR] [--out leaderboards/toy-defaults] [--trials 10]
                                      [--methods dpo,ipo,...] [--worlds 1,2] [--top 2] [--reuse] [--tiny]

For each method, one Optuna study (TPE, no pruning) on toy world seed 0 searches the learning rate and the
method's own knobs in ``SPACE`` at an equal budget for every method (``method.max_steps`` = ``STEPS``). A
trial's value is the objective on the **selection** prompts at its best checkpoint within the KL budget (what
the sweeper tells Optuna); the test prompts are never used to choose. The ``--top`` settings with the best
selection values are then trained on the other world seeds (``--worlds``), and the pick is the setting with
the best mean selection value over all worlds. Test values (and the reference model's) are reported beside, so
a reader sees how the pick does on prompts it was not chosen on.

All runs go through the real CLI (``python -m harness -m ...``) in ``--workdir`` (default: a new temporary
directory, kept). Running the script again with the same ``--workdir`` resumes every sweep (the harness skips
what is complete); ``--reuse`` runs nothing and only summarises the records there. The full run takes about an
hour on 2 CPU cores; ``--tiny`` runs on the tests' tiny world in a few minutes (a smoke test only).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pruning import TINY_SPEC, command_line, run_sweep  # noqa: E402  (the sibling benchmark)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

# What each study searches (Hydra sweeper syntax, keys under ``method``); every method's knob by its own name.
SPACE: dict[str, dict[str, str]] = {
    "dpo": {"learning_rate": "tag(log, interval(3e-5, 1e-3))", "beta": "tag(log, interval(0.03, 1.0))"},
    "ipo": {"learning_rate": "tag(log, interval(3e-5, 1e-3))", "beta": "tag(log, interval(0.05, 2.0))"},
    "kto": {"learning_rate": "tag(log, interval(3e-5, 1e-3))", "beta": "tag(log, interval(0.03, 1.0))"},
    "orpo": {"learning_rate": "tag(log, interval(1e-4, 3e-3))", "beta": "tag(log, interval(0.1, 3.0))"},
    "cpo": {"learning_rate": "tag(log, interval(1e-4, 3e-3))", "beta": "tag(log, interval(0.03, 1.0))"},
    "simpo": {
        "learning_rate": "tag(log, interval(3e-5, 1e-3))",
        "beta": "interval(1.0, 6.0)",
        "gamma": "interval(0.5, 4.0)",
    },
}
STEPS = (
    375  # every trial's optimizer steps (the reference leaderboard's budget: 3 epochs of 2,000 pairs at 16)
)
STUDY_WORLD = 0
# A new default must raise the worst world's selection value by more than this (about one standard error of a
# gold-reward mean over the 64 selection prompts), else the current one stays.
MARGIN = 0.05
COMMON = ["eval.evaluators=[gold_reward,kl]", "train.save_checkpoints=false", "leaderboard.print=false"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the sweeps run; default: a new temp dir"
    )
    parser.add_argument("--out", type=Path, default=None, help="write SUMMARY.md and candidates.csv here")
    parser.add_argument("--trials", type=int, default=10, help="Optuna trials per method (default: 10)")
    parser.add_argument("--methods", default=",".join(SPACE), help="comma-separated methods (default: all)")
    parser.add_argument("--worlds", default="1,2", help="world seeds the picks are checked on (default: 1,2)")
    parser.add_argument("--top", type=int, default=2, help="settings per method checked on the other worlds")
    parser.add_argument("--seed", type=int, default=0, help="Optuna sampler seed (default: 0)")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="METHOD:K=V,K=V",
        help="also check this setting on every world, e.g. simpo:learning_rate=2e-4,beta=2,gamma=2.4",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="run nothing: summarise the records already in --workdir"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="smoke mode: the tests' tiny world, 12 steps a trial"
    )
    return parser.parse_args(argv)


def world_overrides(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> tuple[list[str], int]:
    """The overrides that select the toy world family, and the steps per trial."""
    if not args.tiny:
        return [], STEPS
    env.setdefault("HARNESS_CACHE_DIR", str(workdir / "cache"))
    spec = [f"toyworld.spec.{k}={v}" for k, v in TINY_SPEC.items()]
    return [f"toyworld.cache_dir={Path(env['HARNESS_CACHE_DIR']) / 'toyworld'}", *spec], 12


def study_argv(method: str, args: argparse.Namespace, common: list[str]) -> list[str]:
    """The Optuna study of one method on the study world."""
    space = [f"method.{k}={v}" for k, v in SPACE[method].items()]
    return [
        "-m",
        "hydra/sweeper=optuna",
        f"method={method}",
        "hydra.sweeper.use_suggested=false",
        *space,
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra/sweeper/pruner=none",
        f"hydra.sweeper.sampler.seed={args.seed}",
        f"toyworld.spec.seed={STUDY_WORLD}",
        *common,
    ]


def check_argv(method: str, setting: dict[str, float], worlds: str, common: list[str]) -> list[str]:
    """A grid over the other worlds for one setting."""
    return [
        "-m",
        f"method={method}",
        *(f"method.{k}={v!r}" for k, v in setting.items()),
        f"toyworld.spec.seed={worlds}",
        *common,
    ]


def sweep(
    name: str, argv: list[str], workdir: Path, env: dict[str, str], reuse: bool
) -> list[dict[str, Any]]:
    """Run (or reuse) one multirun named ``name``; its trials as leaderboard rows with their settings."""
    import optuna

    from harness.leaderboard import load_leaderboard
    from harness.leaderboard.analysis.frames import trial_id

    directory = workdir / "multirun" / name
    if (
        not reuse
    ):  # running the command again resumes it: a study runs its missing trials, a grid its unfinished
        run_sweep(name, [*argv, f"sweep_name={name}"], workdir, env, False, set())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    # One board per trial: trials on different worlds are different setups, which one board refuses to rank.
    for trial_dir in sorted(p.parent for p in directory.glob("*/trial.json")):
        board = load_leaderboard([trial_dir])
        records = {trial_id(r): r for r in board.records}
        for row in board.trials.to_dict("records"):
            record = records[row["trial_id"]]
            hp = record.get("hyperparameters") or {}
            spec = ((record.get("config") or {}).get("toyworld") or {}).get("spec") or {}
            rows.append({**row, "world": spec.get("seed", STUDY_WORLD), "hp": hp})
    return rows


def _setting(method: str, hp: dict[str, Any]) -> dict[str, float]:
    return {k: float(hp[k]) for k in SPACE[method]}


def _ok(row: dict[str, Any]) -> bool:
    return row.get("status") == "completed" and row.get("selection_objective") == row.get(
        "selection_objective"
    )


def pick(
    method: str, study: list[dict[str, Any]], checks: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One candidate row per checked setting: its values per world, the worst and the mean selection value
    over the worlds; the pick is the setting whose worst world is best (a default must hold on every world),
    then the best mean."""
    out = []
    for key, rows in checks.items():
        # the study's completed run of this setting (a lost trial's retry is the same setting) and the checks
        runs = [*[r for r in study if _key(method, r["hp"]) == key and _ok(r)][:1], *rows]
        runs = [
            r for r in runs if r.get("status") != "interrupted"
        ]  # stopped by hand: not a result either way
        sel = [float(r["selection_objective"]) for r in runs if _ok(r)]
        out.append(
            {
                "method": method,
                "setting": key,
                "worlds": len(runs),
                "diverged_or_failed": len(runs) - len(sel),
                "selection_mean": sum(sel) / len(sel) if sel else float("nan"),
                "selection_worst": min(sel) if sel else float("-inf"),
                **{f"w{r['world']}_selection": r.get("selection_objective") for r in runs},
                **{f"w{r['world']}_test": r.get("objective") for r in runs},
                **{f"w{r['world']}_kl": r.get("kl") for r in runs},
                **{f"w{r['world']}_base": r.get("base_gold_reward") for r in runs},
            }
        )
    out.sort(
        key=lambda c: (-c["diverged_or_failed"], c["selection_worst"], c["selection_mean"]), reverse=True
    )
    current = next((c for c in out if c["setting"].endswith("(current)")), None)
    chosen = out[0] if out else None
    if (
        current is not None
        and chosen is not current
        and not (chosen["selection_worst"] - current["selection_worst"] > MARGIN)
    ):
        chosen = current  # not a material improvement: the default stays
    for candidate in out:
        candidate["pick"] = candidate is chosen
    return out


def _key(method: str, hp: dict[str, Any]) -> str:
    return ", ".join(f"{k}={float(hp[k]):.3g}" for k in SPACE[method])


def run_method(
    method: str, args: argparse.Namespace, workdir: Path, env: dict[str, str], common: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The study and the cross-world checks of one method: (study rows, candidates)."""
    study = sweep(f"toy-defaults-{method}-study", study_argv(method, args, common), workdir, env, args.reuse)
    done = sorted((r for r in study if _ok(r)), key=lambda r: float(r["selection_objective"]), reverse=True)
    checks: dict[str, list[dict[str, Any]]] = {}
    for rank, row in enumerate(done[: args.top], 1):
        name = f"toy-defaults-{method}-check{rank}"
        argv = check_argv(method, _setting(method, row["hp"]), args.worlds, common)
        checks[_key(method, row["hp"])] = sweep(name, argv, workdir, env, args.reuse)
    # The toy profile's current values, on every world: the bar a pick must clear to replace them.
    worlds = f"{STUDY_WORLD},{args.worlds}"
    current = sweep(
        f"toy-defaults-{method}-current", check_argv(method, {}, worlds, common), workdir, env, args.reuse
    )
    if current:
        checks[f"{_key(method, current[0]['hp'])} (current)"] = current
    for number, text in enumerate(
        (e.split(":", 1)[1] for e in args.extra if e.split(":", 1)[0] == method), 1
    ):
        setting = {k: float(v) for k, v in (kv.split("=", 1) for kv in text.split(","))}
        rows = sweep(
            f"toy-defaults-{method}-proposed{number}",
            check_argv(method, setting, worlds, common),
            workdir,
            env,
            args.reuse,
        )
        if rows:
            checks[f"{_key(method, rows[0]['hp'])} (proposed)"] = rows
    return study, pick(method, study, checks)


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return f"{number:.3f}" if math.isfinite(number) else "-"


def summary_markdown(
    args: argparse.Namespace,
    steps: int,
    studies: dict[str, list[dict[str, Any]]],
    candidates: list[dict[str, Any]],
    commands: list[str],
) -> str:
    """The study's summary: what was searched, each method's candidates over the worlds, and the picks."""
    worlds = [STUDY_WORLD, *(int(w) for w in args.worlds.split(","))]
    lines = [
        "# Toy-world defaults, chosen on the selection prompts",
        "",
        f"Each method: an Optuna study (TPE, sampler seed {args.seed}, {args.trials} or more trials, the "
        f"first 5 random; no pruning) on toy world seed {STUDY_WORLD}, every trial {steps} optimizer steps "
        "at batch 16. A trial's value is its gold reward on the 64 **selection** prompts at its best "
        f"checkpoint within KL 10 nats; the {args.top} best settings were trained again on world seeds "
        f"{args.worlds}, as was the toy profile's setting before this study (current) and any proposed by "
        "hand (proposed, `--extra`); the pick is the setting whose worst world has the best selection value "
        "(a default must hold on every world), then the best mean, and it replaces the current value only "
        f"if it raises the worst world by more than {MARGIN} (about one standard error of a 64-prompt "
        "mean). The test values (128 prompts, their own sampling seed) were not used to choose; they are "
        "shown beside, with the reference (untrained) model's test value.",
        "",
        "| method | searched | setting | "
        + " | ".join(f"world {w} sel / test / KL (base)" for w in worlds)
        + " | worst sel | mean sel | pick |",
        "|" + "---|" * (len(worlds) + 6),
    ]
    for c in candidates:
        cells = [
            f"{_fmt(c.get(f'w{w}_selection'))} / {_fmt(c.get(f'w{w}_test'))} / {_fmt(c.get(f'w{w}_kl'))} "
            f"({_fmt(c.get(f'w{w}_base'))})"
            for w in worlds
        ]
        searched = "; ".join(f"{k} {v}" for k, v in SPACE[c["method"]].items())
        lines.append(
            f"| {c['method']} | {searched} | {c['setting']} | "
            + " | ".join(cells)
            + f" | {_fmt(c['selection_worst'])} | {_fmt(c['selection_mean'])} | "
            f"{'**yes**' if c['pick'] else ''} |"
        )
    lines += [
        "",
        "Trials per study: "
        + "; ".join(
            f"{m}: {sum(_ok(r) for r in rows)} completed of {len(rows)}" for m, rows in studies.items()
        )
        + ".",
        "",
        "Commands (run in the work directory):",
        "",
        "```",
        *commands,
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run every method's study and checks (or reuse them) and write the summary."""
    import pandas as pd

    args = parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="harness-toy-defaults-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    world, steps = world_overrides(args, workdir, env)
    common = [*COMMON, *world, f"method.max_steps={steps}"]
    print(f"workdir: {workdir}  (figures again: --workdir {workdir} --reuse)", flush=True)
    studies, candidates = {}, []
    for method in args.methods.split(","):
        studies[method], picked = run_method(method, args, workdir, env, common)
        candidates += picked
        for c in picked:
            print(
                f"  {method} {c['setting']}: mean selection "
                f"{_fmt(c['selection_mean'])} over {c['worlds']} worlds" + (" <- pick" if c["pick"] else ""),
                flush=True,
            )
    commands = [
        shlex.join(command_line([*study_argv(m, args, common), f"sweep_name=toy-defaults-{m}-study"]))
        for m in studies
    ]
    text = summary_markdown(args, steps, studies, candidates, commands)
    print("\n" + text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "SUMMARY.md").write_text(text)
        pd.DataFrame(candidates).to_csv(args.out / "candidates.csv", index=False)
        rows = [
            {
                "method": m,
                "world": r["world"],
                "status": r["status"],
                **{k: r["hp"].get(k) for k in SPACE[m]},
                "selection": r.get("selection_objective"),
                "test": r.get("objective"),
                "kl": r.get("kl"),
            }
            for m, rs in studies.items()
            for r in rs
        ]
        pd.DataFrame(rows).to_csv(args.out / "trials.csv", index=False)
        print(f"wrote {args.out / 'SUMMARY.md'}, candidates.csv, trials.csv")


if __name__ == "__main__":
    main()
