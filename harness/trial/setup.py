"""Setting a trial up: its process (config validated, threads, seed, device), its data (loaded, rendered for
the model's tokenizer, in the method's kind, fitted to its length) and its models (policy, tokenizer, LoRA
config, reference).

The data meets the tokenizer here, once (:func:`render_for_model`): ``data.chat_template`` decides whether
string data gets the model's chat template (:mod:`harness.data.chat_data`), and a ``system`` column becomes
the system turn, before the data is shaped for the method, so training, the length count, an SFT stage (a
trial of its own, set up the same way) and evaluation read the same rows.

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
from harness.config.footprint import check_machine_memory, trial_footprint
from harness.config.trainer_config import max_length
from harness.config.validation import validate_trial_config
from harness.data import PreferenceData, data_for_method, fit_to_length
from harness.data.chat_data import ChatRendering, apply_rendering, choose_rendering
from harness.data.coverage import tokenizer_coverage
from harness.errors import DataError
from harness.evaluation.reference import Reference
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


#: Model profiles whose model was pretrained on plain text: ``data.chat_template=auto`` leaves their string
#: data as it is. The toy world's tokenizer has a chat template (for message-list data), but its model never
#: read one, and its results must not change.
PLAIN_TEXT_PROFILES = ("toy",)


def data_summary(
    data: PreferenceData, train_data: Dataset, rendering: ChatRendering | None = None
) -> DataSummary:
    """The record's ``data`` once loaded: what it is (the source's name for it), training examples (in the
    method's kind), held-out prompts, format (the source's), rows read and ties dropped; what the chat
    template did, how the columns were read."""
    columns = data.columns
    return DataSummary(
        train_examples=len(train_data),
        eval_prompts=len(data.eval_prompts),
        format=str(data.format),
        rows_in=data.report.rows_in,
        ties_dropped=data.report.ties_dropped,
        chat_template=rendering.describe() if rendering is not None else None,
        columns=(columns.describe() or None) if columns is not None else None,
        columns_not_read=list(columns.unused) if columns is not None and columns.unused else None,
        source=data.name,
    )


def render_for_model(
    cfg: DictConfig, spec: MethodSpec, data: PreferenceData, tokenizer: PreTrainedTokenizerBase
) -> tuple[PreferenceData, Dataset, Dataset | None, DataSummary]:
    """The data as the model reads it (``data.chat_template``, the ``system`` column: :mod:`harness.data.
    chat_data`), shaped for the method (:func:`harness.data.data_for_method`), and the record's summary."""
    mode = str(cfg.data.get("chat_template") or "auto")
    plain = (cfg.model.get("profile") or None) in PLAIN_TEXT_PROFILES
    rendering = choose_rendering(mode, tokenizer, data.format, plain_text_model=plain)
    rendered = apply_rendering(data, rendering)
    train_data, eval_data = data_for_method(rendered, spec.data_kind, spec.name)
    return rendered, train_data, eval_data, data_summary(data, train_data, rendering)


def fit_length(
    cfg: DictConfig,
    spec: MethodSpec,
    train_data: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    summary: DataSummary,
) -> Dataset:
    """Count the rows the trainer would truncate and drop those whose prompt alone fills its max length (one
    warning line; the count is cached, :mod:`harness.trial.length_cache`); ``summary.train_examples`` becomes
    the rows trained on. Raises DataError if none would be left. A sample of the rows kept is checked for text
    the tokenizer cannot represent (:func:`harness.data.coverage.tokenizer_coverage`: one warning line)."""
    limit = max_length(spec, cfg.method)
    train_data, report = fit_to_length(
        train_data, tokenizer, limit, setting="method.trl.max_length", count=cached_count
    )
    summary.train_examples = len(train_data)
    summary.max_length = limit
    summary.truncated = report.truncated
    summary.dropped_long_prompt = report.dropped_long_prompt
    summary.mean_tokens = report.mean_tokens
    warnings = [
        report.warning(setting="method.trl.max_length"),
        tokenizer_coverage(train_data, tokenizer).warning(),
    ]
    for warning in filter(None, warnings):
        print(f"harness: warning: {warning}", file=sys.stderr, flush=True)
    return train_data


def setup_process(
    cfg: DictConfig, pm: HarnessPluginManager, record: TrialRecord, trial_dir: Path, hooks: TrialHooks
) -> tuple[torch.device, str]:
    """Validate the config, announce the trial (``harness_trial_start``, then ``harness_trial_observer``: its
    observers, kept in ``hooks``), set threads (the cores split between the trials a launcher runs at once,
    see ``sweep["parallel"]``) and seed, and check that the trial's models fit the device's memory (on the
    machine that runs it: :func:`harness.config.footprint.check_machine_memory`); returns the device and
    precision, also noted in ``record.host``."""
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
    if Path(resources.resolve_model_path(pm, cfg, dry_run=True)).is_dir():  # sized from local files only
        warning = check_machine_memory(trial_footprint(cfg, pm), str(device))  # raises when it cannot fit
        if warning:
            print(f"harness: warning: {warning}", file=sys.stderr, flush=True)
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


def load_tokenizer(cfg: DictConfig, pm: HarnessPluginManager) -> tuple[str, PreTrainedTokenizerBase]:
    """Where the model is, and its tokenizer (loaded before the models: the data is rendered with it)."""
    path = resources.resolve_model_path(pm, cfg)
    return path, models.load_tokenizer(path, cfg.model)


def load_models(
    cfg: DictConfig,
    spec: MethodSpec,
    device: torch.device,
    precision: str,
    record: TrialRecord,
    path: str,
    tokenizer: PreTrainedTokenizerBase,
) -> LoadedModels:
    """The policy at ``path`` (with ``tokenizer``), the LoRA config and the reference: a model of its own when
    the method trains against one, the adapter-disabled policy with LoRA, else loaded only while evaluating.
    The policy's parameters are noted in ``record.train``."""
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
        tokenizer,
        policy,
        peft_config,
        train_reference,
        reference,
    )
