"""String data and the model's chat template: ``data.chat_template=auto|always|never``, and the system column.

This module owns :func:`choose_rendering` (whether the policy's chat template applies to string data) and
:func:`apply_rendering` (the loaded :class:`~harness.data.load.PreferenceData` turned into what the model
reads). The trial applies them once, where its tokenizer first meets the data (:mod:`harness.trial.setup`),
before the data is shaped for the method, so training (TRL applies the template to message lists), the length
count, the SFT stage and evaluation (:func:`harness.data.chat.render_prompts`) all read the same rows.

* Applied: each string prompt becomes ``[{"role": "user", ...}]`` (an HH-RLHF transcript, ``\\n\\nHuman:
  ...\\n\\nAssistant:``, becomes its turns: Human -> user, Assistant -> assistant, the empty last
  ``Assistant:`` dropped) and each completion ``[{"role": "assistant", ...}]``, contents stripped of the
  spaces around them (the template separates the turns).
* A ``system`` column becomes the prompt's system turn (first); an empty or null one gives no system turn.
  Where the template is not applied, it is written before the prompt, then a blank line.
* Message-list data is the data's own conversation: the template always renders it, whatever the setting
  (only a ``system`` column is added to it, when its prompt has no system turn).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from harness.data.convert import HH_ASSISTANT, HH_HUMAN
from harness.data.holdout import unique_prompts
from harness.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

    from harness.data.formats import DataFormat
    from harness.data.load import PreferenceData

#: The values of ``data.chat_template``.
CHAT_TEMPLATE_MODES = ("auto", "always", "never")
_COMPLETIONS = ("chosen", "rejected", "completion")
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


@dataclass(frozen=True)
class ChatRendering:
    """What ``data.chat_template`` (``mode``) came to: whether the template renders the data (``applied``)
    and why (``reason``); ``conversational``: the data is message lists already."""

    mode: str
    applied: bool
    reason: str = ""
    conversational: bool = False

    def describe(self) -> str:
        """One line for the record and the report, e.g. ``applied to string prompts (auto)``."""
        if self.conversational:
            return "applied to the data's message lists (always, whatever the setting)"
        what = "applied to string prompts" if self.applied else "not applied"
        return f"{what} ({self.mode}{': ' + self.reason if self.reason else ''})"


def _check_mode(mode: str) -> None:
    if mode not in CHAT_TEMPLATE_MODES:
        raise DataError(
            f"data.chat_template={mode!r} is invalid; use auto (the model's template on string data when it "
            "has one), always or never."
        )


def choose_rendering(
    mode: str, tokenizer: PreTrainedTokenizerBase, data_format: DataFormat, *, plain_text_model: bool = False
) -> ChatRendering:
    """Whether the chat template renders the data: ``never`` keeps strings as they are; ``always`` applies it
    (an error without one); ``auto`` applies it when the tokenizer has one, unless ``plain_text_model`` (a
    model pretrained on plain text whose template is for message lists only: the toy world's).

    :raises DataError: an unknown ``mode``, or ``always`` and a tokenizer without a chat template.
    """
    _check_mode(mode)
    if data_format.conversational:
        return ChatRendering(mode, True, conversational=True)
    has_template = getattr(tokenizer, "chat_template", None) is not None
    if mode == "never":
        return ChatRendering(mode, False, "strings as they are")
    if mode == "always":
        if not has_template:
            name = getattr(tokenizer, "name_or_path", "") or "the model"
            raise DataError(
                f"data.chat_template=always but the tokenizer of {name} has no chat template; use a chat "
                "model, set its tokenizer.chat_template, or data.chat_template=never (strings as they are)."
            )
        return ChatRendering(mode, True)
    if plain_text_model:
        return ChatRendering(mode, False, "the model was pretrained on plain text")
    if not has_template:
        return ChatRendering(mode, False, "the tokenizer has no chat template")
    return ChatRendering(mode, True, "the tokenizer has a chat template")


def hh_messages(prompt: str) -> list[dict[str, str]]:
    """The turns of an HH-RLHF prompt (``\\n\\nHuman: ...\\n\\nAssistant:``) as messages, the empty last
    assistant turn dropped; text before the first marker, if any, is a user turn."""
    parts = _HH_TURN.split(prompt)
    messages = [{"role": "user", "content": parts[0].strip()}] if parts[0].strip() else []
    for marker, text in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": "user" if marker == "Human" else "assistant", "content": text.strip()})
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages


def _system_turn(system: Any) -> list[dict[str, str]]:
    return (
        [{"role": "system", "content": system.strip()}] if isinstance(system, str) and system.strip() else []
    )


def prompt_messages(prompt: Any, system: Any = None) -> list[dict[str, Any]]:
    """A prompt as messages: a string as a user turn (an HH transcript as its turns), a message list as it is;
    ``system`` (when not empty) first, unless the prompt has a system turn already."""
    if isinstance(prompt, list):
        has_system = bool(prompt) and isinstance(prompt[0], dict) and prompt[0].get("role") == "system"
        return list(prompt) if has_system else _system_turn(system) + list(prompt)
    if HH_HUMAN in prompt and prompt.endswith(HH_ASSISTANT):
        return _system_turn(system) + hh_messages(prompt)
    return _system_turn(system) + [{"role": "user", "content": prompt.strip()}]


def plain_prompt(prompt: str, system: Any = None) -> str:
    """A string prompt with its system text (when not empty) before it, then a blank line."""
    return f"{system.strip()}\n\n{prompt}" if isinstance(system, str) and system.strip() else prompt


def _completion_messages(value: Any) -> Any:
    return value if isinstance(value, list) else [{"role": "assistant", "content": str(value).strip()}]


def _rows(batch: dict[str, list[Any]], applied: bool) -> dict[str, list[Any]]:
    systems = batch.get("system") or [None] * len(batch["prompt"])
    if not applied:
        return {"prompt": [plain_prompt(p, s) for p, s in zip(batch["prompt"], systems, strict=True)]}
    out = {"prompt": [prompt_messages(p, s) for p, s in zip(batch["prompt"], systems, strict=True)]}
    for column in _COMPLETIONS:
        if column in batch:
            out[column] = [_completion_messages(v) for v in batch[column]]
    return out


def _converted(dataset: Dataset, applied: bool) -> Dataset:
    """``dataset`` with its prompts (and, when applied, completions) rendered, the ``system`` column folded
    in and removed. Not from datasets' cache (it would key the function by its name)."""
    return dataset.map(
        _rows,
        fn_kwargs={"applied": applied},
        batched=True,
        remove_columns=[c for c in ("system",) if c in dataset.column_names],
        load_from_cache_file=False,
        desc="Chat template" if applied else "System prompts",
    )


def apply_rendering(data: PreferenceData, rendering: ChatRendering) -> PreferenceData:
    """``data`` as the model reads it (see the module docstring): unchanged when the template is not applied
    (or the data is message lists) and there is no ``system`` column."""
    has_system = "system" in data.train.column_names
    standard = not rendering.conversational
    applied = rendering.applied and standard
    if not has_system and not applied:
        return data
    train = _converted(data.train, rendering.applied)
    held_out = _converted(data.eval, rendering.applied) if data.eval is not None else None

    def prompts(values: list[Any] | None) -> list[Any] | None:
        if values is None or not applied:
            return values
        return [prompt_messages(p) for p in values]

    if has_system and held_out is not None:  # the held-out prompts with their system turns
        eval_prompts = unique_prompts(held_out)
    else:
        eval_prompts = prompts(data.eval_prompts) or []
    pairs = data.selection_pairs
    fmt = replace(data.format, style="conversational") if applied else data.format
    return replace(
        data,
        train=train,
        eval=held_out,
        eval_prompts=eval_prompts,
        format=fmt,
        selection_prompts=prompts(data.selection_prompts),
        selection_pairs=_converted(pairs, rendering.applied) if pairs is not None else None,
    )
