"""Preference data formats: which of TRL's dataset types a table of columns holds.

This module owns :class:`DataFormat` and :func:`detect_format`. The formats are TRL's (see
``trl/data_utils.py``):

* pairwise, standard: ``prompt``/``chosen``/``rejected`` strings;
* pairwise, implicit prompt: ``chosen``/``rejected`` only, the shared prefix is the prompt (strings or
  message lists; also a string ``prompt`` next to message-list ``chosen``/``rejected`` that repeat it, as
  TRL's ``maybe_extract_prompt`` treats it);
* pairwise, conversational: the same columns as message lists ``[{"role": ..., "content": ...}]``;
* unpaired: ``prompt``/``completion``/``label`` with a boolean label (standard or conversational).

Detection looks at the column names and one row; :mod:`harness.data.validate` then checks every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import DataError

Kind = Literal["pairwise", "unpaired"]
Style = Literal["standard", "conversational"]

#: What the error messages offer when columns match no format.
ACCEPTED_FORMATS = (
    "prompt/chosen/rejected (pairwise), chosen/rejected (implicit prompt) or "
    "prompt/completion/label (unpaired)"
)

_PAIR = ("chosen", "rejected")
_UNPAIRED = ("prompt", "completion", "label")


@dataclass(frozen=True)
class DataFormat:
    """The format of a preference dataset.

    :param kind: ``"pairwise"`` (chosen/rejected per prompt) or ``"unpaired"`` (one completion and a
        boolean label, as KTO uses).
    :param style: ``"standard"`` (strings) or ``"conversational"`` (message lists).
    :param implicit_prompt: pairwise data whose prompt is the shared prefix of chosen and rejected.
    """

    kind: Kind
    style: Style = "standard"
    implicit_prompt: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("pairwise", "unpaired"):
            raise ValueError(f"DataFormat.kind must be 'pairwise' or 'unpaired', not {self.kind!r}")
        if self.style not in ("standard", "conversational"):
            raise ValueError(f"DataFormat.style must be 'standard' or 'conversational', not {self.style!r}")
        if self.implicit_prompt and self.kind != "pairwise":
            raise ValueError("DataFormat.implicit_prompt is only possible for pairwise data")

    @property
    def conversational(self) -> bool:
        """True when the text fields are message lists."""
        return self.style == "conversational"

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The columns that hold text (strings or message lists) and are required in every row."""
        if self.kind == "unpaired":
            return ("prompt", "completion")
        return _PAIR if self.implicit_prompt else ("prompt", *_PAIR)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Every column this format needs."""
        return (*self.text_columns, "label") if self.kind == "unpaired" else self.text_columns

    def __str__(self) -> str:
        return f"{self.kind} {self.style}" + (" (implicit prompt)" if self.implicit_prompt else "")


def _first_value(row: Mapping[str, Any], columns: Iterable[str]) -> Any:
    """The first non-None value of ``columns`` in ``row`` (None if all are missing)."""
    return next((row[c] for c in columns if row.get(c) is not None), None)


def _prefix(source: str) -> str:
    return f"{source}: " if source else ""


def _unknown_columns_error(columns: list[str], source: str) -> DataError:
    names = set(columns)
    missing: list[str] = []
    if names & set(_PAIR):
        missing = [c for c in _PAIR if c not in names]
    elif names & {"completion", "label"}:
        missing = [c for c in _UNPAIRED if c not in names]
    if missing:
        what = "pairwise" if missing[0] in _PAIR else "unpaired"
        return DataError(
            f"{_prefix(source)}Preference data columns {columns} lack {missing} for {what} data: "
            f"expected {ACCEPTED_FORMATS}; add or rename the missing columns."
        )
    return DataError(
        f"{_prefix(source)}Unrecognised preference data columns {columns}: expected "
        f"{ACCEPTED_FORMATS}; rename your columns to one of these."
    )


def detect_format(
    column_names: Iterable[str], first_row: Mapping[str, Any], *, source: str = ""
) -> DataFormat:
    """The :class:`DataFormat` of a dataset, from its column names and one (representative) row.

    The style is read from the first non-None completion field of ``first_row``: a list means message
    lists, anything else strings (:func:`harness.data.validate` checks every row against it).

    :param column_names: the dataset's columns (extra columns are allowed and kept).
    :param first_row: a row of the dataset, used to tell strings from message lists.
    :param source: where the data comes from, to prefix error messages.
    :raises DataError: the columns match no format, or a row mixes message lists and strings.
    """
    columns = list(column_names)
    names = set(columns)
    if set(_PAIR) <= names:
        completion = _first_value(first_row, _PAIR)
        style: Style = "conversational" if isinstance(completion, list) else "standard"
        if "prompt" not in names:
            return DataFormat("pairwise", style, implicit_prompt=True)
        prompt = first_row.get("prompt")
        if style == "conversational" and not isinstance(prompt, list):
            # TRL's maybe_extract_prompt: a string prompt beside message lists that repeat it.
            return DataFormat("pairwise", style, implicit_prompt=True)
        if style == "standard" and isinstance(prompt, list) and completion is not None:
            raise DataError(
                f"{_prefix(source)}Column 'prompt' holds message lists but 'chosen'/'rejected' hold "
                "strings; use message lists in all three (conversational) or strings in all three "
                "(standard)."
            )
        if style == "standard" and isinstance(prompt, list):
            style = "conversational"
        return DataFormat("pairwise", style)
    if set(_UNPAIRED) <= names:
        value = _first_value(first_row, ("completion", "prompt"))
        return DataFormat("unpaired", "conversational" if isinstance(value, list) else "standard")
    raise _unknown_columns_error(columns, source)
