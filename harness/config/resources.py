"""Resources a trial config names, resolved before anything loads: the device, the precision,
the model's place.

A model name is first offered to plugins (``harness_model_resolve``: the toy world maps ``toyworld`` to its
cached directory), then taken as a local directory, then as a Hub id that must already be in the local cache
(the harness is offline by default). Each problem is a one-line :class:`~harness.errors.UserError`; validation
calls these with ``dry_run`` so that a wrong path stops a run before any compute.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig

from harness.config.settings_run import DEVICES, PRECISIONS
from harness.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from harness.plugin.manager import HarnessPluginManager


def _or(choices: tuple[str, ...]) -> str:
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def resolve_device(setting: str) -> torch.device:
    """The torch device for ``train.device`` (auto: cuda, then mps, then cpu)."""
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if setting not in DEVICES:
        raise ConfigError(f"train.device={setting!r} is not valid; use {_or(DEVICES)}.")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu.")
    return torch.device(setting)


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def trial_threads(setting: int, concurrent: int) -> int | None:
    """Torch CPU threads for one trial: ``train.num_threads`` when positive; with 0, the machine's cores split
    between the ``concurrent`` trials a launcher runs on it at once (``cores // concurrent``, at least 1), or
    None (torch's default, every core) when the trial runs alone."""
    if setting > 0:
        return setting
    if concurrent > 1:
        return max(1, cpu_cores() // concurrent)
    return None


def trial_device(device: torch.device, slot: int) -> torch.device:
    """The device of the trial in launcher slot ``slot`` (its job number modulo the concurrent trials): with
    several GPUs the trials are spread over them round-robin, more trials than GPUs sharing one; else
    ``device``."""
    if device.type != "cuda" or device.index is not None or torch.cuda.device_count() < 2:
        return device
    index = slot % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def resolve_precision(setting: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``train.precision`` (auto: bf16 on a GPU that supports it)."""
    if setting == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if setting not in PRECISIONS:
        raise ConfigError(f"train.precision={setting!r} is not valid; use {_or(PRECISIONS)}.")
    return setting


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return isinstance(found, str)


def resolve_model_path(pm: HarnessPluginManager, cfg: DictConfig, dry_run: bool = False) -> str:
    """Where the model of ``cfg.model`` is: a directory, or a Hub id present in the local cache.

    With ``dry_run`` nothing is built (a plugin only says where its model would be). Raises ModelError (one
    line, with the fix) when the name is neither a plugin's, a model directory nor a cached Hub id.
    """
    name = str(cfg.model.name_or_path)
    resolved = pm.hook.harness_model_resolve(name_or_path=name, cfg=cfg, dry_run=dry_run)
    if resolved is not None:
        return str(resolved)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise ModelError(
                f"model.name_or_path={name!r} is a directory without config.json; "
                "point it at a directory written by save_pretrained."
            )
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelError(
            f"model.name_or_path={name!r} is not a model directory; pass a directory written by "
            "save_pretrained or a Hub id."
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "false", "False", "")
    if offline and not _in_hub_cache(name, cfg.model.get("revision")):
        raise ModelError(
            f"model {name!r} is not a local directory and is not in the Hugging Face cache (offline "
            "mode); download it first (HF_HUB_OFFLINE=0 huggingface-cli download "
            f"{name}) or pass a local directory."
        )
    return name
