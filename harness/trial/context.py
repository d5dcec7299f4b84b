"""What a method plugin trains with: :class:`TrainContext`, one per trial.

It holds the loaded policy, reference, tokenizer and data of the trial. A method on a transformers/TRL trainer
builds it with :meth:`TrainContext.trl_trainer` (the spec's trainer and config class, the common knobs, the
hyperparameters' fields and ``method.trl``, the harness callbacks) and trains it with
:meth:`TrainContext.run_trainer`; a method with its own loop calls :meth:`TrainContext.plan` once and
:meth:`TrainContext.step` after every optimizer step.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from harness.config import distributed
from harness.config.trainer_config import hyperparameter_fields, trainer_classes, trl_overrides
from harness.plugin.settings import TRAINING_ARGUMENTS, TrackingRun, tracking_report_to
from harness.plugin.specs import MethodSpec
from harness.trial.checkpoints import Checkpointer
from harness.trial.prepared_data import prepares_data, shared_preparation
from harness.trial.reference_pass import bounded_rows, precomputes_reference, shared_reference_pass
from harness.trial.trainer_cache import CacheUse, temporary_dataset_files

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import PeftConfig
    from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback, TrainingArguments


@dataclass
class TrainContext:
    """Everything one trial's training needs; built by the trial runner, consumed by a method plugin.

    Attributes:
        cfg: the trial's composed config (``cfg.method`` is :attr:`method_cfg`).
        spec: the method's :class:`~harness.plugin.specs.MethodSpec`.
        tokenizer: the model's tokenizer (a pad token set, left padding).
        policy: the model to train, as loaded: with LoRA, TRL trainers apply ``peft_config`` to it, and an own
            loop trains :meth:`trainable_policy`.
        reference: the frozen reference model when ``spec.needs_reference`` and no LoRA; else None (with LoRA
            the reference is the policy with its adapter disabled, which TRL trainers handle themselves).
        peft_config: the LoRA config (``model.lora``), or None.
        train_data, eval_data: ``datasets.Dataset`` objects in the method's ``data_kind``
            (eval_data may be None).
        output_dir: a scratch directory for the trainer (the harness saves checkpoints elsewhere).
        device, precision: where and in which precision to train (``"fp32"``, ``"bf16"``, ``"fp16"``).
        checkpointer: takes and evaluates checkpoints (driven by the callbacks or by :meth:`step`).
        log_history: the logged losses (``{"step", "loss", ...}``), written to the trial record.
        steps_done: optimizer steps taken so far.
        prepared_data: for a trainer that prepares (tokenizes) its data with TRL's method, whether
            :meth:`trl_trainer` prepared it or read it from the harness cache
            (:mod:`harness.trial.prepared_data`), else None.
        reference_pass: for a trainer that precomputes the reference's log-probs, whether :meth:`trl_trainer`
            computed them or read them from the harness cache (:mod:`harness.trial.reference_pass`), the rows
            the pass covered (``rows``: with ``max_steps``, only those training reads) and the training rows
            (``training_rows``), else None.
    """

    cfg: DictConfig
    spec: MethodSpec
    tokenizer: PreTrainedTokenizerBase
    policy: torch.nn.Module
    reference: torch.nn.Module | None
    peft_config: PeftConfig | None
    train_data: Dataset
    eval_data: Dataset | None
    output_dir: Path
    device: torch.device
    precision: str
    checkpointer: Checkpointer
    log_history: list[dict[str, Any]] = field(default_factory=list)
    steps_done: int = 0
    prepared_data: dict[str, Any] | None = None
    reference_pass: dict[str, Any] | None = None

    @property
    def method_cfg(self) -> DictConfig:
        """The ``method`` node of the config."""
        return self.cfg.method

    def training_arguments(self) -> dict[str, Any]:
        """Keyword arguments for any ``transformers.TrainingArguments`` subclass (TRL configs included): the
        common knobs, and what the harness manages (output directory, seeds, logging, precision, no saving or
        eval). Under a distributed launcher each process takes ``batch_size / N`` rows per step
        (:mod:`harness.config.distributed`)."""
        m = self.method_cfg
        args = {target: m[key] for key, target in TRAINING_ARGUMENTS.items()}
        args.update(
            output_dir=str(self.output_dir),
            seed=int(self.cfg.seed),
            data_seed=int(self.cfg.seed),
            logging_steps=int(self.cfg.train.logging_steps),
            save_strategy="no",  # the harness saves checkpoints itself (weights only, safetensors)
            eval_strategy="no",  # and evaluates them itself, the same way for every method
            **self.tracking_arguments(),  # report_to (tracking.report_to) and the trial's run
            bf16=self.precision == "bf16",
            fp16=self.precision == "fp16",
            use_cpu=self.device.type == "cpu",
            disable_tqdm=True,  # HarnessCallback draws the progress bar (see run_trainer)
        )
        if (
            distributed.launched()
        ):  # the trial's batch is split over its processes (validated to divide evenly)
            args["per_device_train_batch_size"] = (
                int(args["per_device_train_batch_size"]) // distributed.world_size()
            )
        # transformers 5 renamed gradient_checkpointing; pass the knob under the name this version knows.
        args[checkpointing_field()] = bool(self.cfg.train.gradient_checkpointing)
        return args

    def tracking_arguments(self) -> dict[str, Any]:
        """The trainer's ``report_to`` (``tracking.report_to``) and, when it reports anywhere, the trial's run
        (:class:`~harness.plugin.settings.TrackingRun`: name, local directory, project) that plugins log to as
        well."""
        tracking = self.cfg.get("tracking")
        report_to = tracking_report_to(tracking.get("report_to") if tracking else None)
        if not report_to:
            return {"report_to": []}
        run = TrackingRun.of(tracking, self.output_dir.parent)  # output_dir is <trial dir>/trainer
        optional = {
            "logging_dir": str(run.directory),
            "project": run.project,
        }  # fields of some transformers versions
        names = training_argument_names()
        return {
            "report_to": report_to,
            "run_name": run.name,
            **{k: v for k, v in optional.items() if k in names},
        }

    def trl_config(self, config_class: type | None = None, **fixed: Any) -> TrainingArguments:
        """The method's trainer config: :meth:`training_arguments`, the hyperparameters' fields
        (``method.gamma`` -> ``simpo_gamma``), ``fixed`` values, then ``method.trl``. ``config_class``
        defaults to the spec's (``MethodSpec.config_class``, or the config class of
        ``MethodSpec.trainer``)."""
        cls = config_class or trainer_classes(self.spec)[1]
        if cls is None:
            raise TypeError(f"method {self.spec.name} declares no trainer or config_class; pass config_class")
        kwargs = self.training_arguments()
        kwargs.update(hyperparameter_fields(self.spec, self.method_cfg))
        kwargs.update(fixed)
        kwargs.update(trl_overrides(self.method_cfg))
        return cls(**kwargs)

    def trl_trainer(
        self, trainer_class: type | None = None, config_class: type | None = None, **arguments: Any
    ) -> Trainer:
        """A transformers/TRL trainer built as usual here: the policy, :meth:`trl_config`, the training data,
        the tokenizer, the LoRA config and the harness callbacks; ``arguments`` add or replace any of them
        (``ref_model=``, ``reward_funcs=``, a shuffled ``train_dataset=``). ``trainer_class`` defaults to
        ``MethodSpec.trainer``. A trainer reads its prepared (tokenized) data, and a trainer that precomputes
        the reference's log-probs reads them, from the harness cache when an earlier trial computed them, and
        stores them there otherwise (:mod:`harness.trial.prepared_data`, :mod:`harness.trial.reference_pass`).
        A trainer that precomputes the reference's log-probs gets only the rows training will read when
        ``max_steps`` reads fewer than all (:func:`~harness.trial.reference_pass.bounded_rows`). The files
        ``datasets`` writes while the trainer prepares its data go to a temporary directory, deleted when the
        process ends, not beside the source data. Returns the trainer, ready for
        :meth:`run_trainer`."""
        cls = trainer_class or trainer_classes(self.spec)[0]
        if cls is None:
            raise TypeError(f"method {self.spec.name} declares no trainer; pass trainer_class")
        kwargs = {
            "model": self.policy,
            "args": self.trl_config(config_class),
            "train_dataset": self.train_data,
            "processing_class": self.tokenizer,
            "peft_config": self.peft_config,
            "callbacks": self.trainer_callbacks(),
            **arguments,
        }
        rows = len(kwargs["train_dataset"])
        precomputes = precomputes_reference(cls, kwargs["args"])
        if precomputes:  # the reference pass covers only the rows training reads (max_steps)
            kwargs["train_dataset"] = bounded_rows(
                kwargs["train_dataset"], kwargs["args"], int(self.cfg.seed)
            )
        if (
            distributed.launched()
        ):  # the processes share TRL's own files (its reference pass writes one they all read)
            return cls(**kwargs)
        prepared, reference = CacheUse(), CacheUse()
        if prepares_data(cls):
            cls = shared_preparation(cls, self.device.type, prepared)
        if precomputes:
            cls = shared_reference_pass(cls, kwargs["args"], self.tokenizer, self.device.type, reference)
        with temporary_dataset_files():
            trainer = cls(**kwargs)
        self.prepared_data, self.reference_pass = prepared.summary(), reference.summary()
        if self.reference_pass is not None:
            self.reference_pass["training_rows"] = rows
        return trainer

    def trainer_callbacks(self) -> list[TrainerCallback]:
        """Callbacks to pass to a transformers/TRL trainer so that the harness sees every step."""
        from harness.trial.bridge import HarnessCallback

        return [HarnessCallback(self)]

    def run_trainer(self, trainer: Trainer) -> torch.nn.Module:
        """Train a transformers/TRL ``trainer`` under the harness and return the trained model.

        Adds :class:`HarnessCallback` unless the trainer was built with :meth:`trainer_callbacks`, and drops
        transformers' log printer, whose per-log lines would flood a sweep's output.
        """
        from harness.trial.bridge import run_trainer

        return run_trainer(self, trainer)

    def plan(self, total_steps: int) -> None:
        """For methods with their own loop: call once before training with the planned number of optimizer
        steps, so that ``train.num_checkpoints`` evenly spaced checkpoints are taken (TRL methods need
        not)."""
        self.checkpointer.plan(total_steps)

    def step(self, step: int, model: torch.nn.Module, loss: float | None = None, **stats: Any) -> None:
        """For methods with their own loop: call after each optimizer step. The loss is checked (a NaN or inf
        fails the trial, naming the step) and logged with ``stats`` (other numbers of the step: reward, KL,
        ...) in the trial record's log history; checkpoints are taken and evaluated when due."""
        self.steps_done = step
        if loss is not None or stats:
            self.log_history.append(
                {"step": step, **({"loss": float(loss)} if loss is not None else {}), **stats}
            )
        self.checkpointer.step(step, model, loss)

    def trainable_policy(self) -> torch.nn.Module:
        """For methods with their own loop: the policy to train, wrapped with its LoRA adapter
        (``peft.get_peft_model``) when the trial has a LoRA config (TRL trainers do this from
        ``peft_config``). With LoRA the base model, adapter disabled (``model.disable_adapter()``), is the
        reference."""
        if self.peft_config is None:
            return self.policy
        from peft import get_peft_model

        return get_peft_model(self.policy, self.peft_config)


@functools.cache
def training_argument_names() -> frozenset[str]:
    """The fields of this transformers version's ``TrainingArguments``."""
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments))


@functools.cache
def checkpointing_field() -> str:
    """``activation_checkpointing`` (transformers >= 5) or ``gradient_checkpointing`` (older)."""
    names = training_argument_names()
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
