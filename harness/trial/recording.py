"""What the runner writes on a trial's record: the record a trial starts with, the error of a trial stopped
early (pruned or interrupted), and its health flags once its checkpoints are evaluated.

The record itself, its parts and how it is read and written are :mod:`harness.records`'; this module fills it
from the trial's config and method.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.config.model_settings import lora_enabled
from harness.errors import TrialInterrupted, TrialPruned
from harness.evaluation.health import annotate_trial, learning_rate_flag
from harness.plugin.specs import MethodSpec
from harness.records import Host, TrialError, TrialRecord, flatten, library_versions


def hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The trial's hyperparameters: every ``method`` key but its name (dotted), the LoRA settings when it
    trains an adapter (``lora.r``, ...: LoRA against full fine-tuning is a setting to compare), plus the
    seed."""
    method = OmegaConf.to_container(cfg.method, resolve=True)
    assert isinstance(method, dict)
    method.pop("name", None)
    lora = OmegaConf.to_container(cfg.model.lora, resolve=True) if lora_enabled(cfg.model) else {}
    assert isinstance(lora, dict)
    return {**flatten(method), **flatten(lora, "lora."), "seed": int(cfg.seed)}


def now() -> str:
    """The current time in UTC, ISO 8601 to the second (``started_at``, ``finished_at``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_record(
    cfg: DictConfig,
    spec: MethodSpec,
    trial_dir: Path,
    overrides: Sequence[str] = (),
    sweep: dict[str, Any] | None = None,
) -> TrialRecord:
    """The record of a trial that starts now (status ``running``): what the trial is, where and with what it
    runs; its id is ``<sweep name>/<job>`` in a sweep, else its directory."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    return TrialRecord(
        trial_id=f"{sweep['name']}/{sweep['job']}" if sweep else str(trial_dir),
        status="running",
        error=None,
        method=spec.name,
        method_description=spec.description,
        loss_notes=spec.loss_notes,
        paper_names=spec.paper_names(),
        data_kind=spec.data_kind,
        models_in_memory=spec.count_models(cfg),
        hyperparameters=hyperparameters(cfg),
        overrides=list(overrides),
        sweep=sweep,
        trial_dir=str(trial_dir),
        config=config,
        versions=library_versions(),
        host=Host(hostname=socket.gethostname(), torch_threads=torch.get_num_threads()),
        started_at=now(),
    )


def pruned_error(exc: TrialPruned, step: int) -> TrialError:
    """The error of a trial its pruner stopped after the checkpoint at ``step``."""
    return TrialError(type="TrialPruned", message=str(exc) or "pruned", step=step)


def interrupted_error(exc: TrialInterrupted, step: int) -> TrialError:
    """The error of a trial a signal interrupted at ``step``."""
    return TrialError(
        type="TrialInterrupted",
        step=step,
        signal=exc.signal_name,
        message=f"interrupted by {exc.signal_name} at step {step}",
    )


def trial_health(record: TrialRecord, cfg: DictConfig, spec: MethodSpec) -> list[dict[str, Any]]:
    """The trial's health flags (:func:`harness.evaluation.health.annotate_trial`, which also sets each
    evaluated checkpoint's ``health``); a failing check is itself a flag, never the loss of the record."""
    try:
        lr_flag = learning_rate_flag(cfg.method.get("learning_rate"), spec.lr_range, record.train.parameters)
        return annotate_trial(record.checkpoints, record.reference_metrics, lr_flag)
    except Exception as exc:  # never lose a record to a health check
        return [
            {"flag": "health_check_error", "message": f"{type(exc).__name__}: {exc}", "fix": "", "steps": []}
        ]
