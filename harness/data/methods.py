"""Preference data in the shape a method trains on: its kind of rows,
and exactly the columns its trainer takes.

This module owns :func:`data_for_method` and :data:`METHOD_COLUMNS`. A file usually holds more than a trainer
reads (UltraFeedback-binarized has ``messages``, ``prompt_id``, scores), and some of TRL's trainers refuse any
column they do not know, so every method gets only its kind's columns: ``prompt``/``chosen``/``rejected``
(pairwise), ``prompt``/``completion``/``label`` (unpaired; pairs are unpaired for it) or ``prompt``
(prompt-only online methods; the distinct prompts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.data.convert import to_prompts, to_unpaired
from harness.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset

    from harness.data.load import PreferenceData

#: The columns a method of each ``data_kind`` receives, in order.
METHOD_COLUMNS = {
    "pairwise": ("prompt", "chosen", "rejected"),
    "unpaired": ("prompt", "completion", "label"),
    "prompts": ("prompt",),
}


def _shaped(dataset: Dataset, data_kind: str) -> Dataset:
    if data_kind == "prompts":
        dataset = to_prompts(dataset)
    elif data_kind == "unpaired":
        dataset = to_unpaired(dataset)
    return dataset.select_columns(list(METHOD_COLUMNS[data_kind]))


def data_for_method(
    data: PreferenceData, data_kind: str, method: str = "this method"
) -> tuple[Dataset, Dataset | None]:
    """``(train, eval)`` in ``data_kind`` with only that kind's columns (:data:`METHOD_COLUMNS`).

    Pairwise data is unpaired for ``"unpaired"`` methods and reduced to its distinct prompts for ``"prompts"``
    ones; unpaired data serves unpaired and prompt-only methods.

    :param data: the loaded data (its ``train`` and ``eval`` keep every column of the source).
    :param data_kind: the method's ``MethodSpec.data_kind``.
    :param method: the method's name, for messages.
    :raises DataError: a pairwise method on unpaired data, or an unknown ``data_kind``.
    """
    if data_kind not in METHOD_COLUMNS:
        raise DataError(
            f"method {method} declares data_kind={data_kind!r}; use one of {sorted(METHOD_COLUMNS)}."
        )
    if data_kind == "pairwise" and data.format.kind != "pairwise":
        raise DataError(
            f"method {method} needs pairwise data (prompt/chosen/rejected) but the data is unpaired "
            "(prompt/completion/label); use an unpaired method such as method=kto, or pairwise data."
        )
    train = _shaped(data.train, data_kind)
    return train, (_shaped(data.eval, data_kind) if data.eval is not None else None)
