"""The arithmetic of RLHF-PPO, as pure tensor functions (Huang et al. 2024, "The N Implementation Details of
RLHF with PPO"; the design of TRL's former PPO trainer). Each is unit-tested against a hand computation.

Shapes: ``[batch, response_len]`` per-token tensors with a ``mask`` (1 for response tokens up to and including
EOS, 0 for padding after it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (over ``dim``, or all elements)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``values`` where ``mask`` is 1 (Bessel-corrected when ``unbiased``)."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    if unbiased:
        n = mask.sum()
        var = var * n / (n - 1).clamp(min=1)
    return var


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``(values - mean) / std`` over the masked elements (the mean kept when ``shift_mean`` is false, as for
    rewards); masked-out positions are returned as 0."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    out = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask.to(values.dtype)


def kl_per_token(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    kind: str = "kl",
    logits: torch.Tensor | None = None,
    ref_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """The per-token KL penalty of a sampled token, by ``kind``:

    - ``kl``: log π - log π_ref (unbiased for the sequence KL under samples from π);
    - ``abs``: |log π - log π_ref|;
    - ``mse``: ½ (log π - log π_ref)²;
    - ``full``: the exact KL between the two next-token distributions (needs both ``logits``).
    """
    diff = logprobs - ref_logprobs
    if kind == "kl":
        return diff
    if kind == "abs":
        return diff.abs()
    if kind == "mse":
        return 0.5 * diff.square()
    if kind == "full":
        if logits is None or ref_logits is None:
            raise ValueError("kl_penalty=full needs the policy's and the reference's logits")
        logp, ref_logp = torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1)
        return (logp.exp() * (logp - ref_logp)).sum(-1)
    raise ValueError(f"unknown kl_penalty {kind!r}; use kl, abs, mse or full")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, kl_coef: float, mask: torch.Tensor) -> torch.Tensor:
    """Per-token rewards: ``-kl_coef * kl`` at every response token,
    plus the sequence's score at its last token."""
    rewards = -kl_coef * kl * mask.to(kl.dtype)
    last = mask.long().sum(1).clamp(min=1) - 1
    rewards[torch.arange(len(scores)), last] += scores
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over each response; returns (advantages,
    returns = advantages + values). The value after the last response token is 0 (the episode ends there)."""
    mask = mask.to(values.dtype)
    values = values * mask
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    return advantages, advantages + values


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate: mean over tokens of max(-A·r, -A·clip(r, 1-ε, 1+ε)), r = π/π_old; returns
    (loss, fraction of tokens where the clipped term was the larger)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).to(logprobs.dtype), mask)
    return loss, clipfrac


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped value loss: ½ mean max((V - R)², (clip(V, V_old ± ε_v) - R)²);
    returns (loss, clip fraction)."""
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    unclipped = (values - returns).square()
    clipped = (clipped_values - returns).square()
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).to(values.dtype), mask)
    return loss, clipfrac


@dataclass
class AdaptiveKLController:
    """Ziegler et al. (2019)'s adaptive KL coefficient: raised when the measured KL exceeds ``target``,
    lowered when below, by at most 20% of the proportional error per ``horizon`` samples."""

    value: float
    target: float
    horizon: int = 10000

    def update(self, current_kl: float, n_samples: int) -> float:
        """Adapt to the KL measured on a batch of ``n_samples`` sequences; returns the new coefficient."""
        error = max(-0.2, min(0.2, current_kl / self.target - 1.0))
        self.value *= 1.0 + error * n_samples / self.horizon
        return self.value


@dataclass
class FixedKLController:
    """A constant KL coefficient (``adaptive_kl: false``)."""

    value: float

    def update(self, current_kl: float, n_samples: int) -> float:
        """Keep the coefficient; returns it."""
        return self.value
