"""Row-by-row validation of preference data, and the dropping of tied pairs.

This module owns :func:`validate` and :class:`ValidationReport`. Every row is checked against its
:class:`~harness.data.formats.DataFormat`: required fields present, strings non-empty, message lists well
formed (dicts with string ``role`` and ``content``, a known role, content non-empty but for a system
message; a problem names the role), labels boolean, a ``system`` column strings (empty: no system turn), no
value null, no control character but tab, newline and carriage return (a NUL or an ANSI escape is debris of a
broken export, never text the model should learn; a tokenizer drops or mangles it silently). All
problems are gathered and raised as one :class:`~harness.errors.DataError` line naming the columns and the
1-based row numbers; a null value is told from a missing key where the source can tell them apart (in a JSON
file both load as None). Ties (chosen equal to rejected after stripping whitespace) are not errors: they carry
no preference signal, so they are dropped, counted in the report and announced with a :class:`DataWarning`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.data.formats import DataFormat
from harness.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset

#: Message roles accepted in conversational data (those of chat templates).
ALLOWED_ROLES = ("system", "developer", "user", "assistant", "tool")

_MAX_ROWS_SHOWN = 5
_MAX_PROBLEMS_SHOWN = 3
_BATCH = 1000
#: What the checks say of a None value; :func:`validate`'s ``explain_nulls`` may say more (a missing key).
NULL = "is null"


class DataWarning(UserWarning):
    """Something in the data was changed on the way in (e.g. tied pairs dropped)."""


@dataclass(frozen=True)
class ValidationReport:
    """What validation found: rows read, rows kept, tied pairs dropped (``tie_rows``: their 1-based rows), and
    the detected format."""

    rows_in: int
    rows_out: int
    ties_dropped: int
    format: DataFormat
    tie_rows: tuple[int, ...] = ()

    def source_rows(self) -> list[int] | None:
        """The 1-based source row of each kept row, or None when none was dropped (row i is row i)."""
        if not self.tie_rows:
            return None
        tied = set(self.tie_rows)
        return [r for r in range(1, self.rows_in + 1) if r not in tied]

    def describe(self) -> str:
        """One line for logs, e.g. ``1000 rows, 3 ties dropped, 997 kept (pairwise standard)``."""
        return f"{self.rows_in} rows, {self.ties_dropped} ties dropped, {self.rows_out} kept ({self.format})"


def format_rows(rows: Sequence[int], limit: int = _MAX_ROWS_SHOWN) -> str:
    """``"row 3"`` or ``"rows 2, 5, 7, 9, 11 and 4 more"`` for 1-based row numbers."""
    if len(rows) == 1:
        return f"row {rows[0]}"
    shown = ", ".join(str(r) for r in rows[:limit])
    return f"rows {shown}" + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def tie_key(value: Any) -> Any:
    """A comparable form of a completion: stripped text, or (role, stripped content) per message."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return tuple(
            (m.get("role"), str(m.get("content") or "").strip()) if isinstance(m, dict) else repr(m)
            for m in value
        )
    return value


#: Control characters refused in text (C0 and DEL; tab, newline and carriage return are text).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 11: "VT", 12: "FF", 27: "ESC", 127: "DEL"}


def control_character(text: str) -> str | None:
    """Why ``text`` is not usable for holding a control character (``"holds control character U+0000
    (NUL)"``), or None. Tab, newline and carriage return are allowed."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    code = ord(found.group())
    name = _CONTROL_NAMES.get(code)
    return f"holds control character U+{code:04X}" + (f" ({name})" if name else "")


def check_text(value: Any) -> str | None:
    """Why ``value`` is not a usable text field (null, not a string, blank, holding a control character), or
    None if it is."""
    if value is None:
        return NULL
    if not isinstance(value, str):
        return "is not a string"
    if not value.strip():
        return "is empty or whitespace-only"
    return control_character(value)


def check_messages(value: Any) -> str | None:
    """Why ``value`` is not a usable message list ``[{"role": str, "content": str}, ...]``, or None. Problems
    with a message name its role; a system message may be empty (real data has them; the template renders
    it as it is)."""
    if value is None:
        return NULL
    if not isinstance(value, list):
        return "is not a message list"
    if not value:
        return "is an empty message list"
    for message in value:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            return "has a message that is not {'role': str, 'content': str}"
        role = message["role"]
        if role not in ALLOWED_ROLES:
            return f"has a message with unknown role {role!r} (allowed: {', '.join(ALLOWED_ROLES)})"
        if role != "system" and not message["content"].strip():
            return f"has a {role!r} message with empty content (only a system message may be empty)"
        if (control := control_character(message["content"])) is not None:
            return f"has a {role!r} message that {control}"
    return None


def check_system(value: Any) -> str | None:
    """Why ``value`` is not a usable ``system`` column entry (a string, possibly empty, or null: no system
    turn), or None."""
    if value is None:
        return None
    return control_character(value) if isinstance(value, str) else "is not a string"


def check_label(value: Any) -> str | None:
    """Why ``value`` is not a usable unpaired label, or None if it is a bool."""
    if value is None:
        return NULL
    return None if isinstance(value, bool) else "is not a boolean (use true/false)"


class RowProblems:
    """Problems found per (column, description), each with the 1-based rows that have it."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[int]] = {}

    def add(self, row: int, column: str, problem: str | None) -> bool:
        """Record ``problem`` (if not None) for ``column`` of ``row``; True if one was recorded."""
        if problem is None:
            return False
        self.rows.setdefault((column, problem), []).append(row)
        return True

    def __bool__(self) -> bool:
        return bool(self.rows)

    def refine(self, problem: str, explain: Callable[[str, list[int]], dict[str, list[int]]]) -> None:
        """Replace each column's ``problem`` by what ``explain(column, rows)`` says of its rows ({problem:
        rows}), in place (e.g. a null value told from a missing key)."""
        refined: dict[tuple[str, str], list[int]] = {}
        for (column, found), rows in self.rows.items():
            parts = explain(column, rows) if found == problem else {found: rows}
            for text, part in parts.items():
                if part:
                    refined.setdefault((column, text), []).extend(part)
        self.rows = refined

    def error(
        self, source: str, fix: str = "fix or remove these rows (rows are numbered from 1)"
    ) -> DataError:
        """One-line DataError listing the problems (the first few) with their rows, then ``fix``."""
        parts = [
            f"column '{column}' {problem} in {format_rows(rows)}"
            for (column, problem), rows in self.rows.items()
        ]
        more = len(parts) - _MAX_PROBLEMS_SHOWN
        text = "; ".join(parts[:_MAX_PROBLEMS_SHOWN]) + (f"; and {more} more problems" if more > 0 else "")
        return DataError(f"{source}: invalid preference data: {text}; {fix}.")


def validate(
    dataset: Dataset,
    fmt: DataFormat,
    source: str,
    *,
    explain_nulls: Callable[[str, list[int]], dict[str, list[int]]] | None = None,
) -> tuple[Dataset, ValidationReport]:
    """Check every row of ``dataset`` against ``fmt``; drop tied pairs.

    :param dataset: the loaded data (extra columns are kept untouched).
    :param fmt: its format, from :func:`harness.data.formats.detect_format`.
    :param source: the file or dataset id, for messages.
    :param explain_nulls: ``(column, rows) -> {problem: rows}``, what the source's None values are (e.g.
        ``"is missing"`` for a JSON record without the key, ``"is null"`` for one with ``null``); None:
        ``"is null"``.
    :returns: the dataset without ties, and a :class:`ValidationReport`.
    :raises DataError: one line naming every problem's column and rows (1-based), or no rows left.
    """
    missing = [c for c in fmt.required_columns if c not in dataset.column_names]
    if missing:
        raise DataError(
            f"{source}: {fmt} data needs columns {list(fmt.required_columns)} but {missing} are "
            f"missing (found {dataset.column_names}); add or rename them."
        )
    rows_in = len(dataset)
    if rows_in == 0:
        raise DataError(f"{source}: the data has no rows; provide at least one preference record.")
    problems, ties = _check_rows(dataset, fmt)
    if problems:
        if explain_nulls is not None:
            problems.refine(NULL, explain_nulls)
        raise problems.error(source)
    if ties and len(ties) == rows_in:
        raise DataError(
            f"{source}: all {rows_in} pairs are ties (chosen == rejected), so there is no preference "
            "to learn; check that the chosen and rejected columns are not copies of each other."
        )
    if ties:
        tied = {r - 1 for r in ties}
        dataset = dataset.select([i for i in range(rows_in) if i not in tied])
        warnings.warn(
            f"{source}: dropped {len(ties)} tied pairs (chosen == rejected) of {rows_in}, "
            f"{len(dataset)} remain ({format_rows(ties)}).",
            DataWarning,
            stacklevel=2,
        )
    report = ValidationReport(
        rows_in=rows_in, rows_out=len(dataset), ties_dropped=len(ties), format=fmt, tie_rows=tuple(ties)
    )
    return dataset, report


def _check_rows(dataset: Dataset, fmt: DataFormat) -> tuple[RowProblems, list[int]]:
    """Every row's problems (text columns, the label of unpaired data, a ``system`` column), and the tied
    pairs' rows (1-based; a pair with a bad text column is not checked for a tie)."""
    check = check_messages if fmt.conversational else check_text
    problems = RowProblems()
    ties: list[int] = []
    columns = [*fmt.required_columns, *(["system"] if "system" in dataset.column_names else [])]
    view = dataset.with_format(None).select_columns(columns)
    row = 0
    for batch in view.iter(batch_size=_BATCH):
        for values in zip(*(batch[c] for c in columns), strict=True):
            row += 1
            fields = dict(zip(columns, values, strict=True))
            bad = False
            for column in fmt.text_columns:
                bad = problems.add(row, column, check(fields[column])) or bad
            if "system" in fields:
                problems.add(row, "system", check_system(fields["system"]))
            if fmt.kind == "unpaired":
                problems.add(row, "label", check_label(fields["label"]))
            elif not bad and tie_key(fields["chosen"]) == tie_key(fields["rejected"]):
                ties.append(row)
    return problems, ties
