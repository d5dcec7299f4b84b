"""Grid sweep against Optuna sweeps with pruning, over the same DPO/SimPO space on the toy world: the best
objective each search found and the training steps each spent, over several sampler seeds.

    python benchmarks/pruning.py [--workdir DIR] [--trials 18] [--budget-share 0.5]
                                 [--pruner successive_halving] [--startup 10] [--seeds 0,1,2,3,4]
                                 [--world-seed 0] [--prompts N] [--only grid|optuna] [--reuse] [--tiny]
                                 [--verbose] [override ...]

The grid runs once; one Optuna study runs per sampler seed (``--seeds``), and the robustness figures are the
median and worst gap to the grid's best and the median share of the grid's training steps. ``--world-seed``
builds another toy world (its sweeps are named apart).

Both searches run through the real CLI (``python -m harness -m ...``) in ``--workdir`` (default: a new
temporary directory, kept), so their trial records land in ``<workdir>/multirun/<sweep>/<n>/trial.json``. The
grid is Hydra's basic sweeper, one multirun per method over every point of ``SPACE``; the Optuna search is one
study over both methods and the same points (``hydra/sweeper=optuna``), pruning between checkpoints. A trial's
objective is the leaderboard's: its gold reward at its best checkpoint with KL <= 10 nats. Aims (the issue's):
over the seeds, the median gap to the grid's best within 2% and the worst within 5%, at a median of at most
50% of the grid's training steps.

The Optuna search is the budgeted recipe of the manual (docs/how-to/optuna.md): ``hydra.sweeper.budget_steps``
at ``--budget-share`` of the grid's planned steps (no trial starts once the finished ones trained that many;
the last one may overshoot), ``--trials`` as a cap, successive halving by method with its first rung at the
warm-up, TPE with ``--startup`` random trials first. ``benchmarks/search_benchmark.py`` replays searches on
recorded grids (``benchmarks/pruning_replay.py``) for many more seeds, against random search, in seconds.

``--reuse`` skips a search whose multirun directory already holds records (recompute the figures of an earlier
``--workdir``); ``--tiny`` runs on the tests' tiny world with 12 steps per trial (about a minute). Extra
arguments are Hydra overrides given to both searches (e.g. ``method.epochs=2``). The full run takes 20+
minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

# The search space: every point is a grid trial, and the Optuna study searches the same points.
SPACE: dict[str, dict[str, list[float]]] = {
    "dpo": {"beta": [0.05, 0.1, 0.3], "learning_rate": [1e-4, 3e-4, 1e-3]},
    "simpo": {"beta": [1.0, 2.0, 4.0], "learning_rate": [3e-5, 1e-4, 3e-4]},
}
# Both searches: cheap evaluation, and enough evaluated checkpoints for the pruner to act between them.
COMMON_OVERRIDES = [
    "eval.evaluators=[gold_reward,kl]",
    "eval.checkpoints=all",
    "train.num_checkpoints=6",
    "train.save_checkpoints=false",
    "leaderboard.print=false",
]
AIM_GAP = 0.02  # the pruned search's best objective within this fraction of the grid's (median over seeds)
AIM_WORST_GAP = 0.05  # and within this fraction for the worst seed
AIM_STEPS = 0.50  # with at most this fraction of the grid's training steps (median over seeds)
# The tests' tiny toy world (tests/conftest.py, TINY_SPEC): builds in seconds; --tiny also caps the steps.
TINY_SPEC: dict[str, int] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_layers": 1,
    "num_heads": 2,
    "pretrain_steps": 80,
    "pretrain_batch_size": 32,
    "num_train_pairs": 64,
    "num_eval_pairs": 16,
    "num_eval_prompts": 16,
    "stats_samples_per_prompt": 1,
}
TINY_MAX_STEPS = 12
TOY_STEPS = 375  # a trial's optimizer steps on the default toy world (2,000 pairs, batch 16, 3 epochs)
# Lines of the CLI's output echoed while a sweep runs (everything goes to <workdir>/logs/).
_ECHO = ("[harness]", "Optuna study", "  search ", "Optuna trial", "harness: error")


@dataclass
class Search:
    """One side of the comparison: its sweeps (name and command each) and how long running them took."""

    label: str
    sweeps: list[tuple[str, list[str]]]
    expected_search: set[str] = field(default_factory=set)  # the Optuna sweeper's "search ..." lines
    wall_s: float | None = None  # None: not run now (reused records)


@dataclass
class Summary:
    """The figures of one search, from its trial records and leaderboard."""

    trials: int
    completed: int
    pruned: int
    failed: int
    distinct: int
    steps: int
    best: float | None
    best_setting: str
    best_base: float | None
    wall_s: float | None
    wall_note: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the sweeps run (multirun/, leaderboards/, logs/); default: a new temp dir",
    )
    parser.add_argument("--name", default="pruning", help="sweep name prefix (default: pruning)")
    parser.add_argument("--trials", type=int, default=18, help="Optuna trials at most (default: 18)")
    parser.add_argument(
        "--budget-share",
        type=float,
        default=0.5,
        help="Optuna's step budget as a share of the grid's planned steps (default 0.5; 0: none)",
    )
    parser.add_argument(
        "--pruner",
        default="successive_halving",
        choices=["median", "successive_halving", "hyperband", "none"],
    )
    parser.add_argument(
        "--startup", type=int, default=10, help="TPE's random trials before its model (default 10)"
    )
    parser.add_argument(
        "--seeds", default="0,1,2,3,4", help="Optuna sampler seeds, one study each (default 0-4)"
    )
    parser.add_argument(
        "--world-seed", type=int, default=0, help="toy world seed (default: 0, the standard world)"
    )
    parser.add_argument("--prompts", type=int, default=None, help="eval.num_prompts (default: the config's)")
    parser.add_argument("--only", choices=["grid", "optuna"], default=None, help="run one search only")
    parser.add_argument("--reuse", action="store_true", help="skip a search whose records already exist")
    parser.add_argument(
        "--tiny", action="store_true", help="smoke mode: the tests' tiny world, 12 steps a trial"
    )
    parser.add_argument("--verbose", action="store_true", help="echo all of the CLI's output")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both searches")
    return parser.parse_args(argv)


def prepare_world(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> list[str]:
    """Build (or find) the toy world before anything is timed; returns the overrides that select it.

    ``--tiny`` uses a private cache under ``workdir`` (``HARNESS_CACHE_DIR`` in ``env``,
    unless already set)."""
    from harness.toyworld import ToyWorldSpec, build_toy_world

    if not args.tiny:
        if not any(o.lstrip("+~").startswith("toyworld.") for o in args.overrides):
            build_toy_world(ToyWorldSpec(), progress=False)
        return []
    env.setdefault("HARNESS_CACHE_DIR", str(workdir / "cache"))
    cache = Path(env["HARNESS_CACHE_DIR"]) / "toyworld"
    build_toy_world(ToyWorldSpec(**TINY_SPEC), cache_dir=str(cache), progress=False)
    return [
        f"toyworld.cache_dir={cache}",
        *(f"toyworld.spec.{k}={v}" for k, v in TINY_SPEC.items()),
        f"method.max_steps={TINY_MAX_STEPS}",
    ]


def common_overrides(args: argparse.Namespace, world: list[str]) -> list[str]:
    """The overrides both searches share."""
    prompts = [] if args.prompts is None else [f"eval.num_prompts={args.prompts}"]
    other_world = [f"toyworld.spec.seed={args.world_seed}"] if args.world_seed else []
    return [*COMMON_OVERRIDES, *prompts, *world, *other_world, *args.overrides]


def _values(values: list[float]) -> str:
    return ",".join(str(v) for v in values)


def _prefix(args: argparse.Namespace) -> str:
    return f"{args.name}-w{args.world_seed}" if args.world_seed else args.name


def grid_search(args: argparse.Namespace, common: list[str]) -> Search:
    """Hydra's basic sweeper, one multirun per method over every point of SPACE."""
    sweeps = []
    for method, dims in SPACE.items():
        name = f"{_prefix(args)}-grid-{method}"
        argv = [
            "-m",
            f"method={method}",
            *(f"method.{k}={_values(v)}" for k, v in dims.items()),
            f"sweep_name={name}",
            *common,
        ]
        sweeps.append((name, argv))
    return Search("grid", sweeps)


def optuna_search(args: argparse.Namespace, common: list[str], seed: int, budget: int | None) -> Search:
    """One Optuna study over both methods and the same points, with a pruner,
    its sampler seeded with ``seed``."""
    name = f"{_prefix(args)}-optuna-s{seed}"
    # <method>.<key>=... searches that method's parameter only (DPO's and SimPO's betas differ in scale).
    space = [f"{m}.{k}=choice({_values(v)})" for m, dims in SPACE.items() for k, v in dims.items()]
    argv = [
        "-m",
        "hydra/sweeper=optuna",
        f"method={','.join(SPACE)}",
        "hydra.sweeper.use_suggested=false",
        *space,
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra/sweeper/pruner={args.pruner}",
        f"hydra.sweeper.sampler.seed={seed}",
        f"hydra.sweeper.sampler.n_startup_trials={args.startup}",
        *([f"hydra.sweeper.budget_steps={budget}"] if budget else []),
        f"sweep_name={name}",
        *common,
    ]
    expected = {f"method: choice({', '.join(SPACE)})"} if len(SPACE) > 1 else set()
    expected |= {
        f"{m}: method.{k}: choice({', '.join(str(x) for x in v)})"
        for m, dims in SPACE.items()
        for k, v in dims.items()
    }
    return Search(f"optuna seed {seed}", [(name, argv)], expected)


def step_budget(args: argparse.Namespace, grid: Search, workdir: Path) -> int:
    """Optuna's step budget: ``--budget-share`` of the grid's training steps, from its records (before the
    grid has run: every point of SPACE at the toy world's 375 steps, or ``TINY_MAX_STEPS`` with
    ``--tiny``)."""
    records = [p for name, _ in grid.sweeps for p in (workdir / "multirun" / name).glob("*/trial.json")]
    if records:
        steps = sum(trial_steps(json.loads(p.read_text())) for p in records)
    else:
        points = sum(len(dims["beta"]) * len(dims["learning_rate"]) for dims in SPACE.values())
        steps = points * (TINY_MAX_STEPS if args.tiny else TOY_STEPS)
    return int(args.budget_share * steps)


def command_line(argv: list[str]) -> list[str]:
    """The full command for CLI arguments ``argv``."""
    return [sys.executable, "-m", "harness", *argv]


def has_records(sweep_dir: Path) -> bool:
    """Whether a multirun directory holds any trial record."""
    return any(sweep_dir.glob("*/trial.json"))


def run_sweep(
    name: str, argv: list[str], workdir: Path, env: dict[str, str], verbose: bool, expected_search: set[str]
) -> None:
    """Run one multirun, echoing its progress lines; stdout and stderr go to ``workdir/logs/<name>.*``.

    When ``expected_search`` is given, the sweeper's opening "search ..." lines must match it exactly, else
    the sweep is stopped before it trains much. On failure, prints the tail of stderr and exits non-zero."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{name}.out", logs / f"{name}.err"
    print(f"[{name}] {shlex.join(command_line(argv))}", flush=True)
    search: list[str] = []
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            command_line(argv), cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.startswith("  search "):
                search.append(line.strip()[len("search ") :])
            elif search and expected_search and set(search) != expected_search:
                proc.terminate()
                proc.wait()
                raise SystemExit(
                    f"[{name}] the sweeper searches {sorted(search)}, not the intended "
                    f"{sorted(expected_search)}; stopped."
                )
            if verbose or line.startswith(_ECHO):
                print(f"  | {line.rstrip()}", flush=True)
        rc = proc.wait()
    if rc != 0:
        tail = deque(err_path.read_text(errors="replace").splitlines(), maxlen=30)
        print(f"[{name}] failed with exit status {rc}; last lines of {err_path}:", file=sys.stderr)
        print("\n".join(f"  {line}" for line in tail), file=sys.stderr)
        raise SystemExit(rc)


def run_search(search: Search, workdir: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    """Run a search's sweeps (unless reused), timing them together."""
    dirs = [workdir / "multirun" / name for name, _ in search.sweeps]
    if args.reuse and all(has_records(d) for d in dirs):
        print(f"[{search.label}] reusing the records in {', '.join(map(str, dirs))}", flush=True)
        return
    start = time.perf_counter()
    for name, argv in search.sweeps:
        run_sweep(name, argv, workdir, env, args.verbose, search.expected_search)
    search.wall_s = time.perf_counter() - start


def trial_steps(record: dict[str, Any]) -> int:
    """Optimizer steps a trial spent (a pruned trial's record holds the step it reached)."""
    steps = (record.get("train") or {}).get("steps")
    if steps is None:
        steps = (record.get("error") or {}).get("step")
    return int(steps or 0)


def records_span_s(records: list[dict[str, Any]]) -> float | None:
    """Seconds from the first trial's start to the last one's end, from the records' timestamps."""
    try:
        starts = [datetime.fromisoformat(r["started_at"]) for r in records]
        ends = [datetime.fromisoformat(r["finished_at"]) for r in records]
    except (KeyError, TypeError, ValueError):
        return None
    return (max(ends) - min(starts)).total_seconds() if starts else None


def setting_text(record: dict[str, Any]) -> str:
    """``method k=v ...`` for the dimensions of SPACE."""
    hp = record.get("hyperparameters") or {}
    method = str(record.get("method"))
    return " ".join([method, *(f"{k}={hp.get(k)}" for k in SPACE.get(method, {}))])


def summarize(search: Search, workdir: Path) -> Summary:
    """The figures of a search from its trial records: its pick is the completed trial best on the selection
    prompts (each trial at its checkpoint chosen by the leaderboard's rule), reported with its test
    objective."""
    import optuna

    from harness.leaderboard import load_leaderboard
    from harness.leaderboard.analysis.frames import trial_id

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the leaderboard reads Optuna studies
    dirs = [workdir / "multirun" / name for name, _ in search.sweeps]
    board = load_leaderboard([d for d in dirs if d.is_dir()])
    if board.groups:
        raise SystemExit(f"[{search.label}] the records come from different setups: {board.groups['differ']}")
    records = {trial_id(r): r for r in board.records}
    trials = board.trials
    status = trials["status"].value_counts() if not trials.empty else {}
    ranked = (
        trials[
            (trials["status"] == "completed")
            & trials["within_budget"].astype(bool)
            & trials["objective"].notna()
        ]
        if not trials.empty
        else trials
    )
    # The search's pick is its best completed trial on the selection prompts (what Optuna sees); its test
    # value is the figure compared (a pruned trial's value is never a result).
    by = (
        "selection_objective"
        if "selection_objective" in ranked and ranked["selection_objective"].notna().any()
        else "objective"
    )
    best = ranked.sort_values(by, ascending=False).iloc[0] if not ranked.empty else None
    best_record = records[best["trial_id"]] if best is not None else {}
    wall, note = search.wall_s, ""
    if wall is None:
        wall, note = records_span_s(list(records.values())), " (from records)"
    return Summary(
        trials=len(trials),
        completed=int(status.get("completed", 0)),
        pruned=int(status.get("pruned", 0)),
        failed=len(trials) - int(status.get("completed", 0)) - int(status.get("pruned", 0)),
        distinct=len({setting_text(r) for r in records.values()}),
        steps=sum(map(trial_steps, records.values())),
        best=None if best is None else float(best["objective"]),
        best_setting=setting_text(best_record) + (f" (step {int(best['step'])})" if best is not None else ""),
        best_base=None if best is None or "base_gold_reward" not in best else float(best["base_gold_reward"]),
        wall_s=wall,
        wall_note=note,
    )


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def print_figures(searches: list[Search], summaries: list[Summary]) -> None:
    """Each search's figures side by side (the grid first), then each pruned search against the grid and the
    robustness over seeds (median and worst gap, median share of steps) against the aims."""
    width = 16
    print()
    print(f"{'':<26}" + "".join(f"{s.label:>{width}}" for s in searches))
    rows = [
        ("trials", lambda m: str(m.trials)),
        ("  completed/pruned/failed", lambda m: f"{m.completed}/{m.pruned}/{m.failed}"),
        ("  distinct settings", lambda m: str(m.distinct)),
        ("best objective (test)", lambda m: _fmt(m.best)),
        ("training steps", lambda m: str(m.steps)),
        ("wall time (s)", lambda m: _fmt(m.wall_s, ".1f")),
    ]
    for label, cell in rows:
        print(f"{label:<26}" + "".join(f"{cell(m):>{width}}" for m in summaries))
    for search, m in zip(searches, summaries, strict=True):
        print(f"best setting, {search.label}: {m.best_setting if m.best is not None else '-'}{m.wall_note}")
    grid, pruned = summaries[0], summaries[1:]
    if not searches[0].label.startswith("grid") or grid.best is None or not pruned:
        return
    gaps = [(grid.best - p.best) / abs(grid.best) if p.best is not None else float("inf") for p in pruned]
    shares = [p.steps / grid.steps if grid.steps else float("nan") for p in pruned]
    print()
    for search, gap, share in zip(searches[1:], gaps, shares, strict=True):
        print(f"{search.label}: gap {gap:+.2%} of |grid best|, {share:.1%} of the grid's training steps")
    median_gap, worst_gap = statistics.median(gaps), max(gaps)
    median_share = statistics.median(shares)
    print(
        f"\nover {len(pruned)} sampler seeds: median gap {median_gap:+.2%} (aim <= {AIM_GAP:.0%}): "
        f"{'met' if median_gap <= AIM_GAP else 'NOT met'}; worst gap {worst_gap:+.2%} (aim <= "
        f"{AIM_WORST_GAP:.0%}): {'met' if worst_gap <= AIM_WORST_GAP else 'NOT met'}; median share of the "
        f"grid's steps {median_share:.1%} (aim <= {AIM_STEPS:.0%}): "
        f"{'met' if median_share <= AIM_STEPS else 'NOT met'}"
    )
    if grid.best_base is not None and grid.best != grid.best_base:
        gain = grid.best - grid.best_base
        print(
            f"  the median gap is {median_gap * abs(grid.best) / gain:+.1%} of the grid best's gain over the "
            f"reference model ({grid.best_base:.4f} -> {grid.best:.4f})"
        )


def main(argv: list[str] | None = None) -> None:
    """Run the grid and the Optuna search (or reuse their records) and print the figures."""
    args = parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="harness-pruning-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    world = prepare_world(args, workdir, env)
    common = common_overrides(args, world)
    seeds = [int(x) for x in str(args.seeds).split(",") if x.strip()]
    grid = grid_search(args, common)
    print(f"workdir: {workdir}  (figures again: --workdir {workdir} --reuse)", flush=True)
    if args.only != "optuna":
        run_search(grid, workdir, env, args)
    budget = (
        step_budget(args, grid, workdir) if args.budget_share > 0 else None
    )  # after the grid: its records
    pruned = [] if args.only == "grid" else [optuna_search(args, common, seed, budget) for seed in seeds]
    for search in pruned:
        run_search(search, workdir, env, args)
    chosen = ([] if args.only == "optuna" else [grid]) + pruned
    summaries = [summarize(s, workdir) for s in chosen]
    world = ("tiny" if args.tiny else "default") + (f", seed {args.world_seed}" if args.world_seed else "")
    print(
        f"\n{world} toy world; objective: gold reward at each trial's best "
        "checkpoint with KL <= 10 nats (the leaderboard's rule); space:"
    )
    for method, dims in SPACE.items():
        print(f"  {method}: " + ", ".join(f"{k} in {{{_values(v)}}}" for k, v in dims.items()))
    print_figures(chosen, summaries)
    print(
        f"\ncommands (run in {workdir}"
        + (f", HARNESS_CACHE_DIR={env['HARNESS_CACHE_DIR']}" if args.tiny else "")
        + "):"
    )
    for search in chosen:
        for _, sweep_argv in search.sweeps:
            print(f"  {shlex.join(command_line(sweep_argv))}")


if __name__ == "__main__":
    main()
