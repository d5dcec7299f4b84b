"""The models of the harness's PPO around the policy: their forward passes over the response tokens, the value
model's loading, and the reward scorer.

Every forward pass here runs on left-padded prompt + response ids with the position ids of generation time and
returns one row per sequence and one column per response token (positions ``width..`` of ``ids``). The
reference is a separate model, or, with LoRA, the policy with its adapter disabled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from harness_plugins.methods.online_rl import reward_function
from omegaconf import DictConfig

from harness.plugin import load_reward_model, score_pairs

#: ``score(prompts, completions, sources) -> tensor [n]``: the reward of each completion; ``prompts`` as the
#: policy read them (rendered), ``sources`` as the data gave them (strings or message lists).
Scorer = Callable[[Sequence[str], Sequence[str], Sequence[Any]], torch.Tensor]


def make_scorer(cfg: DictConfig, device: torch.device) -> Scorer:
    """``score(prompts, completions, sources) -> tensor [n]`` for ``method.reward``: the gold reward (of the
    rendered prompts and the completions), or a reward model, which reads each (source prompt, completion) in
    its own rendering: its own tokenizer and chat template (:func:`harness.plugin.score_pairs`)."""
    reward = reward_function(cfg)
    if callable(reward):
        return lambda prompts, completions, sources: torch.tensor(
            reward(prompts, completions), dtype=torch.float32
        )
    model, tokenizer = load_reward_model(reward, str(device))

    def score(prompts: Sequence[str], completions: Sequence[str], sources: Sequence[Any]) -> torch.Tensor:
        return score_pairs(model, tokenizer, sources, completions).float().cpu()

    return score


def response_logits(
    model: torch.nn.Module, ids: torch.Tensor, attn: torch.Tensor, width: int
) -> torch.Tensor:
    """Logits predicting each response token (positions ``width..``) of left-padded ``ids``:
    [n, len - width, V]."""
    positions = (attn.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attn, position_ids=positions)
    return out.logits[:, width - 1 : -1].float()


def reference_logits(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    ids: torch.Tensor,
    attn: torch.Tensor,
    width: int,
) -> torch.Tensor:
    """:func:`response_logits` of the reference: ``reference``, or the policy with its LoRA adapter
    disabled."""
    if reference is not None:
        return response_logits(reference, ids, attn, width)
    with policy.disable_adapter():  # LoRA: the reference is the base model under the adapter
        return response_logits(policy, ids, attn, width)


def logprobs_and_entropy(
    logits: torch.Tensor, ids: torch.Tensor, width: int, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each sampled response token and the entropy of each step's distribution."""
    logp_all = torch.log_softmax(logits / temperature, dim=-1)
    logp = logp_all.gather(-1, ids[:, width:].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def response_values(
    value_model: torch.nn.Module, ids: torch.Tensor, attn: torch.Tensor, width: int
) -> torch.Tensor:
    """The value model's estimate before each response token: [n, len - width]."""
    positions = (attn.cumsum(dim=1) - 1).clamp(min=0)
    return (
        value_model(input_ids=ids, attention_mask=attn, position_ids=positions)
        .logits[:, width - 1 : -1, 0]
        .float()
    )


def load_value_model(policy: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A token-level value model from the policy's base checkpoint (a fresh scalar head on its backbone).

    It reads the policy's own token ids (prompt as the policy's template rendered it, then the response), so
    it must share the policy's vocabulary and tokenizer: that is why it is built from the policy's checkpoint
    and never from the reward model."""
    from transformers import AutoModelForTokenClassification

    base = policy.get_base_model() if hasattr(policy, "get_base_model") else policy
    path = base.config.name_or_path
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=1, torch_dtype=torch.float32)
    model.config.pad_token_id = base.config.pad_token_id
    return model.to(device)
