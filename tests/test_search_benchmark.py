"""The search benchmark (benchmarks/search_benchmark.py, benchmarks/pruning_replay.py) on a synthetic grid:
records built here, no training; one cell is clearly best."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.records.trial import SCHEMA_VERSION

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import pruning_replay as pr  # noqa: E402
import search_benchmark as sb  # noqa: E402

pytestmark = pytest.mark.unit

LRS = [1e-4, 3e-4, 9e-4]
BETAS = {"dpo": [0.01, 0.07, 0.5], "simpo": [2.0, 4.5, 10.0], "orpo": [0.1, 0.3, 1.0]}
BEST = ("dpo", 0.07, 3e-4)
STEPS, CHECKPOINTS = 375, (62, 125, 188, 250, 312, 375)
DECLARED = {
    "gold_reward": {"direction": "maximize", "column": "gold_reward", "se": "gold_reward_se"},
    "gold_reward_se": {"direction": None, "column": "gold_se", "se": None},
    "kl": {"direction": "minimize", "column": "kl", "se": "kl_se"},
    "kl_se": {"direction": None, "column": "kl_se", "se": None},
}


def _value(method: str, beta: float, lr: float) -> float:
    """The synthetic landscape's final gold reward: 0.5 at BEST, at most 0.3 elsewhere."""
    if (method, beta, lr) == BEST:
        return 0.5
    return 0.1 + 0.1 * BETAS[method].index(beta) / 2 + 0.1 * LRS.index(lr) / 2


def _record(method: str, beta: float, lr: float, world: int) -> dict:
    final = _value(method, beta, lr)
    checkpoints = []
    for step in CHECKPOINTS:
        value = final * step / STEPS  # rising to its final value: the last checkpoint is the chosen one
        metrics = {"gold_reward": value, "gold_reward_se": 0.05, "kl": 0.1, "kl_se": 0.01}
        selection = {**metrics, "gold_reward": value - 0.01}
        checkpoints.append({"step": step, "metrics": metrics, "selection": {"metrics": selection}})
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "completed",
        "method": method,
        "hyperparameters": {"beta": beta, "learning_rate": lr},
        "config": {"toyworld": {"spec": {"seed": world}}},
        "checkpoints": checkpoints,
        "train": {"steps": STEPS},
        "metric_declarations": DECLARED,
    }


@pytest.fixture(scope="module")
def landscape(tmp_path_factory: pytest.TempPathFactory) -> pr.Landscape:
    root = tmp_path_factory.mktemp("grid")
    n = 0
    for method, betas in BETAS.items():
        for beta in betas:
            for lr in LRS:
                (root / str(n)).mkdir()
                (root / str(n) / "trial.json").write_text(json.dumps(_record(method, beta, lr, world=2)))
                n += 1
    worlds = pr.load_landscapes([root], ["dpo", "simpo", "orpo"])
    assert list(worlds) == [2]
    return worlds[2]


def test_the_grid_is_read_per_world_with_its_pick(landscape):
    assert len(landscape.cells) == 27 and not landscape.missing()
    best = landscape.best
    assert best.key == BEST
    assert best.test == pytest.approx(0.5) and best.selection == pytest.approx(0.49)
    assert best.test_se == pytest.approx(0.05)
    assert landscape.steps == 27 * STEPS


def test_each_grid_point_owns_an_equal_log_cell_and_a_draw_reads_the_nearest():
    low, high = pr.log_bounds(LRS)
    assert low == pytest.approx(1e-4 / math.sqrt(3)) and high == pytest.approx(9e-4 * math.sqrt(3))
    edges = [low, math.sqrt(1e-4 * 3e-4), math.sqrt(3e-4 * 9e-4), high]
    widths = np.diff(np.log(edges))
    assert widths == pytest.approx([math.log(3)] * 3)
    assert pr.nearest(LRS, edges[1] * 0.999) == 1e-4 and pr.nearest(LRS, edges[1] * 1.001) == 3e-4
    assert pr.nearest(LRS, low) == 1e-4 and pr.nearest(LRS, high) == 9e-4
    assert (
        pr.nearest(LRS, 2.9e-4) == 3e-4
        and pr.nearest(LRS, 5.1e-4) == 3e-4
        and pr.nearest(LRS, 5.3e-4) == 9e-4
    )


def test_a_sampled_point_reads_its_cell_and_the_space_is_continuous(landscape):
    import optuna.distributions as D

    space = pr.search_space(landscape)
    dist = space.per_method["simpo"]["beta"]
    assert isinstance(dist, D.FloatDistribution) and dist.log
    assert (dist.low, dist.high) == pytest.approx(pr.log_bounds([2.0, 4.5, 10.0]))
    values = {"method": "dpo", "method.beta": 0.06, "method.learning_rate": 2.5e-4}
    assert pr.cell_of(landscape, values).key == BEST


def test_random_search_without_pruning_trains_every_trial_in_full(landscape):
    for seed in range(5):
        outcome = pr.replay(landscape, sb.SEARCHERS["random"], seed, trials=9, budget_steps=9 * STEPS)
        assert outcome.steps == 9 * STEPS
        pruned = pr.replay(landscape, sb.SEARCHERS["random+pruning"], seed, trials=9, budget_steps=9 * STEPS)
        assert pruned.steps < outcome.steps  # the pruner stops some trials at its first rung


def test_a_search_picks_its_best_completed_trial_by_selection(landscape):
    results = sb.run_world(landscape, ["random", "tpe3+pruning"], 10, 9, 9 * STEPS, pr.study_settings())
    for result in results.values():
        for outcome in result.outcomes:
            best_seen = max(outcome.completed, key=lambda k: landscape.cells[k].selection)
            assert outcome.pick.key == best_seen
            assert (outcome.pick.key == BEST) == (BEST in outcome.completed)
    assert all(len(set(o.completed)) == 9 for o in results["random"].outcomes)  # 9 settings trained
    hits = [np.mean([BEST in o.completed for o in r.outcomes]) for r in results.values()]
    assert [r.hits for r in results.values()] == pytest.approx(hits)


def test_gap_statistics_on_a_hand_checked_case(landscape):
    best = landscape.best  # test 0.5, se 0.05
    others = sorted(landscape.cells.values(), key=lambda c: -c.test)
    by_test = {round(c.test, 3): c for c in others}
    picks = [best, by_test[0.3], by_test[0.25], best, by_test[0.1]]  # gaps 0, .2, .25, 0, .4
    result = sb.Result(2, "random", [pr.Outcome(c, 3 * STEPS) for c in picks], best, 27 * STEPS)
    assert result.gaps == pytest.approx([0, 0.2, 0.25, 0, 0.4])
    assert sb.spread(result.relative) == pytest.approx((0.4, 0.5 + 0.6 * 0.3, 0.8))  # p90: 0.9 * 4 = 3.6
    assert sb.spread(result.in_se) == pytest.approx((4.0, 5 + 0.6 * 3, 8.0))
    assert result.over == pytest.approx(3 / 5) and result.hits == pytest.approx(2 / 5)
    assert np.median(result.shares) == pytest.approx(1 / 9)
    mean, low, high = sb.paired(result.relative, result.relative)
    assert (mean, low, high) == (0.0, 0.0, 0.0)
    assert sb.word(result, result) == "is identical to"
    worse = sb.Result(2, "random+pruning", [pr.Outcome(by_test[0.1], STEPS)] * 5, best, 27 * STEPS)
    assert sb.paired(result.relative, worse.relative)[0] == pytest.approx(0.8 - (0.4 + 0.5 + 0.8) / 5)
    assert sb.word(result, worse) == "beats" and sb.word(worse, result) == "loses to"
    assert "paired difference +46.00%" in sb.verdict(result, worse)
