"""Loading models and tokenizers: one code path for the toy world, local directories and Hub ids.

Where the model is and on which device and precision a trial runs are resolved from the config first
(:mod:`harness.config.resources`), and every ``model.*`` setting is checked before any compute
(:mod:`harness.config.model_settings`). :func:`load_causal_lm` applies them: dtype, attention implementation,
device map, bitsandbytes quantization (with LoRA: peft's ``prepare_model_for_kbit_training``, QLoRA). LoRA
settings become a ``peft.LoraConfig`` that the TRL trainers apply (:func:`lora_config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.config.model_settings import (
    DTYPES,
    LORA_KEYS,
    lora_enabled,
    lora_target_modules,
    needs_kbit_preparation,
    quantization,
)
from harness.errors import ConfigError, ModelError
from harness.evaluation.model_files import damaged_weights

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def _auto_compute_dtype() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float16


def weights_dtype(model_cfg: DictConfig, precision: str) -> torch.dtype:
    """The dtype to load weights in: ``model.dtype``, or fp32 master weights under mixed precision."""
    dtype = model_cfg.get("dtype", "auto")
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ConfigError(f"model.dtype={dtype!r} is not valid; use auto, {', '.join(DTYPES)}.")
        return getattr(torch, dtype)
    return torch.float32  # mixed precision keeps fp32 master weights; autocast does the rest


def load_tokenizer(path: str, model_cfg: DictConfig) -> PreTrainedTokenizerBase:
    """The tokenizer at ``path``, with a pad token and left padding (what generation and TRL expect)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(
            path, revision=model_cfg.get("revision"), trust_remote_code=bool(model_cfg.trust_remote_code)
        )
    except OSError as exc:
        raise ModelError(f"Cannot load a tokenizer from {path!r}: {exc}".splitlines()[0]) from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # the usual choice for causal LMs without a pad token
    tok.padding_side = "left"
    return tok


def quantization_config(model_cfg: DictConfig) -> Any:
    """A ``transformers.BitsAndBytesConfig`` for ``model.quantization`` (None without quantization); the 4-bit
    compute dtype ``auto`` is bfloat16 where the GPU supports it, else float16."""
    mode = quantization(model_cfg)
    if mode is None:
        return None
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    bnb = model_cfg.get("bnb_4bit") or {}
    compute = bnb.get("compute_dtype", "auto")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype=_auto_compute_dtype() if compute == "auto" else getattr(torch, compute),
        bnb_4bit_quant_type=str(bnb.get("quant_type", "nf4")),
        bnb_4bit_use_double_quant=bool(bnb.get("use_double_quant", True)),
    )


def from_pretrained_kwargs(model_cfg: DictConfig, dtype: torch.dtype, device: torch.device) -> dict[str, Any]:
    """The keyword arguments of ``AutoModelForCausalLM.from_pretrained`` for ``model.*``: revision, dtype,
    remote code, attention implementation, device map and quantization (quantized weights go straight to
    ``device``)."""
    kwargs: dict[str, Any] = {
        "revision": model_cfg.get("revision"),
        "dtype": dtype,
        "trust_remote_code": bool(model_cfg.get("trust_remote_code", False)),
    }
    if model_cfg.get("attn_implementation"):
        kwargs["attn_implementation"] = str(model_cfg.attn_implementation)
    device_map = model_cfg.get("device_map")
    if device_map is not None:
        kwargs["device_map"] = (
            OmegaConf.to_container(device_map) if isinstance(device_map, DictConfig) else device_map
        )
    bnb = quantization_config(model_cfg)
    if bnb is not None:
        kwargs["quantization_config"] = bnb
        kwargs.setdefault("device_map", {"": device.index if device.index is not None else 0})
    return kwargs


def load_causal_lm(
    path: str, model_cfg: DictConfig, dtype: torch.dtype, device: torch.device
) -> PreTrainedModel:
    """A causal LM from ``path`` with the ``model.*`` settings, in ``dtype`` on ``device`` (or placed by
    ``model.device_map``), in eval mode; with quantization and LoRA, prepared for k-bit training (QLoRA)."""
    from transformers import AutoModelForCausalLM

    kwargs = from_pretrained_kwargs(model_cfg, dtype, device)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception as exc:  # a damaged weights file, or a model that is not there: one line; else as raised
        error = _load_error(path, model_cfg.get("revision"), exc)
        if error is None:
            raise
        raise error from exc
    if "device_map" not in kwargs:
        model = model.to(device)
    if needs_kbit_preparation(model_cfg):
        from peft import prepare_model_for_kbit_training

        # Gradient checkpointing stays train.gradient_checkpointing's
        # (the trainers enable it, and input grads).
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model.eval()


def _load_error(path: str, revision: str | None, exc: BaseException) -> ModelError | None:
    """The one-line :class:`ModelError` for ``exc``, raised while loading the model at ``path``, or None to
    let ``exc`` through: a truncated or corrupt weights file (named, with the fix), or any OSError (not
    found)."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(path, "config.json", revision=revision)
        except Exception:  # not a valid repo id
            found = None
        directory = Path(found).parent if isinstance(found, str) else directory
    fix = "re-download the model, or save it again with save_pretrained"
    damaged = type(exc).__name__ == "SafetensorError" or isinstance(exc, EOFError)
    if damaged or isinstance(exc, (OSError, RuntimeError, ValueError)):
        damaged = damaged_weights(directory)
        if damaged is not None:
            return ModelError(f"The weights file {damaged[0]} is truncated or corrupt ({damaged[1]}); {fix}.")
    message = (str(exc).splitlines() or [type(exc).__name__])[0]
    if damaged:
        return ModelError(
            f"Cannot read the weights of {path!r} ({message}): a weights file is corrupt; {fix}."
        )
    if isinstance(exc, OSError):
        return ModelError(f"Cannot load a causal LM from {path!r}: {message}")
    return None


def lora_config(model_cfg: DictConfig) -> LoraConfig | None:
    """A ``peft.LoraConfig`` from ``model.lora`` (None when LoRA is off: ``model.lora.r`` is 0).

    ``target_modules`` is peft's: ``all-linear`` (the default), a regular expression, or a list of names; keys
    beyond r/alpha/dropout/target_modules are passed to ``LoraConfig`` as they are
    (``+model.lora.use_rslora=true``).
    """
    if not lora_enabled(model_cfg):
        return None
    from peft import LoraConfig

    settings: dict[str, Any] = OmegaConf.to_container(  # type: ignore[assignment]
        model_cfg.lora, resolve=True
    )
    extra = {k: v for k, v in settings.items() if k not in LORA_KEYS}
    try:
        return LoraConfig(
            r=int(settings["r"]),
            lora_alpha=float(settings.get("alpha", 32)),
            lora_dropout=float(settings.get("dropout", 0.05)),
            target_modules=lora_target_modules(model_cfg),
            task_type="CAUSAL_LM",
            **extra,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.lora is not a valid peft.LoraConfig: {exc}".splitlines()[0]) from exc


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters of ``model`` (all of them, trainable or not)."""
    return sum(p.numel() for p in model.parameters())
