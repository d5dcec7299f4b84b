"""Reshaping preference data: implicit prompts made explicit, pairwise to unpaired, pairs from completions.

This module owns :func:`extract_prompts` (TRL's ``extract_prompt`` for message lists; for strings a
word-boundary variant, since TRL's splits at the first differing character, mid-word, and for HH-RLHF
transcripts a split after the last ``Assistant:`` turn marker, see :func:`split_prompt`), :func:`to_unpaired`
(TRL's ``unpair_preference_dataset``, after extracting prompts so that the unpaired rows keep one) and
:func:`build_preference_dataset` (pairs from two completions per prompt and an ``"a"``/``"b"`` label).
TRL is imported lazily: it pulls in transformers and torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.data.formats import DataFormat, detect_format
from harness.data.validate import RowProblems, validate
from harness.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset


def split_common_prefix(chosen: str, rejected: str) -> tuple[str, str, str]:
    """``(prompt, chosen_rest, rejected_rest)``: the shared prefix of two strings, cut at a word boundary.

    The prompt ends before the whitespace that precedes the first differing word (so the completions
    start with that whitespace, as TRL's ``extract_prompt`` leaves them); text without whitespace falls
    back to the first differing character.
    """
    n = len(os.path.commonprefix([chosen, rejected]))
    cut = n

    def boundary(k: int) -> bool:
        return 0 < k < min(len(chosen), len(rejected)) and (
            chosen[k].isspace() or rejected[k].isspace() or chosen[k - 1].isspace()
        )

    if not boundary(n):
        cut = next((i for i in range(n - 1, 0, -1) if chosen[i].isspace()), n)
    while cut > 0 and chosen[cut - 1].isspace():
        cut -= 1
    return chosen[:cut], chosen[cut:], rejected[cut:]


#: The turn markers of Anthropic HH-RLHF transcripts ("\n\nHuman: ...\n\nAssistant: ...").
HH_HUMAN, HH_ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


def is_hh_transcript(chosen: str, rejected: str) -> bool:
    """True when both texts are HH-RLHF-style transcripts (both hold ``\\n\\nHuman:`` and
    ``\\n\\nAssistant:``)."""
    return all(HH_HUMAN in text and HH_ASSISTANT in text for text in (chosen, rejected))


def split_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """``(prompt, chosen_rest, rejected_rest)`` of an implicit-prompt pair of strings.

    HH-RLHF transcripts (:func:`is_hh_transcript`) split after the last ``\\n\\nAssistant:`` marker the two
    share, so the prompt is the conversation up to the answer even when both answers start alike; other text
    splits at the shared prefix (:func:`split_common_prefix`).
    """
    if is_hh_transcript(chosen, rejected):
        shared = os.path.commonprefix([chosen, rejected])
        end = shared.rfind(HH_ASSISTANT)
        if end >= 0:
            cut = end + len(HH_ASSISTANT)
            return chosen[:cut], chosen[cut:], rejected[cut:]
    return split_common_prefix(chosen, rejected)


def _extract_strings(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    parts = [split_prompt(c, r) for c, r in zip(batch["chosen"], batch["rejected"], strict=True)]
    return {
        "prompt": [p for p, _, _ in parts],
        "chosen": [c for _, c, _ in parts],
        "rejected": [r for _, _, r in parts],
    }


def extract_prompts(
    dataset: Dataset, fmt: DataFormat | None = None, source: str = "data", rows: Sequence[int] | None = None
) -> Dataset:
    """Pairwise data with an explicit ``prompt`` column (implicit prompts extracted; others unchanged).

    :param dataset: pairwise data, validated.
    :param fmt: its format (detected from the first row if None).
    :param source: for messages.
    :param rows: the 1-based row of each of ``dataset``'s rows in the source, for messages (None: 1, 2, ...;
        after ties are dropped, :meth:`ValidationReport.source_rows`).
    :raises DataError: rows whose chosen and rejected share no prefix, or where one is the prompt itself.
    """
    fmt = fmt or detect_format(dataset.column_names, dataset[0] if len(dataset) else {}, source=source)
    if not fmt.implicit_prompt:
        return dataset
    if "prompt" in dataset.column_names:  # a string prompt beside message lists that repeat it
        dataset = dataset.remove_columns("prompt")
    if fmt.conversational:
        from trl import extract_prompt

        dataset = dataset.map(extract_prompt, desc="Extracting prompts")
    else:
        # Not from datasets' cache: it keys a module-level function by its name, so results of an older split
        # rule would be reused.
        dataset = dataset.map(
            _extract_strings, batched=True, desc="Extracting prompts", load_from_cache_file=False
        )
    problems = RowProblems()
    view = dataset.with_format(None).select_columns(["prompt", "chosen", "rejected"])
    for row, example in zip(rows or range(1, len(dataset) + 1), view, strict=True):
        if not example["prompt"] or (isinstance(example["prompt"], str) and not example["prompt"].strip()):
            problems.add(row, "prompt", "cannot be extracted (chosen and rejected share no prefix)")
        for column in ("chosen", "rejected"):
            value = example[column]
            if not value or (isinstance(value, str) and not value.strip()):
                problems.add(row, column, "is empty once the shared prompt is removed")
    if problems:
        raise problems.error(source, fix="add a 'prompt' column holding each pair's prompt")
    return dataset


def to_unpaired(dataset: Dataset) -> Dataset:
    """Unpaired (KTO) data from pairwise data: each pair gives (prompt, chosen, True),
    (prompt, rejected, False).

    Wraps TRL's ``unpair_preference_dataset`` (which also duplicates extra columns). Implicit prompts are
    extracted first, so every row has a prompt. Data that is already unpaired is returned unchanged.
    """
    columns = set(dataset.column_names)
    if {"completion", "label"} <= columns and not {"chosen", "rejected"} & columns:
        return dataset
    if not {"chosen", "rejected"} <= columns:
        raise DataError(
            f"Cannot unpair data with columns {dataset.column_names}: pairwise data needs "
            "'chosen' and 'rejected' columns (and optionally 'prompt')."
        )
    if "prompt" not in columns or (
        len(dataset) and detect_format(dataset.column_names, dataset[0]).implicit_prompt
    ):
        dataset = extract_prompts(dataset)
    from trl import unpair_preference_dataset

    return unpair_preference_dataset(dataset, desc="Unpairing")


def to_prompts(dataset: Dataset) -> Dataset:
    """Prompt-only data for online methods (GRPO, RLOO, PPO): the distinct prompts of pairwise or unpaired
    data, in first-seen order, as a single ``prompt`` column. Implicit prompts are extracted first."""
    columns = set(dataset.column_names)
    if "prompt" not in columns or (
        len(dataset)
        and {"chosen", "rejected"} <= columns
        and detect_format(dataset.column_names, dataset[0]).implicit_prompt
    ):
        if not {"chosen", "rejected"} <= columns:
            raise DataError(
                f"Cannot take prompts from data with columns {dataset.column_names}: it needs a "
                "'prompt' column (or 'chosen'/'rejected' with a shared prefix)."
            )
        dataset = extract_prompts(dataset)
    seen: dict[str, Any] = {}
    for prompt in dataset["prompt"]:
        seen.setdefault(prompt if isinstance(prompt, str) else repr(prompt), prompt)
    from datasets import Dataset as HFDataset

    return HFDataset.from_dict({"prompt": list(seen.values())})


def build_preference_dataset(
    prompts: Sequence[Any], completions_a: Sequence[Any], completions_b: Sequence[Any], labels: Sequence[str]
) -> Dataset:
    """Pairwise data from two completions per prompt; ``labels[i]`` is ``"a"`` or ``"b"``, the preferred one.

    Prompts and completions are strings (or message lists, for conversational data). Ties (a == b after
    stripping whitespace) are dropped with a :class:`~harness.data.validate.DataWarning` giving the count.

    :raises DataError: lengths differ, a label is not ``"a"``/``"b"`` (rows named), or a field is empty.
    """
    lengths = {
        "prompts": len(prompts),
        "completions_a": len(completions_a),
        "completions_b": len(completions_b),
        "labels": len(labels),
    }
    if len(set(lengths.values())) != 1:
        raise DataError(
            f"build_preference_dataset needs equally long inputs, got {lengths}; pass one "
            "prompt, two completions and one label per pair."
        )
    problems = RowProblems()
    for row, label in enumerate(labels, 1):
        problems.add(row, "labels", None if label in ("a", "b") else "is not 'a' or 'b'")
    if problems:
        raise problems.error(
            "build_preference_dataset",
            fix="use 'a' when completions_a[i] is preferred, 'b' when completions_b[i] is",
        )
    from datasets import Dataset

    chosen = [
        a if label == "a" else b for a, b, label in zip(completions_a, completions_b, labels, strict=True)
    ]
    rejected = [
        b if label == "a" else a for a, b, label in zip(completions_a, completions_b, labels, strict=True)
    ]
    dataset = Dataset.from_dict({"prompt": list(prompts), "chosen": chosen, "rejected": rejected})
    fmt = detect_format(dataset.column_names, dataset[0] if len(dataset) else {})
    dataset, _ = validate(dataset, fmt, "build_preference_dataset")
    return dataset
