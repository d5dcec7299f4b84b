"""Bounds on what a data source may hold, applied while it is read, so hostile or broken input costs a bounded
amount of memory and time and is refused in one line before any compute.

This module owns :class:`DataLimits` (``data.max_rows``, ``data.max_row_bytes``, ``data.max_field_bytes``,
``data.max_depth``), :func:`check_file_limits` (a ``.jsonl``/``.json``/``.csv`` file scanned before the
``datasets`` library reads it: a JSON Lines or CSV file a line at a time with bounded reads, a JSON file by a
streaming scan of its strings and brackets; nothing is parsed whole) and :func:`check_table_limits` (any
loaded split, e.g. Parquet, a saved dataset or a Hub dataset: its rows and its longest text, measured on the
Arrow table without copying it). Without the first, a single 200 MB line was read whole and then tokenized
(gigabytes, in native code that does not see Ctrl-C), and JSON nested 100,000 deep broke Python's parser
with a RecursionError. Every message names the file, the row (from 1) and the setting to raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

MIB = 1 << 20
_CHUNK = 1 << 22  # 4 MiB: the scan of a JSON file reads this much at a time
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)  # a whole JSON string literal
_STRING_END = re.compile(rb'(?:[^"\\]|\\.)*"', re.DOTALL)  # the rest of one, up to its closing quote
_TOKEN = re.compile(rb'["\[\]{}]')


@dataclass(frozen=True)
class DataLimits:
    """What one data source may hold (the ``data.*`` settings of ``data=files``).

    The defaults fit real preference datasets with a wide margin: UltraFeedback and HH-RLHF rows are under
    100 KB and their message lists 3 levels deep; the largest public preference sets have a few hundred
    thousand rows. Reading a file within them needs at most about ``10 * max_row_bytes`` of memory beyond
    what the ``datasets`` library keeps (it memory-maps its Arrow cache).

    :param max_rows: rows one split may have (5,000,000).
    :param max_row_bytes: bytes of one record as written in the file: a JSON Lines or CSV line (8 MiB).
    :param max_field_bytes: UTF-8 bytes of one text value (a prompt, a completion, a message's content: 1 MiB,
        about 250,000 tokens, far beyond any model's context).
    :param max_depth: nesting of arrays and objects in one record (100; a conversational row is 3 deep).
    """

    max_rows: int = 5_000_000
    max_row_bytes: int = 8 * MIB
    max_field_bytes: int = MIB
    max_depth: int = 100

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> DataLimits:
        """The limits set in ``settings`` (e.g. ``cfg.data``; a missing or null key keeps its default).

        :raises DataError: a limit that is not a whole number of at least 1.
        """
        values = {}
        for field in fields(cls):
            value = (settings or {}).get(field.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(
                    f"data.{field.name}={value!r} is invalid; use a whole number of at least 1 "
                    f"(default {field.default})."
                )
            values[field.name] = value
        return cls(**values)


def _over(path: Path | str, where: str, what: str, setting: str, value: int) -> DataError:
    return DataError(
        f"{path}: {where} {what}, over data.{setting}={value}; fix or remove it, or raise data.{setting} "
        "if the data is meant to be that large."
    )


def _too_many(path: Path | str, detail: str, limit: int) -> DataError:
    return DataError(
        f"{path}: more than data.max_rows={limit} rows ({detail}); keep fewer rows in the file, or raise "
        "data.max_rows if the data is meant to be that large."
    )


def _depth(text: bytes) -> int:
    """How deep arrays and objects nest in one JSON record (strings skipped)."""
    brackets = re.sub(rb"[^\[\]{}]", b"", _STRING.sub(b"", text))
    return max(accumulate(1 if b in b"[{" else -1 for b in brackets), default=0)


def _literal_bytes(literal: bytes) -> int:
    """The UTF-8 bytes of a JSON string literal's value (its escapes decoded; the literal's own length when
    it does not decode)."""
    try:
        return len(json.loads(literal).encode("utf-8", "surrogatepass"))
    except ValueError:
        return len(literal)


def _check_record(path: Path, where: str, text: bytes, limits: DataLimits) -> None:
    """One record's nesting and longest string, examined only when its size or brackets could break a limit
    (two counts in C for every other record)."""
    if text.count(b"[") + text.count(b"{") > limits.max_depth and (depth := _depth(text)) > limits.max_depth:
        raise _over(path, where, f"nests arrays/objects {depth} levels deep", "max_depth", limits.max_depth)
    if len(text) > limits.max_field_bytes:
        for literal in _STRING.findall(text):
            if (
                len(literal) > limits.max_field_bytes
                and (n := _literal_bytes(literal)) > limits.max_field_bytes
            ):
                raise _over(
                    path, where, f"has a text value of {n} bytes", "max_field_bytes", limits.max_field_bytes
                )


def _lines(path: Path, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` of ``path``, each read with at most ``limit + 1`` bytes in memory; a longer
    line comes as None (its rest is skipped, unread into memory)."""
    with path.open("rb") as handle:
        number = 0
        while line := handle.readline(limit + 1):
            number += 1
            if len(line) > limit and not line.endswith(b"\n"):
                while (rest := handle.readline(_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield number, None
            else:
                yield number, line


def _where(row: int, line: int) -> str:
    return f"row {row}" if row == line else f"row {row} (line {line})"


def _scan_lines(path: Path, limits: DataLimits, header: bool) -> None:
    """A JSON Lines file (blank lines are not rows), or a CSV file (its first line the header)."""
    row = 0
    for number, line in _lines(path, limits.max_row_bytes):
        if header and number == 1:
            if line is None:
                raise _over(path, "the header (line 1)", "is too long", "max_row_bytes", limits.max_row_bytes)
            continue
        if line is not None and not line.strip():
            continue
        row += 1
        where = f"row {row} (line {number})" if header else _where(row, number)
        if row > limits.max_rows:
            raise _too_many(path, f"{where} is one more", limits.max_rows)
        if line is None:
            size = f"is longer than {limits.max_row_bytes} bytes"
            raise _over(path, where, size, "max_row_bytes", limits.max_row_bytes)
        if not header:
            _check_record(path, where, line, limits)
        elif len(line) > limits.max_field_bytes:
            raise _over(path, where, f"is {len(line)} bytes long", "max_field_bytes", limits.max_field_bytes)


class _JsonScan:
    """A streaming scan of a JSON file's strings and brackets, a chunk at a time: nesting depth, the longest
    string, and the records (the objects of the top-level array) counted as rows."""

    def __init__(self, path: Path, limits: DataLimits) -> None:
        self.path, self.limits = path, limits
        self.depth = self.row = 0
        self.string: int | None = None  # bytes of the string being read, while in one
        self.escape = False  # the previous chunk ended inside a string on a backslash

    def _where(self) -> str:
        return f"record {self.row}" if self.row else "the file"

    def _string_bytes(self, chunk: bytes, start: int) -> int:
        """Continue the string being read from ``chunk[start:]``; returns where scanning goes on."""
        if self.escape:
            start, self.escape = start + 1, False
            self.string = (self.string or 0) + 1
        match = _STRING_END.match(chunk, start)
        if match is None:  # the string goes on into the next chunk
            tail = chunk[start:]
            self.escape = (len(tail) - len(tail.rstrip(b"\\"))) % 2 == 1
            self.string = (self.string or 0) + len(tail)
            end = len(chunk)
        else:
            self.string = (self.string or 0) + match.end() - start - 1
            end = match.end()
        if self.string > self.limits.max_field_bytes:
            limit = self.limits.max_field_bytes
            raise _over(
                self.path, self._where(), f"has a text value over {limit} bytes", "max_field_bytes", limit
            )
        if match is not None:
            self.string = None
        return end

    def _bracket(self, token: bytes) -> None:
        if token in b"[{":
            self.depth += 1
            if self.depth == 2 and token == b"{":
                self.row += 1
                if self.row > self.limits.max_rows:
                    raise _too_many(self.path, f"record {self.row} is one more", self.limits.max_rows)
            if self.depth > self.limits.max_depth:
                limit = self.limits.max_depth
                raise _over(
                    self.path,
                    self._where(),
                    f"nests arrays/objects over {limit} levels deep",
                    "max_depth",
                    limit,
                )
        else:
            self.depth -= 1

    def feed(self, chunk: bytes) -> None:
        """Scan the next ``chunk`` of the file."""
        at = self._string_bytes(chunk, 0) if self.string is not None else 0
        while (match := _TOKEN.search(chunk, at)) is not None:
            token = match.group()
            if token == b'"':
                self.string = 0
                at = self._string_bytes(chunk, match.end())
            else:
                self._bracket(token)
                at = match.end()


def check_file_limits(path: Path, limits: DataLimits) -> None:
    """Refuse a ``.jsonl``, ``.json`` or ``.csv`` file beyond ``limits``, reading it with bounded memory:
    more rows than ``max_rows``, a line longer than ``max_row_bytes``, a text value longer than
    ``max_field_bytes``, or (JSON) nesting deeper than ``max_depth``. Other formats are checked once loaded
    (:func:`check_table_limits`).

    :raises DataError: one line naming the file, the row and the setting to raise.
    """
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".csv"):
        _scan_lines(path, limits, header=suffix == ".csv")
    elif suffix == ".json":
        scan = _JsonScan(path, limits)
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                scan.feed(chunk)


def _longest(array: pa.Array, rows: pa.Array | None) -> tuple[int, int | None]:
    """The most UTF-8 bytes of any string in ``array`` (lists and structs looked into) and the row holding
    it (``rows``: each element's row; None: element i is row i)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        lengths = pc.binary_length(array)
        most = pc.max(lengths).as_py()
        if most is None:
            return 0, None
        at = pc.index(lengths, most).as_py()
        return most, (rows[at].as_py() if rows is not None else at)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        parents = pc.list_parent_indices(array)
        inner_rows = pc.take(rows, parents) if rows is not None else parents
        return _longest(pc.list_flatten(array), inner_rows)
    if pa.types.is_struct(kind):
        found = [_longest(pc.struct_field(array, [i]), rows) for i in range(kind.num_fields)]
        return max(found, key=lambda f: f[0], default=(0, None))
    return 0, None


def _type_depth(kind: pa.DataType) -> int:
    import pyarrow as pa

    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return 1 + _type_depth(kind.value_type)
    if pa.types.is_struct(kind):
        return 1 + max((_type_depth(kind.field(i).type) for i in range(kind.num_fields)), default=0)
    return 0


def check_table_limits(dataset: Dataset, limits: DataLimits, source: str) -> None:
    """Refuse a loaded split beyond ``limits``: more rows than ``max_rows``, a column nested deeper than
    ``max_depth`` (its Arrow type), a text value (strings, also inside message lists) longer than
    ``max_field_bytes``. Vectorised on the Arrow table, which is not copied.

    :raises DataError: one line naming ``source``, the column and row (from 1), and the setting to raise.
    """
    if len(dataset) > limits.max_rows:
        raise _too_many(source, f"it has {len(dataset)}", limits.max_rows)
    table = dataset.data.table
    for name in table.column_names:
        column = table.column(name)
        if (depth := 1 + _type_depth(column.type)) > limits.max_depth:
            raise _over(
                source, f"column {name!r}", f"nests {depth} levels deep", "max_depth", limits.max_depth
            )
        offset = 0
        for chunk in column.chunks:
            most, row = _longest(chunk, None)
            if most > limits.max_field_bytes and row is not None:
                where = f"row {offset + row + 1}, column {name!r},"
                raise _over(
                    source,
                    where,
                    f"has a text value of {most} bytes",
                    "max_field_bytes",
                    limits.max_field_bytes,
                )
            offset += len(chunk)
