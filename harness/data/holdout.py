"""Holding out evaluation data by prompt: whole prompts, with all their rows, so no prompt is on both sides.

This module owns :func:`split_by_prompt` and :func:`unique_prompts` (a prompt is a string or a message list;
message lists are compared by their JSON form).
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from harness.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset


def _prompt_key(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def unique_prompts(dataset: Dataset) -> list[Any]:
    """The ``prompt`` column's distinct values, in order of first appearance."""
    seen: dict[str, Any] = {}
    for prompt in dataset.with_format(None)["prompt"]:
        seen.setdefault(_prompt_key(prompt), prompt)
    return list(seen.values())


def _held_out(sizes: dict[str, int], fraction: float, seed: int) -> set[str]:
    """The prompts to hold out, from their numbers of rows: in a seeded order, each prompt whose rows bring
    the held-out rows closer to ``fraction`` of all rows; at least one, and never all."""
    order = list(sizes)
    random.Random(seed).shuffle(order)
    target = fraction * sum(sizes.values())
    held: list[str] = []
    count = 0
    for key in order:
        if len(held) + 1 < len(order) and abs(count + sizes[key] - target) < abs(count - target):
            held.append(key)
            count += sizes[key]
    return set(held) or {min(order, key=sizes.__getitem__)}


def split_by_prompt(
    dataset: Dataset, fraction: float, seed: int, source: str = "data"
) -> tuple[Dataset, Dataset]:
    """``(train, eval)``: whole prompts held out, with all their rows, so that no prompt is on both sides.

    The held-out prompts are chosen (seeded) so that their rows come as close to ``fraction`` of the rows as
    whole prompts allow: ``round(fraction * prompts)`` of them when every prompt has as many rows; at least
    one prompt is held out and one kept for training, however few there are.

    :raises DataError: every row has the same prompt (one line, with the fix).
    """
    keys = [_prompt_key(p) for p in dataset.with_format(None)["prompt"]]
    sizes: dict[str, int] = {}
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    if len(sizes) < 2:
        raise DataError(
            f"{source}: all {len(keys)} rows have the same prompt, so eval_fraction={fraction} cannot "
            "hold out a prompt that training does not see; add rows with other prompts, or set "
            "data.eval_split to a held-out split."
        )
    held = _held_out(sizes, fraction, seed)
    eval_rows = [i for i, k in enumerate(keys) if k in held]
    train_rows = [i for i, k in enumerate(keys) if k not in held]
    return dataset.select(train_rows), dataset.select(eval_rows)
