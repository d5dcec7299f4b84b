"""Replay Optuna searches on a grid's recorded learning curves: many sampler seeds in seconds.

``benchmarks/pruning.py`` trains every Optuna trial for real (about 4 minutes per seed on 2 cores). Training
is deterministic given a trial's config, so a trial of the search that draws a grid point would train exactly
the grid trial of that point again: the same checkpoints, the same values. This script therefore replays a
search on the grid's records, with the sweep's own pieces (the search space's define-by-run sampling, the
sampler as ``conf/hydra/sweeper/sampler/tpe.yaml`` builds it, the like-for-like pruner, the pruning value, the
objective and the step budget), for many seeds, and prints the same figures as the benchmark: median and worst
gap to the grid's best (test gold of each search's pick, picked on the selection prompts), median share of the
grid's training steps.

    python benchmarks/pruning_replay.py <workdir>/multirun/pruning-grid-dpo \
        <workdir>/multirun/pruning-grid-simpo \
        [--seeds 100] [--trials 18] [--budget-share 0.5] [--sampler tpe] [--pruner successive_halving] \
        [--sampler-set n_startup_trials=10] [--pruner-set ...] [--warmup 0.33] [--prune-value peak]

The defaults are ``pruning.py``'s search (its ``--startup`` is ``--sampler-set n_startup_trials=N`` here).

It is a model of the real search, not a substitute: the figures in the manual (docs/how-to/optuna.md) come
from ``pruning.py``. What it does not model: parallel trials and lost trials. Repeats of a completed setting
are told its result and count as the sweep counts them (:func:`harness.sweep.trials.counted_trials`); a pruned
setting drawn again is replayed from the start, as the sweep retrains it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from pathlib import Path
from typing import Any

AIM_GAP, AIM_WORST_GAP, AIM_SHARE = 0.02, 0.05, 0.50


def load_grid(dirs: list[Path]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The grid's completed trials by (method, beta, learning_rate)."""
    grid: dict[tuple[Any, ...], dict[str, Any]] = {}
    for d in dirs:
        for path in sorted(d.glob("*/trial.json")):
            record = json.loads(path.read_text())
            if record.get("status") != "completed":
                continue
            hp = record["hyperparameters"]
            grid[(record["method"], hp["beta"], hp["learning_rate"])] = record
    return grid


def chosen(record: dict[str, Any], checkpoints: list[dict[str, Any]], settings: Any) -> tuple[float, float]:
    """(selection value, test value) of the checkpoint the leaderboard's rule picks among ``checkpoints``."""
    from harness.leaderboard.analysis.frames import SELECTION_PREFIX
    from harness.sweep import study as st

    row, column = st.choose_checkpoint(
        checkpoints, settings.objectives, settings.kl_budget, "maximize", record.get("metric_declarations")
    )
    return float(row[f"{SELECTION_PREFIX}{column}"]), float(row[column])


def replay(
    grid: dict[tuple[Any, ...], dict[str, Any]], seed: int, args: argparse.Namespace
) -> tuple[float, int]:
    """One search: (test value of its pick, training steps spent)."""
    import optuna
    import optuna.distributions as D
    from hydra.utils import instantiate

    from harness.sweep import study as st
    from harness.sweep.reporter import build_pruner, pruning_value
    from harness.sweep.space import SearchSpace
    from harness.sweep.trials import counted_trials, steps_spent

    methods = sorted({k[0] for k in grid})
    per_method = {
        m: {
            "beta": D.CategoricalDistribution(sorted({k[1] for k in grid if k[0] == m})),
            "learning_rate": D.CategoricalDistribution(sorted({k[2] for k in grid if k[0] == m})),
        }
        for m in methods
    }
    space = SearchSpace(methods=methods, per_method=per_method)
    settings = study_settings(args)
    pruner = build_pruner(_config("pruner", args.pruner, args.pruner_set), settings.prune_warmup, True)
    sampler = instantiate({**_config("sampler", args.sampler, args.sampler_set), "seed": seed})
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    tested: dict[int, float] = {}
    while len(counted_trials(study, args.trials)) < args.trials and (
        args.budget_steps is None or steps_spent(study.trials) < args.budget_steps
    ):
        trial = study.ask()
        values = space.sample(trial)
        key = (values["method"], values["method.beta"], values["method.learning_rate"])
        record = grid[key]
        twin = next(
            (
                t
                for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                if t.params == trial.params
            ),
            None,
        )
        if twin is not None:
            trial.set_user_attr(st.ATTR_SAME_AS, twin.number)
            study.tell(trial, twin.value)
            tested[trial.number] = tested[twin.number]
            continue
        trial.set_user_attr(st.ATTR_METHOD, values["method"])
        trial.set_user_attr(st.ATTR_PLANNED, int(record["train"]["steps"]))
        seen: list[dict[str, Any]] = []
        previous, pruned = None, False
        for cp in record["checkpoints"]:
            seen.append({"step": cp["step"], "metrics": cp["metrics"], "selection": cp["selection"]})
            previous = pruning_value(seen, settings, record["metric_declarations"], previous)
            trial.report(previous, cp["step"])
            if trial.should_prune():
                pruned = True
                break
        if not pruned:
            selection, test = chosen(record, seen, settings)
            tested[trial.number] = test
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, selection)
    best = study.best_trial
    return tested[best.number], steps_spent(study.trials)


def main() -> None:
    import optuna

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "grid_dirs", nargs="+", type=Path, help="the grid sweeps' directories (trial records)"
    )
    parser.add_argument("--seeds", type=int, default=100, help="sampler seeds 0..N-1 (default 100)")
    parser.add_argument("--trials", type=int, default=18, help="hydra.sweeper.n_trials (default 18)")
    parser.add_argument(
        "--budget-share",
        type=float,
        default=0.5,
        help="hydra.sweeper.budget_steps as a share of the grid's steps (default 0.5; 0: none)",
    )
    parser.add_argument("--sampler", default="tpe", help="a config in conf/hydra/sweeper/sampler")
    parser.add_argument(
        "--sampler-set", nargs="*", default=[], help="key=value overrides of the sampler's config"
    )
    parser.add_argument(
        "--pruner", default="successive_halving", help="a config in conf/hydra/sweeper/pruner"
    )
    parser.add_argument(
        "--pruner-set", nargs="*", default=[], help="key=value overrides of the pruner's config"
    )
    parser.add_argument("--warmup", type=float, default=0.33, help="hydra.sweeper.prune_warmup")
    parser.add_argument("--prune-value", default="peak", help="hydra.sweeper.prune_value")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE's group=True

    grid = load_grid(args.grid_dirs)
    scored = {k: chosen(r, r["checkpoints"], study_settings(args)) for k, r in grid.items()}
    best_key = max(scored, key=lambda k: scored[k][0])
    grid_best = scored[best_key][1]
    grid_steps = sum(int(r["train"]["steps"]) for r in grid.values())
    args.budget_steps = int(args.budget_share * grid_steps) if args.budget_share > 0 else None
    gaps, shares = [], []
    for seed in range(args.seeds):
        test, steps = replay(grid, seed, args)
        gaps.append((grid_best - test) / abs(grid_best))
        shares.append(steps / grid_steps)
    print(f"grid: {len(grid)} settings, {grid_steps} steps; best {best_key} test {grid_best:.4f}")
    print(
        f"replayed {args.seeds} seeds: trials {args.trials}, budget_steps {args.budget_steps}, sampler "
        f"{args.sampler} {args.sampler_set}, pruner {args.pruner} {args.pruner_set}, warm-up {args.warmup}, "
        f"prune value {args.prune_value}"
    )
    median_gap, worst_gap, median_share = statistics.median(gaps), max(gaps), statistics.median(shares)
    print(
        f"median gap {median_gap:+.2%} (aim <= {AIM_GAP:.0%}); worst {worst_gap:+.2%} (aim <= "
        f"{AIM_WORST_GAP:.0%}); seeds over 5%: {sum(g > AIM_WORST_GAP for g in gaps)} of {len(gaps)}; median "
        f"share {median_share:.1%} (aim <= {AIM_SHARE:.0%}), worst share {max(shares):.1%}"
    )
    print(
        "seeds 0-4: "
        + ", ".join(f"gap {g:+.2%} share {s:.1%}" for g, s in zip(gaps[:5], shares[:5], strict=False))
    )


def _config(group: str, name: str, overrides: list[str]) -> dict[str, Any]:
    """``conf/hydra/sweeper/<group>/<name>.yaml`` with ``key=value`` overrides (values parsed as YAML)."""
    import yaml

    root = Path(__file__).resolve().parents[1] / "conf" / "hydra" / "sweeper" / group
    config = yaml.safe_load((root / f"{name}.yaml").read_text())
    for item in overrides:
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    return config


def study_settings(args: argparse.Namespace) -> Any:
    """The replayed study's settings: the gold reward, maximised, within the default KL budget."""
    from harness.sweep import study as st

    return st.StudySettings(
        study_name="replay",
        storage="",
        objectives=["gold_reward"],
        directions=["maximize"],
        prune_warmup=args.warmup,
        prune_value=args.prune_value,
    )


if __name__ == "__main__":
    main()
