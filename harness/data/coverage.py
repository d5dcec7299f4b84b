"""Whether a tokenizer can represent the data: text it maps to unknown tokens, or drops, trains to nothing.

This module owns :func:`tokenizer_coverage` and :class:`Coverage`. A word-level tokenizer (the toy world's)
turns Chinese text or emoji into ``<unk>``; another may drop characters its normaliser does not know. The
trial then trains on rows that say nothing (a loss of log 2 and a margin of 0) and nothing says why. The
check tokenizes an evenly spaced sample of rows (every text value: prompt, completions, message contents),
counts the unknown tokens and compares the characters that survive a round trip (``decode(encode(text))``,
whitespace ignored, so normalisers that only respace or lower-case count as lossless); its cost does not grow
with the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

SAMPLE = 256  # rows looked at, evenly spaced over the data
THRESHOLD = 0.01  # warn when more than this share of the sampled rows lose text
_TEXT = ("prompt", "chosen", "rejected", "completion")


@dataclass(frozen=True)
class Coverage:
    """What the tokenizer did to a sample of rows: rows looked at, rows that lost text (an unknown token or a
    character dropped), unknown tokens of all tokens, characters lost of all characters (whitespace not
    counted)."""

    rows: int
    rows_lossy: int = 0
    unknown_tokens: int = 0
    tokens: int = 0
    chars_lost: int = 0
    chars: int = 0

    def warning(self, source: str = "training data") -> str | None:
        """One line with the counts when more than 1% of the sampled rows lost text; None otherwise."""
        if not self.rows or self.rows_lossy <= THRESHOLD * self.rows:
            return None
        share = _percent(self.rows_lossy, self.rows)
        parts = [f"{self.rows_lossy} of {self.rows} sampled rows ({share}) lose text"]
        if self.unknown_tokens:
            parts.append(
                f"{self.unknown_tokens} of {self.tokens} tokens "
                f"({_percent(self.unknown_tokens, self.tokens)}) are the unknown token"
            )
        if self.chars_lost:
            parts.append(
                f"{self.chars_lost} of {self.chars} characters ({_percent(self.chars_lost, self.chars)}) do "
                "not survive encoding"
            )
        return (
            f"{source}: the tokenizer cannot represent part of the text: {'; '.join(parts)}; the model "
            "trains on what is left: use a model whose tokenizer covers the data's scripts, or clean the "
            "data."
        )


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def _texts(value: Any) -> Iterator[str]:
    """The text of a field: a string, or the contents of a message list."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for message in value:
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                yield message["content"]


def _visible(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def tokenizer_coverage(
    dataset: Dataset, tokenizer: PreTrainedTokenizerBase, sample: int = SAMPLE
) -> Coverage:
    """How much of ``sample`` evenly spaced rows of ``dataset`` ``tokenizer`` represents (see the module)."""
    total = len(dataset)
    if not total:
        return Coverage(rows=0)
    step = max(1, total // sample)
    indices = list(range(0, total, step))[:sample]
    columns = [c for c in _TEXT if c in dataset.column_names]
    rows = dataset.with_format(None).select_columns(columns).select(indices)
    unk = getattr(tokenizer, "unk_token_id", None)
    decode = getattr(tokenizer, "batch_decode", None)
    lossy = unknown = tokens = lost = chars = 0
    for row in rows:
        texts = [t for c in columns for t in _texts(row[c])]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        row_unknown = sum(ids.count(unk) for ids in encoded) if unk is not None else 0
        before = sum(_visible(t) for t in texts)
        row_lost = 0
        if texts and decode is not None:  # a tokenizer that cannot decode is judged by its unknown tokens
            row_lost = max(0, before - sum(_visible(d) for d in decode(encoded, skip_special_tokens=True)))
        unknown, tokens = unknown + row_unknown, tokens + sum(len(ids) for ids in encoded)
        lost, chars = lost + row_lost, chars + before
        lossy += bool(row_unknown or row_lost)
    return Coverage(len(indices), lossy, unknown, tokens, lost, chars)
