"""Pick the toy world's per-method defaults on the tuning worlds (0-2), on the selection prompts only, with
the same grid for every method. Writes the tuning's summary (Markdown and CSV) for the repository.

    python benchmarks/toy_defaults.py [--workdir DIR] [--out leaderboards/toy-defaults] [--methods dpo,...]
                                      [--jobs 2] [--reuse] [--tiny]

Every method gets the same budget: a 3 x 3 grid (``GRID``) of its learning rate (the profile's previous value
and a factor of 3 either side) and its main knob over the paper's recommended range, trained on each of the
tuning worlds (:data:`harness.toyworld.spec.TUNING_WORLDS`): 27 trials of ``STEPS`` optimizer steps at batch
16. A second knob is held at the paper's value and stated (SimPO: gamma = 0.4 beta, the middle of its
recommended gamma/beta of 0.3-0.5; CPO: alpha = 1). A trial's value is the objective on the 64 **selection**
prompts at its best checkpoint within the KL budget; the test prompts are never used to choose. The pick is
the setting whose worst world is best (a default must hold on every world; a setting that failed or diverged
on some world ranks after those that held everywhere), then the best mean. There are no hand-added
candidates and no incumbent: the previous default wins only if it is on the grid and best by that rule.

All runs go through the real CLI (``python -m harness -m ...``) in ``--workdir`` (default: a new temporary
directory, kept), one multirun per method and world (SimPO: per beta too, as gamma is tied to it). Running the
script again with the same ``--workdir`` resumes every sweep (the harness skips what is complete); ``--reuse``
runs nothing and only summarises the records there. The grids double as the landscape of the search
benchmark (``benchmarks/pruning_replay.py``): 6 evaluated checkpoints per trial. The full run is 162 trials,
about 45 minutes on 2 CPU cores with ``--jobs 2``; ``--tiny`` runs on the tests' tiny world (a smoke test).
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

# Per method: learning rates, main-knob values, the paper's range of that knob, knobs tied to it. The learning
# rates are the toy profile's value before this tuning and a factor of 3 either side; `method.beta` is each
# method's main knob under its own name (IPO's tau, ORPO's lambda).
GRID: dict[str, dict[str, Any]] = {
    "dpo": {"learning_rate": [1e-4, 3e-4, 9e-4], "beta": [0.01, 0.07, 0.5], "paper": "beta 0.01-0.5"},
    "ipo": {"learning_rate": [1e-4, 3e-4, 9e-4], "beta": [0.1, 0.5, 2.5], "paper": "tau 0.1-2.5 (log grid)"},
    "kto": {"learning_rate": [7e-5, 2e-4, 6e-4], "beta": [0.03, 0.1, 0.3], "paper": "beta 0.03-0.3"},
    "orpo": {"learning_rate": [7e-4, 2e-3, 6e-3], "beta": [0.1, 0.3, 1.0], "paper": "lambda 0.1-1"},
    "cpo": {
        "learning_rate": [3e-4, 8e-4, 2.4e-3],
        "beta": [0.05, 0.2, 0.8],
        "paper": "beta 0.05-0.8, alpha 1 (the paper's)",
    },
    "simpo": {
        "learning_rate": [7e-5, 2e-4, 6e-4],
        "beta": [2.0, 4.5, 10.0],
        "paper": "beta 2-10, gamma/beta 0.4 (the middle of 0.3-0.5)",
        "tied": {"gamma": 0.4},  # gamma = 0.4 x beta
    },
}
STEPS = 375  # every trial's optimizer steps (3 epochs of 2,000 pairs at 16: the reference studies' budget)
COMMON = [
    "eval.evaluators=[gold_reward,kl]",
    "eval.checkpoints=all",
    "train.num_checkpoints=6",
    "train.save_checkpoints=false",
    "leaderboard.print=false",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the sweeps run; default: a new temp dir"
    )
    parser.add_argument("--out", type=Path, default=None, help="write SUMMARY.md, candidates.csv, trials.csv")
    parser.add_argument("--methods", default=",".join(GRID), help="comma-separated methods (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="trials side by side (the joblib launcher)")
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


def _values(values: list[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def sweeps(method: str, world: int, common: list[str]) -> dict[str, list[str]]:
    """The multiruns of one method's grid on one world, by sweep name: one (a grid of learning rate x beta),
    or one per beta when another knob is tied to it."""
    grid, name = GRID[method], f"tune-{method}-w{world}"
    lr = f"method.learning_rate={_values(grid['learning_rate'])}"
    base = ["-m", f"method={method}", lr, *common, f"toyworld.spec.seed={world}"]
    if not grid.get("tied"):
        return {name: [*base, f"method.beta={_values(grid['beta'])}"]}
    return {
        f"tune-{method}-b{beta:g}-w{world}": [
            *base,
            f"method.beta={beta:g}",
            *(f"method.{k}={factor * beta:g}" for k, factor in grid["tied"].items()),
        ]
        for beta in grid["beta"]
    }


def sweep_rows(directory: Path) -> list[dict[str, Any]]:
    """The trials of one multirun directory as leaderboard rows, with their settings and world."""
    from harness.leaderboard import load_leaderboard
    from harness.leaderboard.analysis.frames import trial_id
    from harness.leaderboard.analysis.seeds import diverged

    if not any(directory.glob("*/trial.json")):
        return []
    board = load_leaderboard([directory])
    records = {trial_id(r): r for r in board.records}
    rows = []
    trials = board.trials.assign(_diverged=diverged(board.trials))
    for row in trials.to_dict("records"):
        record = records[row["trial_id"]]
        spec = ((record.get("config") or {}).get("toyworld") or {}).get("spec") or {}
        rows.append({**row, "world": int(spec.get("seed", 0)), "hp": record.get("hyperparameters") or {}})
    return rows


def _ok(row: dict[str, Any]) -> bool:
    """A completed trial with a selection value that did not diverge (the leaderboard's rule:
    :func:`harness.leaderboard.analysis.seeds.diverged`)."""
    value = row.get("selection_objective")
    return row.get("status") == "completed" and value == value and not row.get("_diverged")


def setting_key(method: str, hp: dict[str, Any]) -> str:
    """A setting's name: its learning rate and main knob."""
    return f"learning_rate={float(hp['learning_rate']):g}, beta={float(hp['beta']):g}"


def candidates(method: str, rows: list[dict[str, Any]], worlds: list[int]) -> list[dict[str, Any]]:
    """One row per grid setting: its selection and test values, KL and the reference's value on each world,
    its worst and mean selection value, how many worlds it failed or diverged on, and whether it is the pick
    (module docstring: the best worst world among the settings that held on every world, then the mean)."""
    by_setting: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") != "interrupted":  # stopped by hand: not a result either way
            by_setting.setdefault(setting_key(method, row["hp"]), []).append(row)
    out = []
    for key, runs in by_setting.items():
        sel = [float(r["selection_objective"]) for r in runs if _ok(r)]
        missing = len(worlds) - len(sel)
        out.append(
            {
                "method": method,
                "setting": key,
                "failed_or_diverged": missing,
                "selection_worst": min(sel) if sel else -math.inf,
                "selection_mean": sum(sel) / len(sel) if sel else math.nan,
                **{f"w{r['world']}_selection": r.get("selection_objective") for r in runs},
                **{f"w{r['world']}_test": r.get("objective") for r in runs},
                **{f"w{r['world']}_kl": r.get("kl") for r in runs},
                **{f"w{r['world']}_base": r.get("base_gold_reward") for r in runs},
            }
        )
    out.sort(key=lambda c: (c["failed_or_diverged"], -c["selection_worst"], -(c["selection_mean"] or 0)))
    for rank, c in enumerate(out):
        c["pick"] = rank == 0
    return out


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return f"{number:.3f}" if math.isfinite(number) else "-"


def summary_markdown(
    steps: int, worlds: list[int], table: list[dict[str, Any]], trials: dict[str, int], commands: list[str]
) -> str:
    """The tuning's summary: the rule, each method's grid over the worlds, the picks and the commands."""
    lines = [
        "# Toy-world defaults, tuned on worlds " + ", ".join(map(str, worlds)) + " (selection prompts only)",
        "",
        f"Every method: the same 3 x 3 grid budget, {len(worlds)} tuning worlds (toy world seeds "
        f"{', '.join(map(str, worlds))}), {steps} optimizer steps of 16 examples per trial: "
        + "; ".join(f"{m} {n} trials" for m, n in trials.items())
        + ". The grid is each method's learning rate (its previous toy default and a factor of 3 either "
        "side) by its main knob over the paper's recommended range (column `range`). A trial's value is its "
        "gold reward on the 64 **selection** prompts at its best checkpoint within KL 10 nats. The pick is "
        "the setting whose worst world is best (a setting that failed or diverged on a world ranks after "
        "those that held everywhere), then the best mean; no setting was added by hand and the previous "
        "default had no privilege. The test values (128 prompts) were not used to choose; they are shown "
        "beside, with the reference (untrained) model's test value in brackets. The comparisons in "
        "`leaderboards/` are reported on worlds 3 and up, which this tuning never saw.",
        "",
        "| method | range | setting | "
        + " | ".join(f"world {w} sel / test / KL (base)" for w in worlds)
        + " | worst sel | mean sel | pick |",
        "|" + "---|" * (len(worlds) + 6),
    ]
    for c in table:
        cells = [
            f"{_fmt(c.get(f'w{w}_selection'))} / {_fmt(c.get(f'w{w}_test'))} / {_fmt(c.get(f'w{w}_kl'))} "
            f"({_fmt(c.get(f'w{w}_base'))})"
            for w in worlds
        ]
        lines.append(
            f"| {c['method']} | {GRID[c['method']]['paper']} | {c['setting']} | "
            + " | ".join(cells)
            + f" | {_fmt(c['selection_worst'])} | {_fmt(c['selection_mean'])} | "
            f"{'**yes**' if c['pick'] else ''} |"
        )
    lines += ["", "Commands (run in the work directory):", "", "```", *commands, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run (or reuse) every method's grid on every tuning world and write the summary."""
    import pandas as pd

    from harness.toyworld.spec import TUNING_WORLDS

    args = parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="harness-toy-defaults-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    world, steps = world_overrides(args, workdir, env)
    jobs = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if args.jobs > 1 else []
    common = [*COMMON, *world, f"method.max_steps={steps}", *jobs]
    worlds = list(TUNING_WORLDS)
    print(f"workdir: {workdir}  (figures again: --workdir {workdir} --reuse)", flush=True)
    table, trials, commands, rows_out = [], {}, [], []
    for method in args.methods.split(","):
        rows = []
        for w in worlds:
            for name, argv in sweeps(method, w, common).items():
                if not args.reuse:  # running the command again resumes it: a grid runs its unfinished trials
                    run_sweep(name, [*argv, f"sweep_name={name}"], workdir, env, False, set())
                commands.append(shlex.join(["python", *command_line([*argv, f"sweep_name={name}"])[1:]]))
                rows += sweep_rows(workdir / "multirun" / name)
        trials[method] = len(rows)
        picked = candidates(method, rows, worlds)
        table += picked
        rows_out += [
            {
                "method": method,
                "world": r["world"],
                "status": r["status"],
                "learning_rate": r["hp"].get("learning_rate"),
                "beta": r["hp"].get("beta"),
                **({"gamma": r["hp"].get("gamma")} if "gamma" in r["hp"] else {}),
                "selection": r.get("selection_objective"),
                "test": r.get("objective"),
                "kl": r.get("kl"),
                "health": r.get("health"),
            }
            for r in rows
        ]
        best = picked[0] if picked else None
        if best is not None:
            worst = _fmt(best["selection_worst"])
            print(f"  {method}: pick {best['setting']} (worst world {worst})", flush=True)
    text = summary_markdown(steps, worlds, table, trials, commands)
    print("\n" + text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "SUMMARY.md").write_text(text)
        pd.DataFrame(table).to_csv(args.out / "candidates.csv", index=False)
        pd.DataFrame(rows_out).to_csv(args.out / "trials.csv", index=False)
        print(f"wrote {args.out / 'SUMMARY.md'}, candidates.csv, trials.csv")


if __name__ == "__main__":
    main()
