"""The ``judge`` evaluator's local backend: a causal LM loaded in this process reads the verdict off
its next token.

The judge model is loaded once per process (and device) with the same loader as the policy
(:func:`harness.plugin.load_causal_lm`), from ``eval.judge.model`` and ``eval.judge.model_kwargs`` (any
``model.*`` setting: ``dtype``, ``revision``, ``trust_remote_code``, ``attn_implementation``,
``quantization``, ...; ``dtype`` ``auto`` is bfloat16 on a GPU that supports it, float16 on other GPUs and
float32 on a CPU).

The conversation is rendered with the judge tokenizer's chat template when it has one (a system message it
refuses is merged into the user message), else as plain text, and the assistant's turn is started with ``[[``.
One forward pass then gives the probabilities of ``A``, ``B`` and ``C`` as the next token (the tokens where
the three continuations ``[[A``, ``[[B``, ``[[C`` first differ, so a tokenizer that merges ``[[A`` still
works). The verdict is the most probable label, or unparsed when the three together hold less than
``min_label_prob`` of the probability (a judge that does not follow the format). No sampling: the verdict is
deterministic, without the explanation an API judge writes first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.evaluators.judge.stats import VERDICTS
from omegaconf import OmegaConf

from harness.plugin import content_sha256

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

PREFIX = "[["  # the assistant turn starts here; the next token is the label
MODEL_KWARG_DEFAULTS: dict[str, Any] = {
    "revision": None,
    "dtype": "auto",
    "attn_implementation": None,
    "device_map": None,
    "quantization": None,
    "bnb_4bit": {"compute_dtype": "auto", "quant_type": "nf4", "use_double_quant": True},
    "trust_remote_code": False,
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_settings(model_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``eval.judge.model_kwargs`` merged onto :data:`MODEL_KWARG_DEFAULTS`;
    ValueError naming an unknown key."""
    extra = dict(model_kwargs or {})
    unknown = sorted(set(extra) - set(MODEL_KWARG_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; use {', '.join(MODEL_KWARG_DEFAULTS)}")
    if extra.get("dtype", "auto") not in ("auto", "float32", "bfloat16", "float16"):
        raise ValueError(f"dtype={extra['dtype']!r} is invalid; use auto, float32, bfloat16 or float16")
    return {**MODEL_KWARG_DEFAULTS, **extra, "lora": {"r": 0}}


def model_problem(name: str, revision: str | None = None) -> str | None:
    """Why ``name`` (a local directory or a Hub id) cannot be loaded as the judge model
    (one line), or None."""
    path = Path(name).expanduser()
    if path.exists():
        return (
            None
            if (path / "config.json").is_file()
            else f"eval.judge.model={name} is not a model directory "
            "(no config.json); give a saved model's folder."
        )
    if not _HUB_ID.match(name):
        return f"eval.judge.model={name} does not exist; give a model directory or a Hub id (org/name)."
    import huggingface_hub
    from huggingface_hub import try_to_load_from_cache

    if not huggingface_hub.constants.HF_HUB_OFFLINE:
        return None  # downloaded when the trial starts
    if isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str):
        return None
    return (
        f"eval.judge.model={name} is not in the Hugging Face cache (offline mode); download it once with "
        f"HF_HUB_OFFLINE=0 huggingface-cli download {name}, or give a local model directory."
    )


def fingerprint(name: str) -> str:
    """Identifies the judge's weights: for a local directory, a hash of its files' names, sizes and contents
    (``content_sha256``, remembered per file: a retrained judge in the same folder is a new judge, a copy the
    same judge); for a Hub id, the id itself."""
    path = Path(name).expanduser()
    if not path.is_dir():
        return name
    stats = sorted(
        (p.name, p.stat().st_size, content_sha256(p))
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".")
    )
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def _dtype(name: str, device: torch.device) -> torch.dtype:
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


@functools.lru_cache(maxsize=2)
def _load(name: str, settings_json: str, device: str) -> tuple[Any, Any]:
    """The judge model and tokenizer, loaded once per process for each (model, settings, device)."""
    import torch

    from harness.plugin import load_causal_lm, load_tokenizer

    cfg = OmegaConf.create(json.loads(settings_json))
    target = torch.device(device)
    model = load_causal_lm(name, cfg, _dtype(str(cfg.dtype), target), target)
    return model, load_tokenizer(name, cfg)


class LocalJudge:
    """A causal LM in this process judging by its next-token probabilities of the labels after ``[[``."""

    backend = "local"

    def __init__(
        self,
        *,
        model: str,
        model_kwargs: Mapping[str, Any] | None,
        device: torch.device | str,
        batch_size: int = 4,
    ) -> None:
        self.name, self.settings = model, model_settings(model_kwargs)
        self.device, self.batch_size = str(device), batch_size

    def identity(self) -> dict[str, Any]:
        """What determines this judge's answers besides the conversation (part of the cache key)."""
        return {
            "backend": self.backend,
            "model": self.name
            if not Path(self.name).expanduser().is_dir()
            else None,  # a directory: by contents
            "weights": fingerprint(self.name),
            "settings": self.settings,
            "prefix": PREFIX,
            "labels": list(VERDICTS),
        }

    def _loaded(self) -> tuple[Any, Any]:
        return _load(self.name, json.dumps(self.settings, sort_keys=True), self.device)

    def render(
        self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]]
    ) -> tuple[str, bool]:
        """The text the judge reads, ending with the start of its verdict,
        and whether a chat template made it."""
        if getattr(tokenizer, "chat_template", None):
            try:
                text = tokenizer.apply_chat_template(
                    list(messages), tokenize=False, add_generation_prompt=True
                )
            except (
                Exception
            ):  # a template that refuses system messages (Gemma's, ...): fold it into the user turn
                merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]
                text = tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
            return text + PREFIX, True
        return "\n\n".join(m["content"] for m in messages) + "\n\nFinal verdict: " + PREFIX, False

    def _encode(
        self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Mapping[str, str]]
    ) -> tuple[list[int], list[int]]:
        """The input ids (up to the label) and the id of each label's first distinguishing token."""
        text, chat = self.render(tokenizer, messages)
        full = [tokenizer(text + label, add_special_tokens=not chat)["input_ids"] for label in VERDICTS]
        common = 0
        while all(len(f) > common + 1 for f in full) and len({f[common] for f in full}) == 1:
            common += 1
        labels = [f[common] for f in full]
        if len(set(labels)) != len(labels):
            raise RuntimeError(
                f"the judge tokenizer of {self.name} does not tell the labels A, B, C apart after "
                f"{PREFIX!r}; use another judge model or the openai backend"
            )
        return full[0][:common], labels

    def run(self, conversations: Sequence[Sequence[Mapping[str, str]]]) -> list[dict[str, Any]]:
        """Raw answers ``{"probs": [p(A), p(B), p(C)]}`` for ``conversations``, in order, in batches."""
        import torch

        model, tokenizer = self._loaded()
        answers: list[dict[str, Any]] = []
        for start in range(0, len(conversations), self.batch_size):
            encoded = [self._encode(tokenizer, c) for c in conversations[start : start + self.batch_size]]
            width = max(len(ids) for ids, _ in encoded)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids, _ in encoded])
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids, _ in encoded])
            device = next(model.parameters()).device
            with torch.no_grad():
                logits = model(
                    input_ids=input_ids.to(device),
                    attention_mask=mask.to(device),
                    position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(device),
                ).logits[:, -1, :]
            probs = torch.softmax(logits.float(), dim=-1).cpu()
            answers += [
                {"probs": [float(probs[i, t]) for t in labels]} for i, (_, labels) in enumerate(encoded)
            ]
        return answers


def verdict_from_probs(probs: Sequence[float] | None, min_label_prob: float) -> str | None:
    """The most probable label, or None when the labels together hold less than ``min_label_prob``."""
    if not probs or sum(probs) < min_label_prob or sum(probs) <= 0:
        return None
    return VERDICTS[max(range(len(probs)), key=lambda i: probs[i])]
