"""The reward-model stage: ``method=reward`` trains a one-output sequence classifier on pairwise preferences with
TRL's RewardTrainer (Bradley-Terry loss), from the same base model as the policies.

Its checkpoints are reward models (a loadable directory each, weights and tokenizer), evaluated by the
evaluators that apply to reward models: the held-out pairwise accuracy (``reward_accuracy``). The seed advises
one epoch: reward models overfit preferences quickly, so more epochs give a warning before training starts.
Online methods use the result through ``method.reward=<its final checkpoint>`` (or ``method.reward=trained``).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from harness_plugins._defaults import method_defaults

from harness import MethodSpec, hookimpl


def load_reward_backbone(ctx: Any) -> torch.nn.Module:
    """A one-output sequence classifier on the policy's base checkpoint (a fresh score head)."""
    from transformers import AutoModelForSequenceClassification

    path = ctx.policy.config.name_or_path
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=ctx.policy.dtype)
    model.config.pad_token_id = ctx.tokenizer.pad_token_id
    return model.to(ctx.device)


def train(ctx: Any) -> torch.nn.Module:
    """Train with TRL's RewardTrainer; returns the reward model."""
    from trl import RewardConfig, RewardTrainer

    model = load_reward_backbone(ctx)
    ctx.policy = model  # the causal LM the runner loaded is not trained; let it be freed
    trainer = RewardTrainer(
        model=model,
        args=ctx.trl_config(RewardConfig, renames={}),
        train_dataset=ctx.train_data,
        processing_class=ctx.tokenizer,
        peft_config=ctx.peft_config,
        callbacks=ctx.trainer_callbacks(),
    )
    return ctx.run_trainer(trainer)


def _validate(method_cfg: Any) -> None:
    epochs = method_cfg.get("epochs", 1)
    if isinstance(epochs, (int, float)) and epochs > 1 and int(method_cfg.get("max_steps", -1)) <= 0:
        warnings.warn(f"method.epochs={epochs} for a reward model: the seed advises one epoch, since reward models "
                      "overfit preferences quickly (watch rm_acc on held-out pairs).", UserWarning, stacklevel=2)


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """The reward-model stage."""
    return [MethodSpec(
        name="reward", train=train, data_kind="pairwise", models_in_memory=1, needs_reference=False,
        defaults=method_defaults("reward"), lr_range=(1e-6, 2e-5), config_class="trl:RewardConfig",
        validate=_validate, produces="reward_model",
        description="Reward model (Bradley-Terry, TRL RewardTrainer) for RLHF",
        search_space={"learning_rate": "tag(log, interval(1e-5, 1e-3))"},
    )]
