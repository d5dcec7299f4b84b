"""Token lengths against a method's maximum sequence length: what will be truncated, what cannot train at all.

This module owns :func:`count_lengths` and :func:`fit_to_length`. TRL's trainers truncate a prompt+completion
longer than ``max_length`` and silently drop rows whose prompt alone reaches it (no room for a completion
token), so a trial would train on fewer rows than it reports. Counting is done here, before training, with
the trial's tokenizer, the way TRL tokenizes: strings with the tokenizer's special tokens (and EOS appended to
completions), message lists through the chat template (the prompt with the generation prompt, prompt +
completion as one conversation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.data.chat import check_chat_template, is_conversational
from harness.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

_BATCH = 512
_COMPLETIONS = ("chosen", "rejected", "completion")


@dataclass(frozen=True)
class LengthReport:
    """Token lengths of a dataset's rows against ``max_length`` (None: no limit, nothing counted).

    :param rows: rows counted.
    :param truncated: rows whose prompt + completion (the longer one, for a pair) exceeds ``max_length`` while
        the prompt alone fits: the trainer truncates their completion.
    :param dropped_long_prompt: rows whose prompt alone has at least ``max_length`` tokens.
    :param longest_prompt: the most tokens of any prompt.
    :param mean_tokens: the mean number of tokens the trainer reads per kept row: prompt + completion of each
        of its sequences (both of a pair), each capped at ``max_length``; the prompt alone for prompt-only
        data (the online methods, whose completions are sampled). None when nothing was counted.
    """

    max_length: int | None
    rows: int
    truncated: int = 0
    dropped_long_prompt: int = 0
    longest_prompt: int = 0
    mean_tokens: float | None = None

    def warning(self, setting: str = "max_length", source: str = "training data") -> str | None:
        """One line announcing the rows that will be truncated and those dropped (each a count and a share of
        the rows), and the fix; None when there are none."""
        parts = []
        if self.truncated:
            parts.append(
                f"{self.truncated} of {self.rows} rows ({_percent(self.truncated, self.rows)}) have a "
                f"prompt + completion longer than {setting}={self.max_length} tokens and will be truncated "
                "to it"
            )
        if self.dropped_long_prompt:
            parts.append(
                f"dropped {self.dropped_long_prompt} of {self.rows} rows "
                f"({_percent(self.dropped_long_prompt, self.rows)}) whose prompt alone has at least "
                f"{setting}={self.max_length} tokens (the longest: {self.longest_prompt}), leaving no room "
                "for a completion"
            )
        if not parts:
            return None
        return f"{source}: {'; '.join(parts)}; raise {setting} or filter the long rows out of the data."


def _percent(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole``, to one decimal (``"<0.1%"`` rather than ``"0.0%"``)."""
    share = 100 * part / whole
    return "<0.1%" if 0 < share < 0.1 else f"{share:.1f}%"


def _token_counts(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], special_tokens: bool
) -> list[int]:
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=special_tokens)["input_ids"]]


def _batch_lengths(
    tokenizer: PreTrainedTokenizerBase, batch: dict[str, list[Any]], columns: Sequence[str]
) -> tuple[list[int], list[list[int]]]:
    """(prompt tokens, prompt + completion tokens of each completion column) of each row of ``batch``: the
    second is a list per column (empty for prompt-only data)."""
    prompts = batch["prompt"]
    chat = is_conversational(prompts[0])
    if chat:
        render = tokenizer.apply_chat_template
        prompt_texts = render([list(p) for p in prompts], add_generation_prompt=True, tokenize=False)
        fulls = [
            render([list(p) + list(c) for p, c in zip(prompts, batch[col], strict=True)], tokenize=False)
            for col in columns
        ]
    else:
        eos = tokenizer.eos_token or ""
        prompt_texts = list(prompts)
        fulls = [
            [
                p + c + ("" if not eos or c.endswith(eos) else eos)
                for p, c in zip(prompts, batch[col], strict=True)
            ]
            for col in columns
        ]
    prompt_lengths = _token_counts(tokenizer, prompt_texts, not chat)
    full_lengths = [_token_counts(tokenizer, texts, not chat) for texts in fulls]
    return prompt_lengths, full_lengths


def count_lengths(
    dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int | None
) -> tuple[LengthReport, list[int]]:
    """Count ``dataset``'s rows against ``max_length``; returns the report and the rows (0-based) that fit.
    With no ``max_length`` every row fits and only the token counts (``longest_prompt``, ``mean_tokens``) are
    taken.

    ``dataset`` is in a method's kind: ``prompt`` with ``chosen``/``rejected`` (pairwise), with ``completion``
    (unpaired), or alone (prompt-only); strings or message lists.

    :raises DataError: message-list data and a tokenizer without a chat template.
    """
    if len(dataset) == 0:
        return LengthReport(max_length=max_length, rows=0), []
    columns = [c for c in _COMPLETIONS if c in dataset.column_names]
    view = dataset.with_format(None).select_columns(["prompt", *columns])
    if is_conversational(view[0]["prompt"]):
        check_chat_template(tokenizer)
    limit = max_length if max_length is not None else float("inf")
    keep: list[int] = []
    truncated = dropped = longest = total = 0
    row = 0
    for batch in view.iter(batch_size=_BATCH):
        prompt_lengths, full_lengths = _batch_lengths(tokenizer, batch, columns)
        for prompt_len, fulls in zip(
            prompt_lengths,
            zip(*full_lengths, strict=True) if columns else [()] * len(prompt_lengths),
            strict=True,
        ):
            longest = max(longest, prompt_len)
            if prompt_len >= limit:
                dropped += 1
            else:
                keep.append(row)
                truncated += max(fulls, default=prompt_len) > limit
                total += sum(min(n, limit) for n in fulls) if fulls else prompt_len
            row += 1
    report = LengthReport(
        max_length=max_length,
        rows=len(dataset),
        truncated=truncated,
        dropped_long_prompt=dropped,
        longest_prompt=longest,
        mean_tokens=round(total / len(keep), 3) if keep else None,
    )
    return report, keep


#: A counter of token lengths: ``count_lengths`` itself, or one that reads its answers from a cache.
Counter = Callable[["Dataset", "PreTrainedTokenizerBase", "int | None"], tuple[LengthReport, list[int]]]


def fit_to_length(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int | None,
    *,
    setting: str = "max_length",
    source: str = "training data",
    count: Counter = count_lengths,
) -> tuple[Dataset, LengthReport]:
    """``dataset`` without the rows whose prompt alone has ``max_length`` tokens or more, and a
    :class:`LengthReport` (rows truncated, rows dropped). ``setting`` names the knob in messages (e.g.
    ``method.trl.max_length``); ``count`` counts the tokens (:func:`count_lengths`, or a cached one with the
    same answers).

    :raises DataError: every row's prompt is too long (one line naming the longest prompt and the fix).
    """
    report, keep = count(dataset, tokenizer, max_length)
    if report.rows and not keep:
        raise DataError(
            f"{source}: every one of the {report.rows} rows has a prompt of at least {setting}="
            f"{max_length} tokens (the longest: {report.longest_prompt}), leaving no room for a "
            f"completion; raise {setting} above {report.longest_prompt} or filter out long prompts."
        )
    if report.dropped_long_prompt:
        dataset = dataset.select(keep)
    return dataset, report
