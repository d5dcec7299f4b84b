"""End to end on the default toy world at default settings (slow: the world builds in about a minute).

These are the numbers a user sees first: training must visibly improve the policy, every checkpoint must be
evaluated the same way, a healthy default run must raise no health flag (today's DPO default does not meet it:
a known defect, marked) and a deliberately bad one must.
"""

from __future__ import annotations

import pytest

from harness.config.compose import compose_job
from harness.trial import run_trial

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_world(cache_dir) -> list[str]:
    return [f"toyworld.cache_dir={cache_dir / 'toyworld'}", f"eval.cache_dir={cache_dir / 'refeval'}"]


@pytest.fixture(scope="module")
def default_dpo(default_world, tmp_path_factory) -> dict:
    """One DPO trial at the default settings on the default world."""
    return run_trial(compose_job([*default_world, "method=dpo"], {}), tmp_path_factory.mktemp("default-dpo"))


def test_default_dpo_improves_gold_reward_and_kl_grows(default_dpo):
    record = default_dpo
    assert record["status"] == "completed", record["error"]
    checkpoints = [c for c in record["checkpoints"] if c["metrics"]]
    assert len(checkpoints) >= 3
    first, last = checkpoints[0]["metrics"], checkpoints[-1]["metrics"]
    base = record["reference"]["metrics"]
    assert last["gold_reward"] > first["gold_reward"] > base["gold_reward"]
    assert last["gold_reward"] > base["gold_reward"] + 3 * last["gold_reward_se"]
    assert last["kl"] > first["kl"] > 0
    assert last["win_rate"] > 0.5 and last["preference_accuracy"] > 0.5
    assert all("lm_eval/toy_grammar/acc" in c["metrics"] for c in checkpoints)


@pytest.mark.xfail(
    strict=True,
    reason="known defect: the DPO default from the tuning on worlds 0-2 (lr 9e-4, beta 0.5) grows "
    "completions from 11 to 17 tokens on world 0 (length_growth); the tuning measured no lengths, so it "
    "could not exclude unhealthy settings. A tuning that requires flag-free runs will fix it, and this test "
    "will then pass: remove the mark.",
)
def test_the_default_dpo_run_raises_no_health_flag(default_dpo):
    assert default_dpo["health"] == [], default_dpo["health"]


def test_a_learning_rate_100x_the_default_raises_health_flags(default_world, tmp_path):
    overrides = [
        *default_world,
        "method=dpo",
        "method.learning_rate=3e-2",
        "method.max_steps=120",
        "train.num_checkpoints=2",
    ]
    record = run_trial(compose_job(overrides, {}), tmp_path)
    flags = {f["flag"] for f in record["health"]}
    assert "lr_too_high" in flags
    assert flags & {"kl_high", "reward_hacking", "mode_collapse", "length_growth"}, (
        flags
    )  # seen in the samples
    assert all(f["message"] and f["fix"] for f in record["health"])
