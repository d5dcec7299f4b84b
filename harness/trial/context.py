"""What a method plugin gets to train with, and the bridge from TRL/transformers trainers to the harness.

:class:`TrainContext` holds the loaded policy, reference, tokenizer and data of one trial. Method plugins on
TRL build their trainer config with :meth:`TrainContext.trl_config` (common knobs from ``method.*`` plus the
verbatim ``method.trl`` fields) and pass :meth:`TrainContext.trainer_callbacks` to the trainer; a method
with its own loop calls :meth:`TrainContext.step` after every optimizer step instead.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError
from harness.plugin.specs import MethodSpec
from harness.trial.checkpoints import Checkpointer

# method.* keys the harness maps onto transformers.TrainingArguments; the same fields under method.trl are
# rejected so that each knob has one home.
COMMON_KEYS = {
    "learning_rate": "learning_rate",
    "epochs": "num_train_epochs",
    "max_steps": "max_steps",
    "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "warmup": "warmup_steps",
    "scheduler": "lr_scheduler_type",
}
MANAGED_TRL_FIELDS = set(COMMON_KEYS.values()) | {
    "output_dir", "seed", "data_seed", "logging_steps", "save_strategy", "eval_strategy", "report_to",
    "bf16", "fp16", "use_cpu", "gradient_checkpointing", "activation_checkpointing", "disable_tqdm",
}


@dataclass
class TrainContext:
    """Everything one trial's training needs; built by the trial runner, consumed by a method plugin."""

    cfg: DictConfig
    spec: MethodSpec
    tokenizer: Any
    policy: torch.nn.Module
    reference: torch.nn.Module | None
    peft_config: Any
    train_data: Any
    eval_data: Any
    output_dir: Path
    device: torch.device
    precision: str
    checkpointer: Checkpointer
    log_history: list[dict[str, Any]] = field(default_factory=list)
    steps_done: int = 0

    @property
    def method_cfg(self) -> DictConfig:
        """The ``method`` node of the config."""
        return self.cfg.method

    def training_arguments(self) -> dict[str, Any]:
        """Keyword arguments for any ``transformers.TrainingArguments`` subclass (TRL configs included)."""
        m = self.method_cfg
        args = {target: m[key] for key, target in COMMON_KEYS.items()}
        args.update(
            output_dir=str(self.output_dir),
            seed=int(self.cfg.seed),
            data_seed=int(self.cfg.seed),
            logging_steps=int(self.cfg.train.logging_steps),
            save_strategy="no",  # the harness saves checkpoints itself (weights only, safetensors)
            eval_strategy="no",  # and evaluates them itself, the same way for every method
            report_to=[],
            bf16=self.precision == "bf16",
            fp16=self.precision == "fp16",
            use_cpu=self.device.type == "cpu",
            disable_tqdm=True,  # HarnessCallback draws the progress bar (see run_trainer)
        )
        # transformers 5 renamed gradient_checkpointing; pass the knob under the name this version knows.
        args[checkpointing_field()] = bool(self.cfg.train.gradient_checkpointing)
        return args

    def trl_config(self, config_class: type, renames: Mapping[str, str] | None = None, **fixed: Any) -> Any:
        """Build ``config_class`` from the common knobs, ``method.<key>`` renamed per ``renames``
        (e.g. ``{"beta": "beta", "gamma": "simpo_gamma"}``), ``fixed`` values, then ``method.trl``."""
        kwargs = self.training_arguments()
        for key, target in (renames if renames is not None else {"beta": "beta"}).items():
            kwargs[target] = self.method_cfg[key]
        kwargs.update(fixed)
        kwargs.update(trl_overrides(self.method_cfg))
        return config_class(**kwargs)

    def trl_trainer(self, trainer_class: type, config_class: type, renames: Mapping[str, str] | None = None,
                    **arguments: Any) -> Any:
        """``trainer_class`` built as a transformers/TRL trainer usually is here: the policy,
        ``trl_config(config_class, renames)``, the training data, the tokenizer, the LoRA config and the harness
        callbacks; ``arguments`` add or replace any of them (``ref_model=``, ``reward_funcs=``, a shuffled
        ``train_dataset=``). Returns the trainer, ready for :meth:`run_trainer`."""
        return trainer_class(**{"model": self.policy, "args": self.trl_config(config_class, renames),
                                "train_dataset": self.train_data, "processing_class": self.tokenizer,
                                "peft_config": self.peft_config, "callbacks": self.trainer_callbacks(),
                                **arguments})

    def trainer_callbacks(self) -> list[Any]:
        """Callbacks to pass to a transformers/TRL trainer so that the harness sees every step."""
        from harness.trial.bridge import HarnessCallback

        return [HarnessCallback(self)]

    def run_trainer(self, trainer: Any) -> torch.nn.Module:
        """Train a transformers/TRL ``trainer`` under the harness and return the trained model.

        Adds :class:`HarnessCallback` unless the trainer was built with :meth:`trainer_callbacks`, and drops
        transformers' log printer, whose per-log lines would flood a sweep's output.
        """
        from harness.trial.bridge import run_trainer

        return run_trainer(self, trainer)

    def plan(self, total_steps: int) -> None:
        """For methods with their own loop: call once before training with the planned number of optimizer
        steps, so that ``train.num_checkpoints`` evenly spaced checkpoints are taken (TRL methods need not)."""
        self.checkpointer.plan(total_steps)

    def step(self, step: int, model: torch.nn.Module, loss: float | None = None) -> None:
        """For methods with their own loop: call after each optimizer step (loss check + checkpoints)."""
        self.steps_done = step
        if loss is not None:
            self.log_history.append({"step": step, "loss": float(loss)})
        self.checkpointer.step(step, model, loss)


@functools.cache
def checkpointing_field() -> str:
    """``activation_checkpointing`` (transformers >= 5) or ``gradient_checkpointing`` (older)."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def trl_overrides(method_cfg: DictConfig) -> dict[str, Any]:
    """The ``method.trl`` mapping as plain Python values ({} when absent)."""
    trl = method_cfg.get("trl")
    if not trl:
        return {}
    if not isinstance(trl, DictConfig):
        raise ConfigError(f"method.trl must be a mapping of TRL config fields, got {trl!r}; set fields one by one, "
                          "e.g. method.trl.max_length=64.")
    return OmegaConf.to_container(trl, resolve=True)  # type: ignore[return-value]


def import_object(path: str) -> Any:
    """The object at ``"package.module:attribute"``."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def check_trl_fields(method_cfg: DictConfig, config_class: str | None) -> None:
    """Reject ``method.trl`` keys that ``config_class`` does not have, or that the harness manages."""
    overrides = trl_overrides(method_cfg)
    if not overrides:
        return
    if config_class is None:
        raise ConfigError(f"method {method_cfg.name} takes no method.trl options; remove {sorted(overrides)}.")
    from harness.errors import UnknownNameError

    cls = import_object(config_class)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in overrides:
        if key in MANAGED_TRL_FIELDS:
            home = next((k for k, v in COMMON_KEYS.items() if v == key), None)
            fix = f"set method.{home} instead" if home else "the harness sets it (see README, 'Config')"
            raise ConfigError(f"method.trl.{key} is managed by the harness; {fix}.")
        if key not in fields:
            raise UnknownNameError(f"{cls.__name__} option (method.trl)", key, fields)
