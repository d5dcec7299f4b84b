"""What the reference-evaluation cache's key is made of: the model's and the tokenizer's fingerprints, the
data, the evaluation settings and the library versions (:func:`key_material`).

Every input that changes what evaluating the reference yields is in the material; nothing that does not (the
method, its hyperparameters, the evaluator list, the checkpoint schedule) is. A model is identified without
reading its weights (:func:`model_fingerprint`).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.evaluation.cache_files import digest
from harness.evaluation.rendering import RULE_VERSION, end_of_turn_id

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Bumped when what is stored, or how it is computed, changes.
CACHE_FORMAT = (
    3  # 2: completions end at every end-of-sequence id the model declares; 3: files carry checksums
)
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


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _safetensors_header_sha256(path: Path) -> str | None:
    """Hash of a safetensors file's JSON header (tensor names, shapes, dtypes, offsets, metadata)."""
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            return hashlib.sha256(fh.read(min(size, 100_000_000))).hexdigest()
    except (OSError, struct.error):
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
    """What identifies a model's weights without reading them.

    The resolved directory (a Hub snapshot directory names its commit), the hash of ``config.json`` (or
    ``adapter_config.json``), and per weight file its name, size, modification time and the hash of its
    safetensors header. Returns a JSON-able dict; a model that is not on disk is identified by name only.
    """
    directory = _local_model_dir(name_or_path, revision)
    if directory is None:
        return {"id": name_or_path, "revision": revision}
    configs = {
        p.name: _file_sha256(p)
        for p in (directory / "config.json", directory / "adapter_config.json")
        if p.is_file()
    }
    weights = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name.endswith(_WEIGHT_SUFFIXES):
            stat = path.stat()
            header = _safetensors_header_sha256(path) if path.suffix == ".safetensors" else None
            weights.append([path.name, stat.st_size, stat.st_mtime_ns, header])
    return {"path": str(directory), "configs": configs, "weights": weights}


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
