"""Loading models and tokenizers: one code path for the toy world, local directories and Hub ids.

A model name is first offered to plugins (``harness_model_resolve``: the toy world maps ``toyworld`` to its
cached directory), then taken as a local directory, then as a Hub id that must already be in the local cache
(the harness is offline by default). LoRA settings become a ``peft.LoraConfig`` that the TRL trainers apply.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from harness.plugin.manager import HarnessPluginManager

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(setting: str) -> torch.device:
    """The torch device for ``train.device`` (auto: cuda, then mps, then cpu)."""
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if setting not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"train.device={setting!r} is not valid; use auto, cpu, cuda or mps.")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu.")
    return torch.device(setting)


def resolve_precision(setting: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``train.precision`` (auto: bf16 on a GPU that supports it)."""
    if setting == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if setting not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"train.precision={setting!r} is not valid; use auto, fp32, bf16 or fp16.")
    return setting


def weights_dtype(model_cfg: DictConfig, precision: str) -> torch.dtype:
    """The dtype to load weights in: ``model.dtype``, or fp32 master weights under mixed precision."""
    if model_cfg.dtype != "auto":
        if model_cfg.dtype not in _DTYPES:
            raise ConfigError(f"model.dtype={model_cfg.dtype!r} is not valid; use auto, {', '.join(_DTYPES)}.")
        return _DTYPES[model_cfg.dtype]
    return torch.float32  # mixed precision keeps fp32 master weights; autocast does the rest


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
            raise ModelError(f"model.name_or_path={name!r} is a directory without config.json; "
                             "point it at a directory written by save_pretrained.")
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelError(f"model.name_or_path={name!r} is not a model directory; pass a directory written by "
                         "save_pretrained or a Hub id.")
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "false", "False", "")
    if offline and not _in_hub_cache(name, cfg.model.get("revision")):
        raise ModelError(f"model {name!r} is not a local directory and is not in the Hugging Face cache (offline "
                         "mode); download it first (HF_HUB_OFFLINE=0 huggingface-cli download "
                         f"{name}) or pass a local directory.")
    return name


def load_tokenizer(path: str, model_cfg: DictConfig) -> PreTrainedTokenizerBase:
    """The tokenizer at ``path``, with a pad token and left padding (what generation and TRL expect)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, revision=model_cfg.get("revision"),
                                            trust_remote_code=bool(model_cfg.trust_remote_code))
    except OSError as exc:
        raise ModelError(f"Cannot load a tokenizer from {path!r}: {exc}".splitlines()[0]) from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # the usual choice for causal LMs without a pad token
    tok.padding_side = "left"
    return tok


def load_causal_lm(path: str, model_cfg: DictConfig, dtype: torch.dtype, device: torch.device) -> PreTrainedModel:
    """A causal LM from ``path`` in ``dtype`` on ``device``, in eval mode."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, revision=model_cfg.get("revision"), dtype=dtype,
            trust_remote_code=bool(model_cfg.trust_remote_code),
        )
    except OSError as exc:
        raise ModelError(f"Cannot load a causal LM from {path!r}: {exc}".splitlines()[0]) from exc
    return model.to(device).eval()


def lora_config(model_cfg: DictConfig) -> LoraConfig | None:
    """A ``peft.LoraConfig`` from ``model.lora`` (None when LoRA is off)."""
    if not model_cfg.get("lora"):
        return None
    from peft import LoraConfig

    settings: dict[str, Any] = OmegaConf.to_container(model_cfg.lora, resolve=True)  # type: ignore[assignment]
    try:
        return LoraConfig(
            r=int(settings.pop("r", 16)),
            lora_alpha=float(settings.pop("alpha", 32)),
            lora_dropout=float(settings.pop("dropout", 0.05)),
            target_modules=list(settings.pop("target_modules", ["q_proj", "v_proj"])),
            task_type="CAUSAL_LM",
            **settings,
        )
    except TypeError as exc:
        raise ConfigError(f"model.lora has an option peft.LoraConfig does not accept: {exc}") from exc


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters of ``model`` (all of them, trainable or not)."""
    return sum(p.numel() for p in model.parameters())
