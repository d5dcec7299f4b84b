"""Health flags: each of the seed's gotchas raises its flag, and a healthy trajectory raises none."""

from __future__ import annotations

import pytest

from harness.evaluation.health import checkpoint_flags, learning_rate_flag, lr_range_for_size

pytestmark = pytest.mark.unit

REFERENCE = {
    "kl": 0.0,
    "gold_reward": 0.0,
    "gold_reward_se": 0.04,
    "reward_model_score": 0.1,
    "distinct_2": 0.6,
    "length": 10.0,
}


def names(flags) -> set[str]:
    return {f.flag for f in flags}


def test_a_healthy_trajectory_raises_nothing():
    history = [
        {**REFERENCE, "kl": 0.4, "gold_reward": 0.1, "reward_model_score": 0.3},
        {**REFERENCE, "kl": 1.1, "gold_reward": 0.2, "reward_model_score": 0.5},
    ]
    final = {
        **REFERENCE,
        "kl": 2.0,
        "gold_reward": 0.3,
        "reward_model_score": 0.6,
        "distinct_2": 0.5,
        "length": 9.0,
    }
    assert checkpoint_flags(history[0], REFERENCE, [], final=False) == []  # an early, small KL is expected
    assert checkpoint_flags(final, REFERENCE, history, final=True) == []


@pytest.mark.parametrize(
    ("metrics", "history", "final", "flag"),
    [
        ({"kl": 0.2, "gold_reward": 0.05}, [], True, "kl_low"),
        ({"kl": 22.0, "gold_reward": 0.1}, [], False, "kl_high"),
        ({"kl": 12.0, "gold_reward": 0.5}, [{"kl": 4.0, "gold_reward": 0.3}], False, "reward_hacking"),
        (
            {"kl": 3.0, "gold_reward": -0.2, "gold_reward_se": 0.03, "reward_model_score": 2.0},
            [{"kl": 1.0, "gold_reward": 0.3, "reward_model_score": 0.8}],
            False,
            "over_optimisation",
        ),
        ({"kl": 3.0, "distinct_2": 0.1}, [], False, "mode_collapse"),
        ({"kl": 3.0, "length": 23.0}, [], False, "length_growth"),
    ],
)
def test_each_gotcha_raises_its_flag_with_an_explanation_and_a_fix(metrics, history, final, flag):
    flags = checkpoint_flags(metrics, REFERENCE, history, final=final)
    assert flag in names(flags)
    raised = next(f for f in flags if f.flag == flag)
    assert raised.message and raised.fix and "\n" not in raised.message


def test_gold_falling_within_its_noise_is_not_over_optimisation():
    history = [{"kl": 1.0, "gold_reward": 0.30, "reward_model_score": 0.8}]
    metrics = {"kl": 1.5, "gold_reward": 0.27, "gold_reward_se": 0.03, "reward_model_score": 1.0}
    assert "over_optimisation" not in names(checkpoint_flags(metrics, REFERENCE, history, final=False))


def test_kl_growing_inside_the_healthy_band_is_not_reward_hacking():
    history = [{"kl": 2.0, "gold_reward": 0.1}]
    assert checkpoint_flags({"kl": 5.0, "gold_reward": 0.3}, REFERENCE, history, final=False) == []


def test_learning_rate_range_scales_with_model_size():
    assert lr_range_for_size((5e-7, 5e-6), 7_000_000_000) == (5e-7, 5e-6)
    low, high = lr_range_for_size((5e-7, 5e-6), 10_000_000)  # 100x smaller: 10x larger rates
    assert low == pytest.approx(5e-6) and high == pytest.approx(5e-5)
    assert learning_rate_flag(2e-5, (5e-7, 5e-6), 7_000_000_000) is None  # 4x above: not *far* outside
    assert learning_rate_flag(1e-4, (5e-7, 5e-6), 7_000_000_000).flag == "lr_too_high"
    assert learning_rate_flag(1e-9, (5e-7, 5e-6), 7_000_000_000).flag == "lr_too_low"
    assert learning_rate_flag(3e-4, (5e-7, 5e-6), 562_560) is None  # the toy world's DPO default


def test_a_small_kl_with_a_clear_reward_gain_is_not_kl_low():
    """The toy world's ORPO at KL 0.09 nats lifted the gold reward from 0.012 to 0.16
    (SE 0.043): it learned."""
    learned = {"kl": 0.09, "gold_reward": 0.162, "gold_reward_se": 0.043}
    reference = {"kl": 0.0, "gold_reward": 0.012, "gold_reward_se": 0.043}
    assert "kl_low" not in names(checkpoint_flags(learned, reference, [], final=True))
    within_noise = {**learned, "gold_reward": 0.08}  # a gain of 0.068 < 2 x 0.061
    assert "kl_low" in names(checkpoint_flags(within_noise, reference, [], final=True))
    no_se = {"kl": 0.09, "reward_model_score": 0.5}  # no standard error: cannot tell, the band applies
    assert "kl_low" in names(checkpoint_flags(no_se, {"reward_model_score": 0.1}, [], final=True))
