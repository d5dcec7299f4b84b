"""The ``model.*`` settings: which keys exist, what they mean together, and their checks before any compute.

Each key is declared in :mod:`~harness.config.settings_model` (default, type, check, help); every model config
extends their node, ``model/base``. A key Hydra does not know is refused by Hydra; one added with
``+model.<key>`` passes Hydra, so :func:`check_model_settings` refuses it here, with the closest known key.
LoRA is the ``model.lora`` node, always present: ``r: 0`` is full fine-tuning, ``r > 0`` trains an adapter
(:func:`lora_enabled`), so ``model.lora.r=16`` turns LoRA on for any model. Quantized loading (bitsandbytes,
``model.quantization: 4bit | 8bit``) needs a CUDA device, the bitsandbytes package and a LoRA adapter (QLoRA).
Named LoRA target modules are checked against the model's module names, built on the meta device from its
config (:func:`check_lora_targets`), so a name the model does not have stops the run before any weights load.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from harness.config import settings_model
from harness.config.setting import SettingsGroup
from harness.config.settings_model import (  # noqa: F401 (re-exported)
    ALL_LINEAR,
    DEVICE_MAPS,
    DTYPES,
    QUANTIZATIONS,
)
from harness.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    import torch


def _keys(group: SettingsGroup) -> tuple[str, ...]:
    return (*(o.name for o in group.options), *(g.key.rsplit(".", 1)[-1] for g in group.groups))


MODEL_KEYS = _keys(settings_model.MODEL)  # the model.<key>s (declared; every model config has exactly these)
LORA_KEYS = _keys(settings_model.LORA)  # the rest of peft.LoraConfig may be added with +
BNB_4BIT_KEYS = _keys(settings_model.BNB_4BIT)  # BitsAndBytesConfig's bnb_4bit_<key>
# LoraConfig fields the harness sets from its own keys (model.lora.<key> -> field).
_LORA_FIELDS = {
    "r": "r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "target_modules": "target_modules",
    "task_type": None,
}


def _plain(value: Any) -> Any:
    return (
        OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    )


def lora_enabled(model_cfg: Mapping[str, Any] | DictConfig) -> bool:
    """Whether the trial trains a LoRA adapter: ``model.lora`` is a mapping with ``r > 0`` (``r: 0`` or a null
    node is full fine-tuning)."""
    lora = model_cfg.get("lora")
    if not isinstance(lora, (Mapping, DictConfig)):
        return False
    r = lora.get("r", 0)
    return isinstance(r, int) and not isinstance(r, bool) and r > 0


def separate_reference(cfg: DictConfig) -> int:
    """1 when the trial's reference is a model of its own, 0 with LoRA (the policy with its adapter disabled):
    a term for :attr:`MethodSpec.models_in_memory` functions."""
    return 0 if lora_enabled(cfg.model) else 1


def lora_target_modules(model_cfg: Mapping[str, Any] | DictConfig) -> str | list[str]:
    """``model.lora.target_modules`` as peft takes it: ``"all-linear"`` (every linear layer but the output
    head; the default), another string (a regular expression peft matches against full module names), or a
    list of module names (a name matches a module whose dotted name ends with it)."""
    value = _plain((model_cfg.get("lora") or {}).get("target_modules", ALL_LINEAR))
    if value is None:
        return ALL_LINEAR
    if isinstance(value, str):
        return value
    return [str(v) for v in value]


def quantization(model_cfg: Mapping[str, Any] | DictConfig) -> str | None:
    """``"4bit"``, ``"8bit"`` or None (``model.quantization``; unchecked,
    see :func:`check_model_settings`)."""
    return settings_model.quantization(model_cfg.get("quantization"))


def needs_kbit_preparation(model_cfg: Mapping[str, Any] | DictConfig) -> bool:
    """Whether the loaded policy goes through peft's ``prepare_model_for_kbit_training`` (QLoRA): quantized
    weights with a LoRA adapter. (Quantization without LoRA is refused before compute.)"""
    return quantization(model_cfg) is not None and lora_enabled(model_cfg)


def _check_keys(model_cfg: DictConfig) -> None:
    """Only declared keys (``+model.<key>`` passes Hydra), and the sub-nodes are mappings (or null)."""
    for key in model_cfg:
        if key not in MODEL_KEYS:
            raise UnknownNameError(
                "model option",
                f"model.{key}",
                [f"model.{k}" for k in MODEL_KEYS],
                hint="Remove it (every model config extends model/base, which declares the keys it has).",
            )
    lora = model_cfg.get("lora")
    if lora is not None and not isinstance(lora, DictConfig):
        raise ConfigError(f"model.lora={_plain(lora)!r} is invalid; set model.lora.r (0 = full fine-tuning).")
    bnb = model_cfg.get("bnb_4bit")
    if bnb is not None and not isinstance(bnb, DictConfig):
        raise ConfigError(
            f"model.bnb_4bit={_plain(bnb)!r} is invalid; set its keys, e.g. model.bnb_4bit.quant_type=nf4."
        )
    for key in bnb or {}:
        if key not in BNB_4BIT_KEYS:
            raise UnknownNameError(
                "model option", f"model.bnb_4bit.{key}", [f"model.bnb_4bit.{k}" for k in BNB_4BIT_KEYS]
            )


def _check_lora_fields(model_cfg: DictConfig) -> None:
    """Keys of an enabled adapter beyond r/alpha/dropout/target_modules must be ``peft.LoraConfig`` fields
    that the harness does not set itself."""
    lora = model_cfg.get("lora")
    if not lora_enabled(model_cfg):
        return
    extras = [str(k) for k in lora if k not in LORA_KEYS]
    if extras:
        import dataclasses

        from peft import LoraConfig

        fields = {f.name for f in dataclasses.fields(LoraConfig)} - set(_LORA_FIELDS.values()) - {"peft_type"}
        for key in extras:
            if key in _LORA_FIELDS.values():
                ours = next(k for k, v in _LORA_FIELDS.items() if v == key)
                raise ConfigError(f"model.lora.{key} is set by model.lora.{ours}; set that instead.")
            if key not in fields:
                raise UnknownNameError("peft.LoraConfig option (model.lora)", key, sorted(fields))


def _check_quantization(model_cfg: DictConfig, device: torch.device) -> None:
    """Quantized loading needs a CUDA device, bitsandbytes and a LoRA adapter."""
    mode = quantization(model_cfg)
    if mode is None:
        return
    if device.type != "cuda":
        raise ConfigError(
            f"model.quantization={mode} loads weights with bitsandbytes, which needs a CUDA GPU, and this "
            f"trial runs on {device.type}; use model.quantization=null here."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            f"model.quantization={mode} needs the bitsandbytes package; pip install bitsandbytes "
            "(or use model.quantization=null)."
        )
    if not lora_enabled(model_cfg):
        raise ConfigError(
            f"model.quantization={mode} weights cannot be trained directly; add a LoRA adapter "
            "(QLoRA), e.g. model.lora.r=16."
        )


def _check_attention(model_cfg: DictConfig, device: torch.device) -> None:
    """Flash attention needs a CUDA device and the flash-attn package."""
    attn = model_cfg.get("attn_implementation")
    if isinstance(attn, str) and attn.startswith("flash_attention") and device.type != "cuda":
        raise ConfigError(
            f"model.attn_implementation={attn} needs a CUDA GPU and this trial runs on {device.type}; "
            "use model.attn_implementation=null (sdpa)."
        )
    if attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(
            "model.attn_implementation=flash_attention_2 needs the flash-attn package; pip install "
            "flash-attn, or use model.attn_implementation=null (sdpa)."
        )


def check_model_settings(model_cfg: DictConfig, device: torch.device) -> None:
    """Every ``model.*`` value that can be checked without the model: known keys, each value against its
    declaration (:data:`harness.config.settings_model.MODEL`), attention and quantization (with what they need
    on ``device``) and an adapter's extra ``peft.LoraConfig`` fields. Raises a one-line ConfigError."""
    _check_keys(model_cfg)
    settings_model.MODEL.check(model_cfg)
    _check_attention(model_cfg, device)
    _check_lora_fields(model_cfg)
    _check_quantization(model_cfg, device)


# --- LoRA target modules against the model's module names ---------------------------------------------------


@functools.lru_cache(maxsize=8)
def meta_skeleton(path: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    """The causal LM at ``path`` built on the meta device from its config (no weights are read); None when its
    config cannot be read (e.g. a toy world that is not built yet)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return None
    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def module_names(
    path: str, revision: str | None = None, trust_remote_code: bool = False
) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """``(model type, ((module name, class name), ...))`` of the causal LM at ``path``, from its
    :func:`meta_skeleton`; None when its config cannot be read."""
    model = meta_skeleton(path, revision, trust_remote_code)
    if model is None:
        return None
    return str(model.config.model_type), tuple(
        (name, type(m).__name__) for name, m in model.named_modules() if name
    )


# Module classes peft can put a LoRA adapter on (by class name, so that no import is needed to tell).
_ADAPTABLE = {"Linear", "Conv1D", "Embedding", "Conv1d", "Conv2d", "Conv3d", "MultiheadAttention"}
_LINEAR = {"Linear", "Conv1D"}


def _matches(target: str, name: str) -> bool:
    return name == target or name.endswith("." + target)


def check_lora_targets(path: str, model_cfg: DictConfig) -> None:
    """Every named ``model.lora.target_modules`` entry matches an adaptable module of the model (as peft
    matches: the module's dotted name ends with it; a string other than all-linear is a regular expression
    over full names). Raises a one-line ConfigError listing the model's linear modules."""
    if not lora_enabled(model_cfg):
        return
    targets = lora_target_modules(model_cfg)
    if targets == ALL_LINEAR:
        return
    found = module_names(path, model_cfg.get("revision"), bool(model_cfg.get("trust_remote_code", False)))
    if found is None:
        return
    model_type, modules = found
    adaptable = [name for name, cls in modules if cls in _ADAPTABLE]
    linear = list(dict.fromkeys(name.rsplit(".", 1)[-1] for name, cls in modules if cls in _LINEAR))
    shown = ", ".join(linear[:12]) + (", ..." if len(linear) > 12 else "")
    fix = f"its linear modules are {shown}; use one of those, or model.lora.target_modules=all-linear."
    if isinstance(targets, str):
        if not any(re.fullmatch(targets, name) for name in adaptable):
            raise ConfigError(
                f"LoRA target_modules pattern {targets!r} matches no module of {model_type} ({path}); " + fix
            )
        return
    for target in targets:
        if not any(_matches(target, name) for name in adaptable):
            raise ConfigError(f"LoRA target module {target!r} is not in {model_type} ({path}); " + fix)
