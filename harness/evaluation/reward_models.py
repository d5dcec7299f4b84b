"""Reward models as evaluators and online methods use them: checked, loaded once per process, scored.

A reward model is a sequence-classification model with one output (``AutoModelForSequenceClassification``,
``num_labels=1``), a local directory or a Hub id. It scores each (source prompt, completion) in its own
rendering, as TRL's RewardTrainer trained it (:func:`harness.evaluation.rendering.score_pairs`);
:func:`score_texts` scores texts a caller has already rendered. :func:`check_reward_model` reads only its
config and tokenizer, so a wrong path stops a run before any compute.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harness.errors import ConfigError
from harness.evaluation.model_files import damaged_weights

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from transformers import PreTrainedTokenizerBase


def configured_path(eval_cfg: DictConfig) -> str | None:
    """``eval.reward_model.name_or_path``, or None when no reward model is configured."""
    rm = eval_cfg.get("reward_model")
    path = rm.get("name_or_path") if rm is not None else None
    return str(path) if path else None


_FIX_TEMPLATE = "point {key} at a sequence-classification model with num_labels=1{alternative}"
_FIX = _FIX_TEMPLATE.format(key="eval.reward_model.name_or_path", alternative=", or set it to null")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@lru_cache(maxsize=4)
def check_reward_model(
    name_or_path: str, key: str = "eval.reward_model.name_or_path", alternative: str = ", or set it to null"
) -> None:
    """Cheap check that ``name_or_path`` (the value of config ``key``) is a one-output sequence-classification
    model with a tokenizer. Reads its config and tokenizer (not its weights) and, for a local directory, looks
    for weight files.

    :raises ConfigError: one line naming the problem and the fix (``alternative``: the other way out).
    """
    from transformers import AutoConfig, AutoTokenizer

    where = f"{key}={name_or_path!r}"
    fix = _FIX_TEMPLATE.format(key=key, alternative=alternative)
    directory = Path(name_or_path).expanduser()
    if not directory.is_dir() and (directory.exists() or name_or_path.startswith((".", "/", "~"))):
        raise ConfigError(f"{where} is not a model directory; {fix}.")
    try:
        config = AutoConfig.from_pretrained(name_or_path)
        AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"Cannot load {where} ({_first_line(exc)}); {fix}.") from None
    if config.num_labels != 1:
        raise ConfigError(
            f"{where} has num_labels={config.num_labels}, not 1: it is not a reward model; {fix}."
        )
    if directory.is_dir() and not any(p.suffix in (".safetensors", ".bin") for p in directory.iterdir()):
        raise ConfigError(f"{where} has no weight files (*.safetensors or *.bin); {fix}.")


@lru_cache(maxsize=2)
def load_reward_model(name_or_path: str, device: str = "cpu") -> tuple[Any, Any]:
    """The reward model and its tokenizer (right padding, a pad token), loaded once per process and device.

    :raises ConfigError: the path is not a loadable one-output sequence-classification model.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    check_reward_model(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, dtype=torch.float32 if device == "cpu" else "auto"
        )
    except Exception as exc:  # a damaged weights file is named; other load errors keep their one line
        damaged = damaged_weights(Path(name_or_path)) if Path(name_or_path).is_dir() else None
        if damaged is not None:
            raise ConfigError(
                f"eval.reward_model.name_or_path={name_or_path!r}: the weights file {damaged[0]} is "
                f"truncated or corrupt ({damaged[1]}); train or save the reward model again."
            ) from None
        if not isinstance(exc, (OSError, ValueError, KeyError)):
            raise
        raise ConfigError(
            f"Cannot load eval.reward_model.name_or_path={name_or_path!r} ({_first_line(exc)}); {_FIX}."
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Right padding keeps position ids of real tokens independent of the batch; the score is read at the last
    # non-pad token, which needs the pad id in the config.
    tokenizer.padding_side = "right"
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def score_texts(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, texts: list[str], batch_size: int = 32
) -> torch.Tensor:
    """The reward model's score of each text as given (float64, shape [len(texts)]): for texts the caller
    rendered itself; a (prompt, completion) pair is scored in the reward model's own rendering by
    :func:`harness.evaluation.rendering.score_pairs`.

    Each text ends with the tokenizer's EOS token, appended when missing, as TRL's RewardTrainer appends it to
    every training example: the score is read at that token.
    """
    eos = tokenizer.eos_token or ""
    texts = [t if t.endswith(eos) else t + eos for t in texts]
    device = next(model.parameters()).device
    limit = getattr(model.config, "max_position_embeddings", None)
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            truncation=limit is not None,
            max_length=limit,
        ).to(device)
        out.append(model(**enc).logits[:, 0].double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
