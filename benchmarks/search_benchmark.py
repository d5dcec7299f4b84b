"""The search benchmark: TPE with the sweep's pruner against random search with and without it, per toy world.

Each world's grid (learning rate x the method's ``beta``, for each of several methods, every trial's evaluated
checkpoints recorded) is a landscape; ``benchmarks/pruning_replay.py`` replays a search on it for one sampler
seed. This script replays every searcher for many seeds on each world separately, at the same trial cap and
the same step budget, and reports per world and searcher the distribution of the gap between the search's pick
(its best *selection* value) and the grid's pick, both measured on the *test* prompts: median, 90th percentile
(linear interpolation) and worst, as a share of the grid best's |test value|, in standard errors of it (its
``gold_reward_se`` at its chosen checkpoint) and absolute; the share of seeds over 5%; how often the pick is
the grid's best cell; the median share of the grid's training steps. TPE with pruning is compared with each
random searcher paired by seed (same seed, so the same random draws while TPE is still in its random start):
the mean gap difference with a bootstrap 95% interval over seeds.

The space is continuous (log-uniform learning rate and ``beta``), the landscape tabular: a sampled point reads
the nearest grid point in log space, so no search can find anything between grid points.

    python benchmarks/search_benchmark.py /work/studies/multirun/tune-{dpo,orpo}-w? \
        /work/studies/multirun/tune-simpo-b*-w? [--seeds 200] [--trials 9] [--budget-share 0.3333] \
        [--methods dpo,simpo,orpo] [--out leaderboards/pruning-benchmark]

A world whose grid misses a point of its full product (method x beta x learning rate) is skipped with a line
saying which. ``--out`` writes ``SUMMARY.md`` (the table, the command, a sentence per world) and ``raw.csv``
(every replayed search) there.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pruning_replay as pr

OVER = 0.05  # the share-over threshold (gap as a share of |best|)
SEARCHERS = {
    "tpe+pruning": pr.Searcher("TPE + pruning", "tpe", "successive_halving"),
    "random": pr.Searcher("random", "random"),
    "random+pruning": pr.Searcher("random + pruning", "random", "successive_halving"),
    "tpe3+pruning": pr.Searcher(
        "TPE (3 random first) + pruning", "tpe", "successive_halving", (("n_startup_trials", 3),)
    ),
}
BASELINES = ("random", "random+pruning")


@dataclass(frozen=True)
class Result:
    """One searcher's replays on one world, seed by seed."""

    world: int
    searcher: str
    outcomes: list[pr.Outcome]
    best: pr.Cell
    grid_steps: int

    @property
    def gaps(self) -> np.ndarray:
        """Absolute gaps on the test prompts: grid best's test value minus the pick's, per seed."""
        return np.array([self.best.test - o.pick.test for o in self.outcomes])

    @property
    def relative(self) -> np.ndarray:
        """Gaps as a share of the grid best's |test value|."""
        return self.gaps / abs(self.best.test)

    @property
    def in_se(self) -> np.ndarray:
        """Gaps in standard errors of the grid best's test value."""
        return self.gaps / self.best.test_se

    @property
    def shares(self) -> np.ndarray:
        """Each search's training steps as a share of the grid's."""
        return np.array([o.steps / self.grid_steps for o in self.outcomes])

    @property
    def over(self) -> float:
        """Share of seeds whose gap is over 5% of |best|."""
        return float(np.mean(self.relative > OVER))

    @property
    def hits(self) -> float:
        """Share of seeds whose pick is the grid's best cell."""
        return float(np.mean([o.pick.key == self.best.key for o in self.outcomes]))


def spread(values: np.ndarray) -> tuple[float, float, float]:
    """(median, 90th percentile (linear interpolation), worst = largest) of ``values``."""
    return float(np.median(values)), float(np.percentile(values, 90)), float(np.max(values))


def paired(ours: np.ndarray, theirs: np.ndarray, draws: int = 2000) -> tuple[float, float, float]:
    """Mean of ``theirs - ours`` over seeds (positive: ours has the smaller gaps) and its bootstrap 95%
    interval, resampling seeds (pairs kept together); fixed bootstrap seed."""
    diff = np.asarray(theirs) - np.asarray(ours)
    rng = np.random.default_rng(0)
    means = diff[rng.integers(0, len(diff), size=(draws, len(diff)))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def word(ours: Result, theirs: Result) -> str:
    """Whether ``ours`` beats, ties with or loses to ``theirs``: the bootstrap 95% interval of the mean
    paired difference in relative gap is above zero, straddles it, or is below it ("is identical to": the
    same gap on every seed)."""
    if np.array_equal(ours.relative, theirs.relative):
        return "is identical to"
    _, low, high = paired(ours.relative, theirs.relative)
    return "beats" if low > 0 else "loses to" if high < 0 else "ties with"


def verdict(ours: Result, theirs: Result) -> str:
    """A plain sentence: how ``ours`` compares with ``theirs`` (:func:`word`) and the figures behind it."""
    mean, low, high = paired(ours.relative, theirs.relative)
    better = int(np.sum(ours.relative < theirs.relative))
    worse = int(np.sum(ours.relative > theirs.relative))
    return (
        f"{SEARCHERS[ours.searcher].name} {word(ours, theirs)} {SEARCHERS[theirs.searcher].name}: mean gap "
        f"{ours.relative.mean():.2%} against {theirs.relative.mean():.2%}, paired difference {mean:+.2%} "
        f"(95% bootstrap interval {low:+.2%} to {high:+.2%}); a smaller gap on {better} seeds, a larger one "
        f"on {worse}, the same on {len(ours.outcomes) - better - worse}."
    )


def run_world(
    landscape: pr.Landscape, names: list[str], seeds: int, trials: int, budget: int | None, settings: object
) -> dict[str, Result]:
    """Every searcher in ``names`` replayed for seeds 0..seeds-1 on ``landscape``."""
    return {
        name: Result(
            landscape.world,
            name,
            [pr.replay(landscape, SEARCHERS[name], s, trials, budget, settings) for s in range(seeds)],
            landscape.best,
            landscape.steps,
        )
        for name in names
    }


def table(results: list[Result]) -> list[str]:
    """The Markdown table, one row per world and searcher."""
    lines = [
        "| world | searcher | gap, % of best (median / p90 / worst) | gap, SE of best (median / p90 / worst) "
        "| gap, absolute (median / p90 / worst) | seeds over 5% | P(pick = grid's best) "
        "| median share of grid's steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        pct, se, ab = spread(r.relative), spread(r.in_se), spread(r.gaps)
        lines.append(
            f"| {r.world} | {SEARCHERS[r.searcher].name} | {' / '.join(f'{v:.1%}' for v in pct)} "
            f"| {' / '.join(f'{v:.2f}' for v in se)} | {' / '.join(f'{v:.3f}' for v in ab)} "
            f"| {r.over:.1%} | {r.hits:.1%} | {np.median(r.shares):.1%} |"
        )
    return lines


def describe(landscape: pr.Landscape) -> str:
    """One line naming a world's grid, its pick and its runner-up (by selection value)."""
    best, second = sorted(landscape.cells.values(), key=lambda c: -c.selection)[:2]

    def name(c: pr.Cell) -> str:
        return f"{c.key[0]} beta {c.key[1]:g} lr {c.key[2]:g}"

    below = (best.test - second.test) / best.test_se
    return (
        f"toy world {landscape.world} (`toyworld.spec.seed={landscape.world}`): {len(landscape.cells)} grid "
        f"points ({', '.join(landscape.methods)}), {landscape.steps} steps; the grid's pick {name(best)}: "
        f"test {best.test:.3f} +/- {best.test_se:.3f} (selection {best.selection:.3f}); runner-up "
        f"{name(second)}: test {second.test:.3f} ({below:+.1f} SE below the pick)"
    )


def sentences(by_world: dict[int, dict[str, Result]]) -> list[str]:
    """Per world, a headline (TPE with pruning against both random searchers), then each comparison."""
    pairs = [("tpe+pruning", b) for b in BASELINES] + [("random+pruning", "random")]
    pairs += [("tpe3+pruning", b) for b in BASELINES]
    out = []
    for world, results in by_world.items():
        if not all(n in results for n in ("tpe+pruning", *BASELINES)):
            continue
        tpe = results["tpe+pruning"]
        out.append(
            f"- **World {world}: TPE + pruning {word(tpe, results['random'])} random search and "
            f"{word(tpe, results['random+pruning'])} random search with the same pruner.**"
        )
        out += [f"    - {verdict(results[a], results[b])}" for a, b in pairs if a in results and b in results]
    return out


def notes(args: argparse.Namespace, names: list[str]) -> list[str]:
    """What a reader must know to read the table: repeats, the budget, TPE's random start."""
    said = [
        "A draw that lands in a cell a completed trial already trained is told that result: it costs no "
        f"steps and, up to {args.trials} such repeats, does not count toward the cap (as the sweep counts "
        "repeats). With pruning, the trial cap ends a search before the step budget does, so it spends "
        "fewer steps."
    ]
    startup = pr.sweeper_config(pr.SAMPLERS, "tpe").get("n_startup_trials", 10)
    if "tpe+pruning" in names and startup >= args.trials:
        said.append(
            f"The sweep's TPE (conf/hydra/sweeper/sampler/tpe.yaml) draws its first {startup} trials at "
            f"random; at a cap of {args.trials} trials it reaches its model only when free repeats bring it "
            f"to {startup} finished trials, and with the same seed its random draws are random search's, so "
            "TPE + pruning and random + pruning coincide on most seeds. The row TPE (3 random first) + "
            "pruning shows TPE's model at work at this budget."
        )
    return said


def summary(args: argparse.Namespace, lands: list[pr.Landscape], by_world: dict, command: str) -> str:
    """SUMMARY.md's text."""
    results = [r for world in by_world.values() for r in world.values()]
    budget = ", ".join(f"world {w.world}: {budget_of(w, args)} steps" for w in lands)
    return "\n".join(
        [
            "# Search benchmark: TPE + pruning against random search",
            "",
            f"{args.seeds} sampler seeds per world and searcher; at most {args.trials} trials and a budget "
            f"of {args.budget_share:.4g} of the grid's training steps ({budget}). Each search's pick is its "
            "best *selection* value; its gap to the grid's pick is measured on the *test* prompts (gold "
            "reward at the leaderboard's checkpoint). SE: the grid best's test standard error.",
            "",
            "**A tabular benchmark with a continuous sampler.** Learning rate and beta are log-uniform per "
            "method (the grid's span widened by half a grid step each side); a sampled point reads the "
            "nearest grid point in log space, so the search cannot find anything between grid points.",
            "",
            *[f"- {describe(w)}" for w in lands],
            "",
            *table(results),
            "",
            *sentences(by_world),
            "",
            *notes(args, list(by_world[next(iter(by_world))]) if by_world else []),
            *args.skipped,
            "",
            "Command (in the repository root; the directories are the grids' sweeps):",
            "",
            "```text",
            command,
            "```",
            "",
        ]
    )


def budget_of(landscape: pr.Landscape, args: argparse.Namespace) -> int | None:
    """The step budget on ``landscape``: ``--budget-share`` of its grid's steps (None: no budget)."""
    return int(args.budget_share * landscape.steps) if args.budget_share > 0 else None


def write_raw(path: Path, by_world: dict[int, dict[str, Result]]) -> None:
    """Every replayed search as one CSV row."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["world", "searcher", "seed", "method", "beta", "learning_rate", "test", "gap", "steps"])
        for world, results in by_world.items():
            for name, r in results.items():
                for seed, (o, gap) in enumerate(zip(r.outcomes, r.gaps, strict=True)):
                    out.writerow(
                        [world, name, seed, *o.pick.key, f"{o.pick.test:.6f}", f"{gap:.6f}", o.steps]
                    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dirs", nargs="+", type=Path, help="sweep directories holding the grids' trial records"
    )
    parser.add_argument("--seeds", type=int, default=200, help="sampler seeds 0..N-1 (default 200)")
    parser.add_argument("--trials", type=int, default=9, help="hydra.sweeper.n_trials (default 9)")
    parser.add_argument(
        "--budget-share", type=float, default=1 / 3, help="step budget as a share of the grid's (default 1/3)"
    )
    parser.add_argument(
        "--methods", default="dpo,simpo,orpo", help="the searched methods (default dpo,simpo,orpo)"
    )
    parser.add_argument(
        "--searchers", default=",".join(SEARCHERS), help=f"of {', '.join(SEARCHERS)} (default all)"
    )
    parser.add_argument(
        "--warmup", type=float, default=0.33, help="hydra.sweeper.prune_warmup (default 0.33)"
    )
    parser.add_argument("--prune-value", default="peak", help="hydra.sweeper.prune_value (default peak)")
    parser.add_argument("--out", type=Path, help="write SUMMARY.md and raw.csv in this directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print (and with ``--out`` write) its table."""
    import optuna

    args = parse(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE's group=True
    settings = pr.study_settings(args.warmup, args.prune_value)
    names = args.searchers.split(",")
    lands, args.skipped = [], []
    for land in pr.load_landscapes(args.dirs, args.methods.split(","), settings).values():
        missing = land.missing()
        if missing or len(land.methods) < len(args.methods.split(",")):
            args.skipped.append(
                f"World {land.world} skipped: its grid is incomplete ({len(land.cells)} points)."
            )
            continue
        lands.append(land)
    by_world = {
        w.world: run_world(w, names, args.seeds, args.trials, budget_of(w, args), settings) for w in lands
    }
    command = shlex.join(["python", *sys.argv])
    text = summary(args, lands, by_world, command)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "SUMMARY.md").write_text(text)
        write_raw(args.out / "raw.csv", by_world)


if __name__ == "__main__":
    main()
