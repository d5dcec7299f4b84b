"""The token-length count of a trial's training rows (:func:`harness.data.count_lengths`), once per key.

Before training, the runner counts every training row's tokens against the method's maximum length
(:func:`harness.data.fit_to_length`: rows the trainer would truncate, rows it would drop). That tokenizes
every row again, about 0.2 s of a toy-world trial and tens of seconds on UltraFeedback-sized data, in every
trial, while the answer depends only on the rows, the tokenizer and the limit. :func:`cached_count` stores it
in ``$HARNESS_CACHE_DIR/lengths/<key>.json`` (the report and the rows dropped) and later trials read it. The
key is the rows' digest (content and order), the tokenizer's identity (vocabulary, special tokens, chat
template, pipeline; not its path), the limit and :data:`FORMAT` (a tokenizer with no vocabulary to name it by
is counted uncached). An entry carries the SHA-256 of its contents (:func:`harness.cache.write_checked_json`):
one that is unreadable, edited, has no checksum or does not describe these rows is named in one warning line,
counted again and rewritten (never a silently wrong count, which would drop training rows). One lock per key;
in read-only mode a miss is counted and not written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cache import cache_dir, file_lock, read_checked_json, warn_damaged, write_checked_json
from harness.data.length import LengthReport, count_lengths
from harness.trial.trainer_cache import cache_path, rows_digest, tokenizer_identity

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

CACHE_FOLDER = "lengths"
FORMAT = 2  # part of every key: bump it when count_lengths counts differently


def _read(path: Path, rows: int) -> tuple[LengthReport, list[int]] | None:
    """The count stored at ``path`` for a dataset of ``rows`` rows, or None when there is none or it is not
    usable (then with one warning naming the entry and what is wrong)."""
    stored = read_checked_json(path)
    if stored is None:
        return None
    if isinstance(stored, str):
        warn_damaged("length-count", path, stored)
        return None
    try:
        report = LengthReport(**stored["report"])
        dropped = {int(i) for i in stored["dropped"]}
        consistent = (
            report.rows == rows and len(dropped) == report.dropped_long_prompt and dropped <= set(range(rows))
        )
    except (ValueError, KeyError, TypeError):
        consistent = False
    if not consistent:
        warn_damaged("length-count", path, f"does not describe these {rows} rows")
        return None
    return report, [i for i in range(rows) if i not in dropped]


def cached_count(
    dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int | None
) -> tuple[LengthReport, list[int]]:
    """:func:`~harness.data.count_lengths` of ``dataset``, read from the harness cache when these rows were
    counted with this tokenizer and limit before, else counted and stored there (a tokenizer without a
    vocabulary to name it by is counted uncached)."""
    if not callable(getattr(tokenizer, "get_vocab", None)):
        return count_lengths(dataset, tokenizer, max_length)
    material = {
        "format": FORMAT,
        "rows": rows_digest(dataset),
        "tokenizer": tokenizer_identity(tokenizer),
        "max_length": max_length,
    }
    path = cache_path(cache_dir(CACHE_FOLDER), material).with_suffix(".json")
    with file_lock(path.with_suffix(".lock")):
        found = _read(path, len(dataset))
        if found is not None:
            return found
        report, keep = count_lengths(dataset, tokenizer, max_length)
        kept = set(keep)
        dropped = [i for i in range(len(dataset)) if i not in kept]
        write_checked_json(path, {"report": dataclasses.asdict(report), "dropped": dropped})
        return report, keep
