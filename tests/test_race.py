"""The racing rules (harness.race.rules) on synthetic evidence: what runs next, who is dropped and why, when
the race stops; and the racing sweeper's candidates and bad-input lines."""

from __future__ import annotations

import numpy as np
import pytest

from harness.leaderboard.analysis import twoway
from harness.race import rules as R

pytestmark = pytest.mark.unit

PROMPTS = 64


def _world(means: dict[str, float], seed_sd: float = 0.03, prompt_sd: float = 0.3, seeds: int = 10):
    """Synthetic per-prompt selection scores: every candidate shares the prompts' difficulty and each seed's
    data order effect; ``means`` is each candidate's true value."""
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, prompt_sd, PROMPTS)
    seed_effect = rng.normal(0, seed_sd, seeds + 1)
    out = {}
    for name, mean in means.items():
        rows = {
            s: mean + difficulty + seed_effect[s] + rng.normal(0, seed_sd, 1) + rng.normal(0, 0.1, PROMPTS)
            for s in range(1, seeds + 1)
        }
        out[name] = rows
    return out


def _evidence(world, ran: dict[str, list[int]]) -> dict[str, twoway.Evidence]:
    return {
        name: twoway.Evidence(
            tuple(seeds),
            tuple(float(world[name][s].mean()) for s in seeds),
            tuple(world[name][s] for s in seeds),
            tuple(float("nan") for _ in seeds),
        )
        for name, seeds in ran.items()
        if seeds
    }


def _race(world, candidates, rules, base=0.0):
    ran: dict[str, list[int]] = {n: [] for n in candidates}
    steps = 0
    for _ in range(50):
        step = R.next_step(candidates, _evidence(world, ran), rules, base=base, spent_steps=steps)
        if step.done:
            return step, ran
        for name, seed in step.jobs:
            ran[name].append(seed)
            steps += rules.steps_per_trial or 0
    raise AssertionError("the race did not stop")


def test_the_search_round_runs_every_candidate_with_the_first_seed():
    world = _world({"dpo a": 0.5, "dpo b": 0.3, "orpo a": 0.4})
    candidates = {"dpo a": "dpo", "dpo b": "dpo", "orpo a": "orpo"}
    step = R.next_step(candidates, {}, R.RaceRules(seeds=(7, 8, 9)))
    assert sorted(step.jobs) == [("dpo a", 7), ("dpo b", 7), ("orpo a", 7)] and not step.done
    _ = world


def test_each_method_keeps_its_best_setting_after_the_search():
    world = _world({"dpo a": 0.5, "dpo b": 0.2, "orpo a": 0.4})
    candidates = {"dpo a": "dpo", "dpo b": "dpo", "orpo a": "orpo"}
    step = R.next_step(candidates, _evidence(world, {n: [1] for n in candidates}), R.RaceRules())
    assert step.dropped.keys() == {"dpo b"} and step.dropped["dpo b"].startswith("search: behind dpo a")
    assert sorted(step.jobs) == [("dpo a", 2), ("orpo a", 2)]


def test_a_candidate_clearly_behind_is_dropped_and_a_close_one_is_kept():
    world = _world({"dpo": 0.50, "simpo": 0.10, "orpo": 0.49})
    candidates = {"dpo": "dpo", "simpo": "simpo", "orpo": "orpo"}
    after_two = R.next_step(candidates, _evidence(world, {n: [1, 2] for n in candidates}), R.RaceRules())
    assert "simpo" in after_two.dropped and "behind" in after_two.dropped["simpo"]
    assert "Holm p" in after_two.dropped["simpo"]
    assert set(after_two.alive) == {"dpo", "orpo"}
    assert sorted(after_two.jobs) == [("dpo", 3), ("orpo", 3)]  # the survivors get the next seed


def test_the_race_stops_when_one_is_left():
    world = _world({"dpo": 0.6, "simpo": 0.1, "orpo": 0.2})
    step, ran = _race(world, {"dpo": "dpo", "simpo": "simpo", "orpo": "orpo"}, R.RaceRules())
    assert step.done and step.why == R.DECIDED and step.alive == ["dpo"]
    assert len(ran["simpo"]) == 2 and len(ran["orpo"]) == 2  # dropped at the first test, nothing more spent


def test_the_race_stops_tied_when_every_survivor_is_inside_the_margin():
    world = _world({"dpo": 0.500, "orpo": 0.501}, seed_sd=0.005, prompt_sd=0.3)
    step, _ = _race(world, {"dpo": "dpo", "orpo": "orpo"}, R.RaceRules(margin_share=0.2), base=-0.5)
    assert step.done and step.why == R.TIED and set(step.alive) == {"dpo", "orpo"}


def test_the_budget_stops_the_race_between_rounds_never_inside_one():
    world = _world({"dpo": 0.50, "orpo": 0.48, "simpo": 0.47}, seed_sd=0.05)
    candidates = {"dpo": "dpo", "simpo": "simpo", "orpo": "orpo"}
    rules = R.RaceRules(budget_steps=5 * 100, steps_per_trial=100)  # the search (3) and one round (2 or 3)
    step, ran = _race(world, candidates, rules)
    assert step.done and step.why == R.SPENT
    assert sum(len(s) for s in ran.values()) <= 6
    rounds = {len(s) for n, s in ran.items() if n in step.alive}
    assert len(rounds) == 1  # every survivor has the same seeds: no partial round


def test_the_seeds_running_out_stops_an_open_race():
    world = _world({"dpo": 0.50, "orpo": 0.49}, seed_sd=0.2)
    step, ran = _race(world, {"dpo": "dpo", "orpo": "orpo"}, R.RaceRules(seeds=(1, 2, 3)))
    assert step.done and step.why in (R.EXHAUSTED, R.DECIDED, R.TIED)
    assert all(len(s) <= 3 for s in ran.values())


def test_a_replayed_history_gives_the_same_step():
    """The rules read each round's evidence as the race saw it then: later seeds in the evidence (a resumed
    study, another worker's trials) do not change an earlier round's drops."""
    world = _world({"dpo": 0.50, "simpo": 0.10, "orpo": 0.49})
    candidates = {"dpo": "dpo", "simpo": "simpo", "orpo": "orpo"}
    ran = {"dpo": [1, 2, 3], "orpo": [1, 2, 3], "simpo": [1, 2]}
    step = R.next_step(candidates, _evidence(world, ran), R.RaceRules())
    assert "simpo" in step.dropped and sorted(step.jobs) == [("dpo", 4), ("orpo", 4)]
