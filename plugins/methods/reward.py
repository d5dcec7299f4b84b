"""The reward-model stage: ``method=reward`` trains a one-output sequence classifier on pairwise preferences
with TRL's RewardTrainer (Bradley-Terry loss), from the same base model as the policies.

Its checkpoints are reward models (a loadable directory each, weights and tokenizer), evaluated by the
evaluators that apply to reward models: the held-out pairwise accuracy (``reward_accuracy``). The seed advises
one epoch: reward models overfit preferences quickly, so more epochs give a warning before training starts.
Online methods use the result through ``method.reward=<its final checkpoint>`` (or ``method.reward=trained``).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from harness.plugin import MethodSpec, Profile, Stage, hookimpl

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from harness.plugin import TrainContext


def load_reward_backbone(ctx: TrainContext) -> torch.nn.Module:
    """A one-output sequence classifier on the policy's base checkpoint (a fresh score head)."""
    from transformers import AutoModelForSequenceClassification

    path = ctx.policy.config.name_or_path
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=ctx.policy.dtype)
    model.config.pad_token_id = ctx.tokenizer.pad_token_id
    return model.to(ctx.device)


def train(ctx: TrainContext) -> PreTrainedModel:
    """Train with TRL's RewardTrainer; returns the reward model."""
    model = load_reward_backbone(ctx)
    ctx.policy = model  # the causal LM the runner loaded is not trained; let it be freed
    # With LoRA, the adapter is a sequence classifier's: its fresh score head trains in full
    # (peft's SEQ_CLS task).
    peft_config = (
        dataclasses.replace(ctx.peft_config, task_type="SEQ_CLS") if ctx.peft_config is not None else None
    )
    return ctx.run_trainer(ctx.trl_trainer(peft_config=peft_config))


def _validate(method_cfg: DictConfig) -> None:
    epochs = method_cfg.get("epochs", 1)
    if isinstance(epochs, (int, float)) and epochs > 1 and int(method_cfg.get("max_steps", -1)) <= 0:
        warnings.warn(
            f"method.epochs={epochs} for a reward model: the seed advises one epoch, since reward models "
            "overfit preferences quickly (watch rm_acc on held-out pairs).",
            UserWarning,
            stacklevel=2,
        )


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """The reward-model stage."""
    return [
        MethodSpec(
            name="reward",
            train=train,
            data_kind="pairwise",
            models_in_memory=1,
            needs_reference=False,
            trainer="trl:RewardTrainer",
            lr_range=(1e-6, 2e-5),
            validate=_validate,
            produces="reward_model",
            # Real models (the seed's values): one epoch, more overfits the preferences.
            defaults={"learning_rate": 1.5e-5, "trl": {"max_length": 1024}},
            profiles={
                "toy": Profile(
                    {
                        "learning_rate": 1e-3,
                        "batch_size": 16,
                        "grad_accum": 1,  # accuracy 0.78
                        "trl": {"max_length": 64},
                    },
                    {"learning_rate": "tag(log, interval(1e-5, 1e-3))"},
                )
            },
            description="Reward model (Bradley-Terry, TRL RewardTrainer) for RLHF",
            search_space={"learning_rate": "tag(log, interval(1e-6, 3e-5))"},
            loss_notes="RewardTrainer (trl/trainer/reward_trainer.py, compute_loss): -log σ(r_chosen − "
            "r_rejected), mean over pairs (center_rewards_coefficient adds a centring term when set).",
        )
    ]


# ---------------------------------------------------------------------------------------------------
# The stage for online methods: method.reward=trained.
# ---------------------------------------------------------------------------------------------------

_announced: set[str] = set()  # reward models already named in this process


def reward_stage(cfg: DictConfig) -> Stage:
    """The reward stage of an online trial ``cfg``: ``method=reward`` on the same model and data, at its
    defaults updated by the trial's ``method.reward_stage`` settings; cached under
    ``$HARNESS_CACHE_DIR/reward_models/``."""
    return Stage.of(
        cfg,
        "reward",
        cfg.method.get("reward_stage"),
        folder="reward_models",
        where="method.reward_stage",
        label="reward stage",
    )


def trained_reward_model(cfg: DictConfig) -> str:
    """The directory of the reward model the stage trains for ``cfg``, training it first if no completed stage
    with the same settings is cached. Trials that need the same stage wait for one another (a file lock) and
    share it. The stage runs as its own trial in a subprocess (``python -m harness.trial``; its record sits
    beside the model)."""
    stage = reward_stage(cfg)
    final = stage.final_checkpoint(stage.train())
    if stage.key not in _announced:
        accuracy = final.metrics.get("reward_accuracy")
        print(f"[harness] reward model: {final.path} (held-out accuracy {accuracy:.3f})", flush=True)
        _announced.add(stage.key)
    return str(final.path)
