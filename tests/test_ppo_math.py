"""PPO's arithmetic against hand computations: GAE, whitening, the adaptive KL controller,
the clipped losses."""

from __future__ import annotations

import math

import pytest
import torch
from harness_plugins.methods.ppo_math import (
    AdaptiveKLController,
    gae,
    kl_per_token,
    policy_loss,
    token_rewards,
    value_loss,
    whiten,
)

pytestmark = pytest.mark.unit


def test_gae_matches_a_hand_computation_and_stops_at_the_end_of_each_response():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 2.0, 9.0]])
    values = torch.tensor([[0.5, 0.2, 0.4], [1.0, 0.0, 7.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])  # the second response ends after two tokens
    gamma, lam = 0.9, 0.8
    adv, ret = gae(rewards, values, mask, gamma, lam)
    # Row 1: deltas d2 = 1 - 0.4 = 0.6, d1 = 0 + 0.9*0.4 - 0.2 = 0.16, d0 = 0 + 0.9*0.2 - 0.5 = -0.32;
    # A2 = 0.6, A1 = 0.16 + 0.72*0.6 = 0.592, A0 = -0.32 + 0.72*0.592 = 0.10624.
    assert adv[0].tolist() == pytest.approx([0.10624, 0.592, 0.6])
    # Row 2: the padded token's value (7) and reward (9) are ignored: d1 = 2 - 0 = 2, d0 = 0.5 + 0 - 1 = -0.5,
    # A1 = 2, A0 = -0.5 + 0.72*2 = 0.94.
    assert adv[1].tolist() == pytest.approx([0.94, 2.0, 0.0])
    assert ret[0].tolist() == pytest.approx([0.60624, 0.792, 1.0])
    assert ret[1, :2].tolist() == pytest.approx([1.94, 2.0])


def test_whitening_uses_only_unmasked_tokens():
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, 5.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    kept = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    mean, std = kept.mean(), kept.std(unbiased=True)
    out = whiten(values, mask)
    assert out[0, :2].tolist() == pytest.approx(((torch.tensor([1.0, 2.0]) - mean) / std).tolist(), rel=1e-5)
    assert out[0, 2].item() == 0.0
    assert out[mask.bool()].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert whiten(values, mask, shift_mean=False)[mask.bool()].mean().item() == pytest.approx(
        mean.item(), rel=1e-5
    )


def test_adaptive_kl_controller_raises_the_coefficient_above_target_and_lowers_it_below():
    ctl = AdaptiveKLController(value=0.1, target=6.0, horizon=10000)
    assert ctl.update(current_kl=9.0, n_samples=1000) == pytest.approx(
        0.1 * (1 + 0.2 * 0.1)
    )  # error clipped to +0.2
    ctl = AdaptiveKLController(value=0.1, target=6.0, horizon=10000)
    assert ctl.update(current_kl=5.4, n_samples=1000) == pytest.approx(0.1 * (1 - 0.1 * 0.1))  # error -0.1
    assert ctl.update(current_kl=6.0, n_samples=1000) == pytest.approx(
        0.1 * (1 - 0.1 * 0.1)
    )  # on target: kept
    rising = AdaptiveKLController(value=0.05, target=1.0, horizon=100)
    values = [rising.update(3.0, 64) for _ in range(5)]
    assert values == sorted(values) and values[-1] > 0.05


def test_clipped_policy_loss_matches_a_direct_computation():
    old = torch.log(torch.tensor([[0.5, 0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.75, 0.5, 0.25]]))  # ratios 1.5, 1.0, 0.5
    adv = torch.tensor([[1.0, -2.0, -1.0]])
    mask = torch.tensor([[1, 1, 1]])
    loss, clipfrac = policy_loss(new, old, adv, mask, cliprange=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(2, 2) = 2; token 2:
    # max(0.5, 0.8) = 0.8 (clipped)
    assert loss.item() == pytest.approx((-1.2 + 2.0 + 0.8) / 3)
    assert clipfrac.item() == pytest.approx(2 / 3)


def test_clipped_value_loss_matches_a_direct_computation():
    values = torch.tensor([[1.0, 0.0]])
    old = torch.tensor([[0.0, 0.0]])
    returns = torch.tensor([[2.0, 1.0]])
    loss, clipfrac = value_loss(values, old, returns, torch.tensor([[1, 1]]), cliprange_value=0.2)
    # token 0: V=1 clipped to 0.2: max((1-2)^2, (0.2-2)^2) = 3.24; token 1: max(1, 1) = 1
    assert loss.item() == pytest.approx(0.5 * (3.24 + 1.0) / 2)
    assert clipfrac.item() == pytest.approx(0.5)


def test_kl_penalties_and_token_rewards():
    logp, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    assert kl_per_token(logp, ref, "kl").tolist() == [[0.5, -1.0]]
    assert kl_per_token(logp, ref, "abs").tolist() == [[0.5, 1.0]]
    assert kl_per_token(logp, ref, "mse").tolist() == [[0.125, 0.5]]
    logits, ref_logits = torch.tensor([[[0.0, math.log(3.0)]]]), torch.tensor([[[0.0, 0.0]]])
    full = kl_per_token(logp[:, :1], ref[:, :1], "full", logits, ref_logits).item()
    assert full == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))  # KL([1/4, 3/4] || [1/2, 1/2])
    rewards = token_rewards(
        torch.tensor([3.0, 1.0]),
        torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]]),
        0.5,
        torch.tensor([[1, 1, 1], [1, 0, 0]]),
    )
    assert rewards.flatten().tolist() == pytest.approx([-0.05, -0.1, 3.0 - 0.15, 1.0 - 0.25, 0.0, 0.0])
