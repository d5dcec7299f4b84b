"""Replay one Optuna search on a grid's recorded trials: a tabular landscape searched by a continuous sampler.

``benchmarks/pruning.py`` trains every trial of a search for real (minutes per search on 2 cores). Training is
deterministic given a trial's config, so a search that draws a grid point would train exactly that grid trial
again: the same checkpoints, the same values. This module replays a search on a grid's records instead, with
the sweep's own pieces: the define-by-run space (:class:`harness.sweep.space.SearchSpace`), the sampler and
pruner as ``conf/hydra/sweeper/{sampler,pruner}/*.yaml`` build them
(:func:`harness.sweep.reporter.build_pruner`, like-for-like by method, with the warm-up), the value told to
the pruner
(:func:`harness.sweep.reporter.pruning_value`), the trial cap (:func:`harness.sweep.trials.counted_trials`),
the step budget (:func:`harness.sweep.trials.steps_spent`) and the leaderboard's checkpoint choice
(:func:`harness.sweep.study.choose_checkpoint`). ``benchmarks/search_benchmark.py`` runs it for many seeds.

**The space is continuous, the landscape is not.** Per method, the learning rate and ``beta`` are log-uniform
over the grid's span widened by half a grid step (in log space) on each side, so each grid point owns one cell
of the log axis; the method is categorical. A sampled point reads the record of the **nearest grid point in
log space**: the search cannot find anything between grid points, and its gap to the grid's best is a gap on
the grid. A draw that lands in a cell a completed trial already trained is told that trial's result and counts
as the sweep counts a repeat (free up to the trial cap, no steps); a pruned cell drawn again is replayed from
the start, as the sweep retrains it. Not modelled: parallel trials and lost trials.
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[str, float, float]  # (method, beta, learning_rate)
SAMPLERS, PRUNERS = "sampler", "pruner"


@dataclass(frozen=True)
class Cell:
    """One grid point's recorded trial, reduced to what a replay reads: its planned steps, the steps of its
    evaluated checkpoints, the value it reports to the pruner after each, and (selection value, test value,
    test standard error) at the checkpoint the leaderboard chooses from all of them."""

    key: Key
    steps: int
    checkpoint_steps: tuple[int, ...]
    prune_values: tuple[float | None, ...]
    selection: float
    test: float
    test_se: float


@dataclass
class Landscape:
    """One toy world's grid: its cells by (method, beta, learning rate)."""

    world: int
    cells: dict[Key, Cell] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """The methods on the grid, sorted."""
        return sorted({k[0] for k in self.cells})

    def axis(self, method: str, position: int) -> list[float]:
        """The sorted grid values of ``method``'s beta (``position`` 1) or learning rate (2)."""
        return sorted({k[position] for k in self.cells if k[0] == method})

    @property
    def best(self) -> Cell:
        """The grid's pick: the cell with the best selection value (maximised), as the leaderboard picks."""
        return max(self.cells.values(), key=lambda c: c.selection)

    @property
    def steps(self) -> int:
        """Training steps of the whole grid."""
        return sum(c.steps for c in self.cells.values())

    def missing(self) -> list[Key]:
        """Grid points of the full product (method x beta x learning rate) with no completed record."""
        return [
            (m, b, lr)
            for m in self.methods
            for b in self.axis(m, 1)
            for lr in self.axis(m, 2)
            if (m, b, lr) not in self.cells
        ]


def log_bounds(values: Sequence[float]) -> tuple[float, float]:
    """The span of sorted grid ``values`` widened by half a grid step in log space on each side (a single
    value: a factor of 2 each way)."""
    logs = [math.log(v) for v in values]
    below = (logs[1] - logs[0]) / 2 if len(logs) > 1 else math.log(2)
    above = (logs[-1] - logs[-2]) / 2 if len(logs) > 1 else math.log(2)
    return math.exp(logs[0] - below), math.exp(logs[-1] + above)


def nearest(values: Sequence[float], x: float) -> float:
    """The grid value of sorted ``values`` nearest to ``x`` in log space (a tie goes to the lower one)."""
    i = bisect.bisect_left(values, x)
    if i == 0:
        return values[0]
    if i == len(values):
        return values[-1]
    low, high = values[i - 1], values[i]
    return low if math.log(x) - math.log(low) <= math.log(high) - math.log(x) else high


def search_space(landscape: Landscape) -> Any:
    """The continuous space over ``landscape``: method categorical; per method, ``beta`` and
    ``learning_rate`` log-uniform over :func:`log_bounds` of its grid values."""
    import optuna.distributions as D

    from harness.sweep.space import SearchSpace

    per_method = {
        m: {
            name: D.FloatDistribution(*log_bounds(landscape.axis(m, position)), log=True)
            for name, position in (("beta", 1), ("learning_rate", 2))
        }
        for m in landscape.methods
    }
    return SearchSpace(methods=landscape.methods, per_method=per_method)


def cell_of(landscape: Landscape, values: Mapping[str, Any]) -> Cell:
    """The cell a sampled point reads (``values`` as :meth:`SearchSpace.sample` returns them)."""
    method = str(values["method"])
    beta = nearest(landscape.axis(method, 1), float(values["method.beta"]))
    lr = nearest(landscape.axis(method, 2), float(values["method.learning_rate"]))
    return landscape.cells[(method, beta, lr)]


def study_settings(warmup: float = 0.33, prune_value: str = "peak") -> Any:
    """The replayed study's settings: the gold reward, maximised, within the leaderboard's default KL
    budget; the pruner's warm-up and pruning value as ``hydra.sweeper.prune_warmup`` / ``prune_value``."""
    from harness.sweep import study as st

    return st.StudySettings(
        study_name="replay",
        storage="",
        objectives=["gold_reward"],
        directions=["maximize"],
        prune_warmup=warmup,
        prune_value=prune_value,
    )


def make_cell(record: Any, settings: Any) -> Cell:
    """A :class:`Cell` from a completed :class:`harness.records.TrialRecord`: the values its checkpoints
    report to the pruner as :class:`harness.sweep.reporter.TrialReporter` computes them, and its values at
    the leaderboard's checkpoint."""
    from harness.leaderboard.analysis.frames import SELECTION_PREFIX
    from harness.records import Checkpoint
    from harness.sweep import study as st
    from harness.sweep.reporter import pruning_value

    declared = record.metric_declarations or {}
    prune_values: list[float | None] = []
    seen: list[Checkpoint] = []  # what the trial's reporter has seen: step, metrics, selection metrics
    previous = None
    for c in record.checkpoints:
        seen.append(Checkpoint(step=c.step, metrics=dict(c.metrics), selection=c.selection))
        value = pruning_value(seen, settings, declared, previous)
        previous = value if value is not None else previous
        prune_values.append(value)
    row, column = st.choose_checkpoint(
        record.checkpoints, settings.objectives, settings.kl_budget, "maximize", declared
    )
    if row is None:
        raise ValueError(f"{record.path}: no {settings.objectives[0]} in its evaluated checkpoints")
    se_column = declared.get(declared.get(settings.objectives[0], {}).get("se", ""), {}).get("column")
    hp = record.hyperparameters
    return Cell(
        key=(str(record.method), float(hp["beta"]), float(hp["learning_rate"])),
        steps=int(record.train.steps or record.checkpoints[-1].step),
        checkpoint_steps=tuple(int(c.step) for c in record.checkpoints),
        prune_values=tuple(prune_values),
        selection=float(row[f"{SELECTION_PREFIX}{column}"]),
        test=float(row[column]),
        test_se=float(row[se_column]) if se_column else math.nan,
    )


def world_of(record: Any) -> int:
    """The toy world a record trained on: ``config.toyworld.spec.seed`` (missing: 0)."""
    spec = ((record.config or {}).get("toyworld") or {}).get("spec") or {}
    return int(spec.get("seed") or 0)


def load_landscapes(
    paths: Iterable[Path], methods: Sequence[str] | None = None, settings: Any = None
) -> dict[int, Landscape]:
    """The completed records under ``paths`` (of ``methods`` only, when given), as one landscape per world."""
    from harness.records import load_records

    settings = settings or study_settings()
    worlds: dict[int, Landscape] = {}
    for record in load_records(paths):
        if record.status != "completed" or (methods and record.method not in methods):
            continue
        world = world_of(record)
        cell = make_cell(record, settings)
        worlds.setdefault(world, Landscape(world)).cells[cell.key] = cell
    return dict(sorted(worlds.items()))


@dataclass(frozen=True)
class Searcher:
    """A search to replay: a sampler config (``conf/hydra/sweeper/sampler/<sampler>.yaml`` with
    ``sampler_set`` overrides) and a pruner config (``conf/hydra/sweeper/pruner/<pruner>.yaml``; None: no
    pruning)."""

    name: str
    sampler: str
    pruner: str | None = None
    sampler_set: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Outcome:
    """One replayed search: the cell it picks (best selection value among its completed trials), the
    training steps it spent and the cells its completed trials read, in order (repeats included)."""

    pick: Cell
    steps: int
    completed: tuple[Key, ...] = ()


def sweeper_config(group: str, name: str, overrides: Iterable[tuple[str, Any]] = ()) -> dict[str, Any]:
    """``conf/hydra/sweeper/<group>/<name>.yaml`` with ``overrides`` applied."""
    import yaml

    root = Path(__file__).resolve().parents[1] / "conf" / "hydra" / "sweeper" / group
    return {**yaml.safe_load((root / f"{name}.yaml").read_text()), **dict(overrides)}


def new_study(searcher: Searcher, seed: int, settings: Any) -> Any:
    """An in-memory Optuna study with ``searcher``'s sampler (seeded) and pruner, as the sweep builds them."""
    import optuna
    from hydra.utils import instantiate

    from harness.sweep.reporter import build_pruner

    pruner_config = sweeper_config(PRUNERS, searcher.pruner) if searcher.pruner else None
    pruner = build_pruner(pruner_config, settings.prune_warmup, True)
    with warnings.catch_warnings():  # TPE's group=True is experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = instantiate(
            {**sweeper_config(SAMPLERS, searcher.sampler, searcher.sampler_set), "seed": seed}
        )
    return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)


def replay(
    landscape: Landscape,
    searcher: Searcher,
    seed: int,
    trials: int,
    budget_steps: int | None,
    settings: Any = None,
) -> Outcome:
    """One search with sampler seed ``seed``, at most ``trials`` counted trials and ``budget_steps`` steps."""
    import optuna

    from harness.sweep import study as st
    from harness.sweep.trials import counted_trials, steps_spent

    settings = settings or study_settings()
    space = search_space(landscape)
    study = new_study(searcher, seed, settings)
    cells: dict[int, Cell] = {}
    while len(counted_trials(study, trials)) < trials and (
        budget_steps is None or steps_spent(study.trials) < budget_steps
    ):
        trial = study.ask()
        cell = cells[trial.number] = cell_of(landscape, space.sample(trial))
        twin = next(
            (
                t
                for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if cells[t.number].key == cell.key
            ),
            None,
        )
        if twin is not None:
            trial.set_user_attr(st.ATTR_SAME_AS, twin.number)
            study.tell(trial, twin.value)
            continue
        trial.set_user_attr(st.ATTR_METHOD, cell.key[0])
        trial.set_user_attr(st.ATTR_PLANNED, cell.steps)
        study.tell(trial, *_train(trial, cell))
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        raise RuntimeError(f"seed {seed}: {searcher.name} completed no trial; raise --trials or the budget")
    return Outcome(
        pick=cells[study.best_trial.number],
        steps=steps_spent(study.trials),
        completed=tuple(cells[t.number].key for t in completed),
    )


def _train(trial: Any, cell: Cell) -> tuple[Any, ...]:
    """Report ``cell``'s checkpoints to ``trial`` as the trial's reporter does; the arguments of
    ``study.tell``: (selection value,) when it completes, (None, PRUNED) when the pruner stops it."""
    import optuna

    for step, value in zip(cell.checkpoint_steps, cell.prune_values, strict=True):
        if value is None:
            continue
        trial.report(value, step)
        if trial.should_prune():
            return None, optuna.trial.TrialState.PRUNED
    return (cell.selection,)
