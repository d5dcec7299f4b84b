"""One iteration of the harness's PPO: roll out, score, estimate advantages, then minibatch updates.

:func:`ppo_step` samples a response to each prompt from the policy, scores the responses with
``method.reward``, normalises the scores (``reward_norm``), subtracts the per-token KL penalty to the
reference, estimates GAE advantages from the value model (:class:`Rollout`, computed without gradients), and
runs ``ppo_epochs`` passes of clipped-surrogate updates over minibatches of ``mini_batch_size``. What lasts
from one step to the next (models, optimiser, KL controller, running reward moments) is a :class:`PPOState`;
the arithmetic is in :mod:`harness_plugins.methods.ppo_math`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from harness_plugins.methods.ppo_math import (
    AdaptiveKLController,
    FixedKLController,
    gae,
    kl_per_token,
    masked_mean,
    policy_loss,
    token_rewards,
    value_loss,
    whiten,
)
from harness_plugins.methods.ppo_models import (
    Scorer,
    logprobs_and_entropy,
    reference_logits,
    response_logits,
    response_values,
)

if TYPE_CHECKING:
    from torch.optim.lr_scheduler import LRScheduler
    from transformers import PreTrainedTokenizerBase

    from harness.plugin import Samples


class RunningMoments:
    """Running mean and standard deviation of the scores (``reward_norm: running``)."""

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def update(self, x: torch.Tensor) -> None:
        """Merge a batch of scores into the running moments."""
        n = x.numel()
        batch_mean, batch_var = x.mean().item(), x.var(unbiased=False).item()
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> float:
        """The running standard deviation."""
        return math.sqrt(max(self.var, 1e-8))


@dataclass
class PPOState:
    """What a PPO step uses and what outlives it: the models, the reward, the settings, the optimiser.

    ``settings`` holds the method's PPO hyperparameters by name (``method.<name>``, the reward's excepted);
    ``params`` are the trainable parameters of the policy and the value model (clipped together);
    ``sample_fn`` is :func:`harness.plugin.sample` with the prompts' ``add_special_tokens`` bound.
    """

    policy: torch.nn.Module
    reference: torch.nn.Module | None  # None with LoRA: the policy with its adapter disabled
    value_model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    score: Scorer
    settings: Mapping[str, Any]
    kl_ctl: AdaptiveKLController | FixedKLController
    moments: RunningMoments
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    params: list[torch.nn.Parameter]
    generator: torch.Generator  # minibatch order
    device: torch.device
    sample_fn: Callable[..., Samples]


@dataclass
class Rollout:
    """One batch of responses and what the updates need of it (per-token tensors: [n, response length])."""

    ids: torch.Tensor  # left-padded prompt + response ids [n, len]
    attn: torch.Tensor
    width: int  # column where the responses start
    mask: torch.Tensor  # 1 on response tokens up to and including EOS
    old_logp: torch.Tensor
    old_values: torch.Tensor
    kl: torch.Tensor  # per-token KL penalty to the reference
    raw: torch.Tensor  # [n] scores before normalisation (missing-EOS penalty included)
    scores: torch.Tensor  # [n] normalised scores
    advantages: torch.Tensor
    returns: torch.Tensor


def ppo_step(
    state: PPOState, prompts: list[str], seed: int, sources: Sequence[Any] | None = None
) -> dict[str, float]:
    """One PPO iteration: roll out, score, compute advantages, then ``ppo_epochs`` of minibatch updates.
    ``prompts``: rendered for the policy; ``sources``: the same prompts as the data gave them (what a reward
    model renders its own way; default: ``prompts``)."""
    with torch.no_grad():
        rollout = roll_out(state, prompts, seed, sources)
    state.policy.train()
    state.value_model.train()
    sums, updates = update(state, rollout)
    sequence_kl = float((rollout.kl * rollout.mask).sum(1).mean())
    coef = state.kl_ctl.value
    state.kl_ctl.update(sequence_kl, rollout.ids.shape[0])
    return {
        **{k: v / max(updates, 1) for k, v in sums.items()},
        "reward": float(rollout.raw.mean()),
        "reward_normalised": float(rollout.scores.mean()),
        "kl": sequence_kl,
        "kl_coef": coef,
        "length": float(rollout.mask.sum(1).mean()),
        "learning_rate": float(state.scheduler.get_last_lr()[0]),
    }


def roll_out(state: PPOState, prompts: list[str], seed: int, sources: Sequence[Any] | None = None) -> Rollout:
    """Sample a response to each prompt, score it and estimate its advantages (call it without gradients).
    ``sources``: the prompts as the data gave them, for the scorer (default: ``prompts``)."""
    s, device = state.settings, state.device
    temperature = float(s["temperature"])
    samples = state.sample_fn(
        state.policy,
        state.tokenizer,
        prompts,
        max_new_tokens=int(s["response_length"]),
        temperature=temperature,
        batch_size=len(prompts),
        seed=seed,
        desc="rollout",
    )
    (b,) = samples.batches
    ids, attn, width = b.input_ids.to(device), b.attention_mask.to(device), b.prompt_width
    mask = b.completion_mask[:, width:].to(device).float()
    state.policy.eval()
    logits = response_logits(state.policy, ids, attn, width)
    old_logp, _ = logprobs_and_entropy(logits, ids, width, temperature)
    ref_logits = reference_logits(state.policy, state.reference, ids, attn, width)
    ref_logp, _ = logprobs_and_entropy(ref_logits, ids, width, temperature)
    old_values = response_values(state.value_model, ids, attn, width)
    full = s["kl_penalty"] == "full"
    kl = kl_per_token(
        old_logp,
        ref_logp,
        str(s["kl_penalty"]),
        logits / temperature if full else None,
        ref_logits / temperature if full else None,
    )
    del logits, ref_logits
    raw = state.score(samples.prompts, samples.completions, list(sources or samples.prompts)).to(device)
    if s["missing_eos_penalty"] is not None:
        raw = torch.where(b.finished.to(device), raw, raw - float(s["missing_eos_penalty"]))
    scores = _normalise(raw, str(s["reward_norm"]), state.moments)
    rewards = token_rewards(scores, kl, state.kl_ctl.value, mask)
    advantages, returns = gae(rewards, old_values, mask, float(s["gamma"]), float(s["lam"]))
    advantages = whiten(advantages, mask)
    return Rollout(ids, attn, width, mask, old_logp, old_values, kl, raw, scores, advantages, returns)


def update(state: PPOState, rollout: Rollout) -> tuple[dict[str, float], int]:
    """``ppo_epochs`` passes of clipped-surrogate and value updates over shuffled minibatches of ``rollout``;
    returns the summed losses and diagnostics, and the number of updates."""
    s, r = state.settings, rollout
    temperature = float(s["temperature"])
    n, mb = r.ids.shape[0], int(s["mini_batch_size"])
    sums: dict[str, float] = {
        "policy_loss": 0.0,
        "value_loss": 0.0,
        "clipfrac": 0.0,
        "vf_clipfrac": 0.0,
        "entropy": 0.0,
        "loss": 0.0,
    }
    updates = 0
    for _ in range(int(s["ppo_epochs"])):
        for idx in torch.randperm(n, generator=state.generator).split(mb):
            idx = idx.to(state.device)
            new_logits = response_logits(state.policy, r.ids[idx], r.attn[idx], r.width)
            new_logp, entropy = logprobs_and_entropy(new_logits, r.ids[idx], r.width, temperature)
            new_values = response_values(state.value_model, r.ids[idx], r.attn[idx], r.width)
            pg, clipfrac = policy_loss(
                new_logp, r.old_logp[idx], r.advantages[idx], r.mask[idx], float(s["cliprange"])
            )
            vf, vf_clipfrac = value_loss(
                new_values, r.old_values[idx], r.returns[idx], r.mask[idx], float(s["cliprange_value"])
            )
            loss = pg + float(s["vf_coef"]) * vf
            _optimise(state, loss)
            for key, value in (
                ("policy_loss", pg),
                ("value_loss", vf),
                ("clipfrac", clipfrac),
                ("vf_clipfrac", vf_clipfrac),
                ("entropy", masked_mean(entropy, r.mask[idx])),
                ("loss", loss),
            ):
                sums[key] += float(value.detach())
            updates += 1
    return sums, updates


def _optimise(state: PPOState, loss: torch.Tensor) -> None:
    """One gradient step of policy and value model on ``loss`` (gradients clipped together)."""
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.params, float(state.settings["max_grad_norm"]))
    state.optimizer.step()
    state.scheduler.step()


def _normalise(raw: torch.Tensor, how: str, moments: RunningMoments) -> torch.Tensor:
    if how == "whiten":
        return (raw - raw.mean()) / (raw.std() + 1e-8) if raw.numel() > 1 else raw - raw.mean()
    if how == "running":
        moments.update(raw)
        return (raw - moments.mean) / moments.std
    return raw
