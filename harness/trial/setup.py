"""Setting a trial up: its process (config validated, threads, seed, device), its data (loaded, in the
method's kind, fitted to its length) and its models (policy, tokenizer, LoRA config, reference).

Each step notes what it found on the trial's record (``host``, ``data``, ``train.parameters``) as it goes, so
a trial that fails half-way still says how far it got.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from harness.config import distributed, resources
from harness.config.trainer_config import max_length
from harness.config.validation import validate_trial_config
from harness.data import PreferenceData, fit_to_length
from harness.errors import DataError
from harness.evaluation.context import Reference
from harness.plugin.manager import HarnessPluginManager
from harness.plugin.specs import MethodSpec
from harness.records import DataSummary, TrialRecord
from harness.trial import models
from harness.trial.length_cache import cached_count
from harness.trial.lifecycle import TrialHooks
from harness.verbosity import set_library_verbosity

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import PeftConfig
    from transformers import PreTrainedTokenizerBase


def load_data(pm: HarnessPluginManager, cfg: DictConfig) -> PreferenceData:
    """The preference data of ``cfg.data``, from the plugin that owns ``cfg.data.source``."""
    data = pm.hook.harness_data_load(cfg=cfg)
    if data is None:
        raise DataError(
            f"No plugin loads data.source={cfg.data.source!r}; use data=toy or data=files, "
            "or install the plugin that provides it."
        )
    return data


def data_summary(data: PreferenceData, train_data: Dataset) -> DataSummary:
    """The record's ``data`` once loaded: training examples (in the method's kind), held-out prompts, format,
    rows read and ties dropped."""
    return DataSummary(
        train_examples=len(train_data),
        eval_prompts=len(data.eval_prompts),
        format=str(data.format),
        rows_in=data.report.rows_in,
        ties_dropped=data.report.ties_dropped,
    )


def fit_length(
    cfg: DictConfig,
    spec: MethodSpec,
    train_data: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    summary: DataSummary,
) -> Dataset:
    """Count the rows the trainer would truncate and drop those whose prompt alone fills its max length (one
    warning line; the count is cached, :mod:`harness.trial.length_cache`); ``summary.train_examples`` becomes
    the rows trained on. Raises DataError if none would be left."""
    limit = max_length(spec, cfg.method)
    train_data, report = fit_to_length(
        train_data, tokenizer, limit, setting="method.trl.max_length", count=cached_count
    )
    summary.train_examples = len(train_data)
    summary.max_length = limit
    summary.truncated = report.truncated
    summary.dropped_long_prompt = report.dropped_long_prompt
    summary.mean_tokens = report.mean_tokens
    warning = report.warning(setting="method.trl.max_length")
    if warning:
        print(f"harness: warning: {warning}", file=sys.stderr, flush=True)
    return train_data


def setup_process(
    cfg: DictConfig, pm: HarnessPluginManager, record: TrialRecord, trial_dir: Path, hooks: TrialHooks
) -> tuple[torch.device, str]:
    """Validate the config, announce the trial (``harness_trial_start``, then ``harness_trial_observer``: its
    observers, kept in ``hooks``), set threads (the cores split between the trials a launcher runs at once,
    see ``sweep["parallel"]``) and seed; returns the device and precision, also noted in ``record.host``."""
    set_library_verbosity(bool(cfg.get("verbose", False)))
    validate_trial_config(cfg, pm)
    hooks.start(cfg=cfg, trial_dir=trial_dir)
    parallel = (record.sweep or {}).get("parallel") or {}
    threads = resources.trial_threads(
        int(cfg.train.num_threads), int(parallel.get("trials", 1)) * distributed.local_world_size()
    )
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(int(cfg.seed))
    slot = distributed.local_rank() if distributed.launched() else int(parallel.get("slot", 0))
    device = resources.trial_device(resources.resolve_device(cfg.train.device), slot)
    precision = resources.resolve_precision(cfg.train.precision, device)
    assert record.host is not None
    record.host.device = str(device)
    record.host.precision = precision
    record.host.torch_threads = torch.get_num_threads()
    record.host.processes = distributed.world_size()  # > 1: one trial trained by several (DDP)
    return device, precision


@dataclass
class LoadedModels:
    """What a trial loads: the model's path and dtype, its tokenizer, the policy and its reference."""

    path: str
    dtype: torch.dtype
    tokenizer: PreTrainedTokenizerBase
    policy: torch.nn.Module
    peft_config: PeftConfig | None
    train_reference: torch.nn.Module | None  # the reference the method trains against, if it holds one
    reference: Reference  # the reference for evaluation


def load_models(
    cfg: DictConfig,
    pm: HarnessPluginManager,
    spec: MethodSpec,
    device: torch.device,
    precision: str,
    record: TrialRecord,
) -> LoadedModels:
    """The tokenizer, the policy, the LoRA config and the reference: a model of its own when the method trains
    against one, the adapter-disabled policy with LoRA, else loaded only while evaluating. The policy's
    parameters are noted in ``record.train``."""
    path = resources.resolve_model_path(pm, cfg)
    dtype = models.weights_dtype(cfg.model, precision)
    policy = models.load_causal_lm(path, cfg.model, dtype, device)
    peft_config = models.lora_config(cfg.model)

    def load_reference() -> torch.nn.Module:
        return models.load_causal_lm(path, cfg.model, dtype, device)

    train_reference = load_reference() if spec.needs_reference and peft_config is None else None
    if train_reference is not None:
        reference = Reference(model=train_reference)
    elif peft_config is not None:
        reference = Reference()  # the adapter-disabled policy
    else:
        reference = Reference(loader=load_reference)  # loaded only while evaluating
    record.train.parameters = models.count_parameters(policy)
    return LoadedModels(
        path,
        dtype,
        models.load_tokenizer(path, cfg.model),
        policy,
        peft_config,
        train_reference,
        reference,
    )
