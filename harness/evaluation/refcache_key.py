"""What the reference-evaluation cache's key is made of: the model's and the tokenizer's fingerprints, the
data, the evaluation settings and the library versions (:func:`key_material`).

Every input that changes what evaluating the reference yields is in the material; nothing that does not (the
method, its hyperparameters, the evaluator list, the checkpoint schedule) is. A model is identified by the
contents of its files, not by where it lies (:func:`model_fingerprint`), so a moved cache or a copied model
still hits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.cache import directory_fingerprint
from harness.evaluation.cache_files import digest
from harness.evaluation.rendering import RULE_VERSION, end_of_turn_id

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Bumped when what is stored, or how it is computed, changes.
#: 2: completions end at every end-of-sequence id the model declares; 3: files carry checksums;
#: 4: models named by their files' contents.
CACHE_FORMAT = 4
#: ``eval`` keys that do not change what evaluating the reference yields. ``selection`` only says which
#: prompts and seed the selection evaluation uses: its own entry is keyed by those prompts and its seed (as
#: ``eval.seed``).
_NOT_IN_KEY = ("evaluators", "extra", "checkpoints", "cache", "cache_dir", "readable_samples", "selection")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _local_model_dir(name_or_path: str, revision: str | None = None) -> Path | None:
    """The directory holding a model: the path itself, or the Hub cache snapshot of a Hub id
    (None if neither)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
    except Exception:  # not a valid repo id
        return None
    return Path(found).parent if isinstance(found, str) else None


def model_fingerprint(name_or_path: str, revision: str | None = None) -> dict[str, Any]:
    """What identifies a model: per config and weight file its name, size and content SHA-256
    (:func:`harness.cache.content_sha256`: read once per file, then remembered), not its path, so that a moved
    or copied model gives the same fingerprint. Returns a JSON-able dict; a model that is not on disk is
    identified by name (and revision) only.
    """
    directory = _local_model_dir(name_or_path, revision)
    if directory is None:
        return {"id": name_or_path, "revision": revision}
    configs = directory_fingerprint(directory, ("config.json",))
    configs = {k: v for k, v in configs.items() if k in ("config.json", "adapter_config.json")}
    return {"configs": configs, "weights": directory_fingerprint(directory, _WEIGHT_SUFFIXES)}


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """Hash of what makes a tokenizer encode text: its vocabulary and rules, special tokens, chat template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    rules = backend.to_str() if backend is not None else digest(sorted(tokenizer.get_vocab().items()))
    return digest(
        [
            rules,
            tokenizer.special_tokens_map,
            getattr(tokenizer, "chat_template", None),
            getattr(tokenizer, "padding_side", None),
            type(tokenizer).__name__,
        ]
    )


def key_material(
    cfg: DictConfig,
    *,
    model_path: str,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    pairs: Sequence[Mapping[str, Any]] | None,
    gold_reward: Callable[[Sequence[str], Sequence[str]], Sequence[float]] | None,
    device: str,
    dtype: torch.dtype | None,
) -> dict[str, Any]:
    """Everything the reference evaluation depends on, as a JSON-able dict (hashed into the cache key)."""
    eval_cfg = OmegaConf.to_container(cfg.eval, resolve=True)
    assert isinstance(eval_cfg, dict)
    for key in _NOT_IN_KEY:
        eval_cfg.pop(key, None)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model_cfg, dict)
    for key in ("lora", "name_or_path"):  # the reference is the base model; its fingerprint names it
        model_cfg.pop(key, None)
    rm_path = (eval_cfg.get("reward_model") or {}).get("name_or_path")
    # A template whose end-of-turn is not EOS stops sampling there (harness.evaluation.rendering); reward
    # models read their own rendering (its rule's version). Neither changes the key otherwise.
    turn_end = end_of_turn_id(tokenizer)
    extra = {"end_of_turn": turn_end} if turn_end not in (None, tokenizer.eos_token_id) else {}
    return {
        "format": CACHE_FORMAT,
        "harness": _version("harness"),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "model": {
            **model_fingerprint(model_path, model_cfg.get("revision")),
            "settings": model_cfg,
            "dtype": str(dtype),
            "device": device,
        },
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "prompts": digest(list(prompts)),
        "num_prompts_given": len(prompts),
        "pairs": digest(list(pairs)) if pairs is not None else None,
        "gold_reward": None
        if gold_reward is None
        else f"{cfg.data.get('source')}:{getattr(gold_reward, '__module__', '')}"
        f".{getattr(gold_reward, '__qualname__', '')}",
        "reward_model": {**model_fingerprint(str(rm_path)), "rendering": RULE_VERSION} if rm_path else None,
        "eval": eval_cfg,
        **extra,
    }
