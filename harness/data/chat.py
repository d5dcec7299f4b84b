"""Prompts as the model reads them: strings as they are, message lists through the tokenizer's chat template.

This module owns :func:`render_prompts`, the one place where a conversational prompt becomes text for
generation (evaluation sampling, PPO rollouts); :mod:`harness.data.length` renders the same way to count
tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def is_conversational(value: Any) -> bool:
    """True when ``value`` is a message list ``[{"role": ..., "content": ...}, ...]`` rather than a string."""
    return isinstance(value, list)


def check_chat_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise a one-line :class:`DataError` when ``tokenizer`` has no chat template for message-list data."""
    if getattr(tokenizer, "chat_template", None) is None:
        name = getattr(tokenizer, "name_or_path", "") or "the model"
        raise DataError(
            f"the data is conversational (message lists) but the tokenizer of {name} has no chat "
            "template; use a chat/instruct model, set tokenizer.chat_template in its "
            "tokenizer_config.json, or use string (standard) data."
        )


def render_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Any]) -> tuple[list[str], bool]:
    """Prompts as text: strings as they are, message lists through the tokenizer's chat template.

    Message lists are rendered with ``add_generation_prompt=True`` (the text ends where the assistant's answer
    starts). Returns the texts and whether a chat template rendered them: rendered text already holds the
    template's special tokens, so tokenize it with ``add_special_tokens=False``.

    :raises DataError: message-list prompts and a tokenizer without a chat template.
    """
    if not prompts or not is_conversational(prompts[0]):
        return [str(p) for p in prompts], False
    check_chat_template(tokenizer)
    return [
        tokenizer.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False) for p in prompts
    ], True
