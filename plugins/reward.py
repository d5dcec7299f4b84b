"""The reward-model stage: ``method=reward`` trains a one-output sequence classifier on pairwise preferences with
TRL's RewardTrainer (Bradley-Terry loss), from the same base model as the policies.

Its checkpoints are reward models (a loadable directory each, weights and tokenizer), evaluated by the
evaluators that apply to reward models: the held-out pairwise accuracy (``reward_accuracy``). The seed advises
one epoch: reward models overfit preferences quickly, so more epochs give a warning before training starts.
Online methods use the result through ``method.reward=<its final checkpoint>`` (or ``method.reward=trained``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import warnings
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig, OmegaConf

from harness.plugin import MethodSpec, TrialFailed, cache_dir, file_lock, hookimpl, method_defaults

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
    return ctx.run_trainer(ctx.trl_trainer())


def _validate(method_cfg: DictConfig) -> None:
    epochs = method_cfg.get("epochs", 1)
    if isinstance(epochs, (int, float)) and epochs > 1 and int(method_cfg.get("max_steps", -1)) <= 0:
        warnings.warn(f"method.epochs={epochs} for a reward model: the seed advises one epoch, since reward models "
                      "overfit preferences quickly (watch rm_acc on held-out pairs).", UserWarning, stacklevel=2)


@hookimpl
def harness_methods_register() -> list[MethodSpec]:
    """The reward-model stage."""
    return [MethodSpec(
        name="reward", train=train, data_kind="pairwise", models_in_memory=1, needs_reference=False,
        trainer="trl:RewardTrainer", lr_range=(1e-6, 2e-5), validate=_validate, produces="reward_model",
        # The toy world's defaults (held-out accuracy 0.78 after one epoch); the seed: one epoch, more overfits.
        defaults={"learning_rate": 1e-3, "epochs": 1,
                  "trl": {"max_length": 64}},  # prompt + completion tokens; real models: 1024+
        description="Reward model (Bradley-Terry, TRL RewardTrainer) for RLHF",
        search_space={"learning_rate": "tag(log, interval(1e-5, 1e-3))"},
    )]


# ---------------------------------------------------------------------------------------------------
# The stage for online methods: method.reward=trained.
# ---------------------------------------------------------------------------------------------------

STAGE_VERSION = 1
_resolved: dict[str, str] = {}  # stage directory -> its reward model, once found in this process


def stage_config(cfg: DictConfig) -> DictConfig:
    """The reward stage's trial config for an online trial ``cfg``: the same model, data and evaluation, with
    ``method=reward`` at its defaults updated by the trial's ``method.reward_stage`` settings; one checkpoint."""
    stage = OmegaConf.to_container(cfg, resolve=True)
    stage["method"] = OmegaConf.to_container(OmegaConf.merge(method_defaults("reward", cfg),
                                                             cfg.method.get("reward_stage") or {}))
    stage["train"] = {**stage["train"], "num_checkpoints": 1, "checkpoint_every": 0, "save_checkpoints": True}
    stage["seed"] = 0  # one reward model per sweep: the policies' seeds do not retrain it
    return OmegaConf.create(stage)


def stage_key(stage: DictConfig) -> str:
    """The cache key of a reward stage: its model, data, toy world, method settings and seed."""
    material = {k: OmegaConf.to_container(stage[k], resolve=True) for k in ("model", "data", "method")}
    material.update(seed=int(stage.seed), version=STAGE_VERSION,
                    toyworld=OmegaConf.to_container(stage.toyworld, resolve=True) if "toyworld" in stage else None)
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trained_reward_model(cfg: DictConfig) -> str:
    """The directory of the reward model the stage trains for ``cfg``, training it first if no completed stage
    with the same settings is cached. Trials that need the same stage wait for one another (a file lock) and
    share it. The stage runs as its own trial in a subprocess (``python -m harness.trial``; its record sits
    beside the model)."""
    stage = stage_config(cfg)
    directory = cache_dir("reward_models") / stage_key(stage)
    if str(directory) in _resolved:  # this process already found (or trained) it
        return _resolved[str(directory)]
    directory.mkdir(parents=True, exist_ok=True)
    record_path = directory / "trial.json"
    with file_lock(directory.parent / f"{directory.name}.lock"):
        record = None
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(record_path.read_text())
        if not record or record.get("status") != "completed":
            (directory / "stage.yaml").write_text(OmegaConf.to_yaml(stage))
            print(f"[harness] training the reward stage ({directory})", flush=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_OPTUNA_")}  # not a sweep trial
            subprocess.run([sys.executable, "-m", "harness.trial", str(directory / "stage.yaml"), str(directory)],
                           env=env, check=False)
            record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        if record.get("status") != "completed":
            reason = (record.get("error") or {}).get("message", "no record")
            raise TrialFailed(f"the reward stage failed ({reason}); see {record_path}")
    final = next(c for c in record["checkpoints"] if c.get("final"))
    accuracy = (final.get("metrics") or {}).get("reward_accuracy")
    print(f"[harness] reward model: {final['path']} (held-out accuracy {accuracy:.3f})", flush=True)
    _resolved[str(directory)] = str(final["path"])
    return _resolved[str(directory)]
