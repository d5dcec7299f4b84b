"""Loading models and tokenizers: one code path for the toy world, local directories and Hub ids.

Where the model is and on which device and precision a trial runs are resolved from the config first
(:mod:`harness.config.resources`). LoRA settings become a ``peft.LoraConfig`` that the TRL trainers apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def weights_dtype(model_cfg: DictConfig, precision: str) -> torch.dtype:
    """The dtype to load weights in: ``model.dtype``, or fp32 master weights under mixed precision."""
    if model_cfg.dtype != "auto":
        if model_cfg.dtype not in _DTYPES:
            raise ConfigError(f"model.dtype={model_cfg.dtype!r} is not valid; use auto, {', '.join(_DTYPES)}.")
        return _DTYPES[model_cfg.dtype]
    return torch.float32  # mixed precision keeps fp32 master weights; autocast does the rest


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
