"""Checks of local data files that the ``datasets`` library does not make, or reports badly.

This module owns :func:`check_data_file` (an empty file, or text that is not UTF-8, is refused before it is
read, with the line and byte of the first bad byte), :func:`json_problem` (where a JSON or JSON Lines file
that failed to load breaks, as a 1-based line and column, rather than pyarrow's 0-based row within a block)
and :func:`json_keys` (the keys each record of a JSON file has, to tell a missing key from a ``null`` value:
both load as None). Every line and row number here counts from 1, as in every other message of
:mod:`harness.data`.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import DataError

#: Formats read as text (checked for UTF-8); Parquet is binary.
TEXT_EXTENSIONS = (".jsonl", ".json", ".csv")
_CHUNK = 1 << 22  # 4 MiB
_HEAD = 4096  # a binary file this small may be whitespace only
_UTF8 = {"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig"}
_EXAMPLE = {
    ".jsonl": 'one JSON object per line, e.g. {"prompt": "...", "chosen": "...", "rejected": "..."}',
    ".json": 'a JSON array of objects, e.g. [{"prompt": "...", "chosen": "...", "rejected": "..."}]',
    ".csv": "a header line such as prompt,chosen,rejected, then one line per pair",
    ".parquet": "a table with prompt/chosen/rejected columns, e.g. written by Dataset.to_parquet",
}


def _empty(path: Path, why: str) -> DataError:
    example = _EXAMPLE.get(path.suffix.lower(), "see the data formats in docs/how-to/real-models.md")
    return DataError(
        f"Data file {path} is empty ({why}); fill it with preference data ({example}) or point "
        "data.path at the file that holds it."
    )


def _not_utf8(path: Path, exc: UnicodeDecodeError, offset: int, line: int, column: int) -> DataError:
    bad = " ".join(f"0x{b:02x}" for b in exc.object[exc.start : exc.end])
    return DataError(
        f"Data file {path} is not UTF-8 text: byte {bad} at line {line}, column {column} (byte "
        f"{offset + 1} of the file) is not valid UTF-8; re-save the file as UTF-8 (e.g. iconv -f "
        f"latin1 -t utf-8 {path.name} > utf8-{path.name}, or 'Save as UTF-8' in an editor)."
    )


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _scan_utf8(path: Path) -> bool:
    """Decode ``path`` as UTF-8, chunk by chunk; returns whether it holds anything but whitespace.

    :raises DataError: the first byte that is not UTF-8, with its 1-based line, column and offset.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    line_start = 0  # offset of the first byte of the current line
    content = False
    for chunk in _chunks(path):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            at = offset - pending + exc.start
            before = chunk[: max(0, at - offset)]
            newline = before.rfind(b"\n")
            start = offset + newline + 1 if newline >= 0 else line_start
            raise _not_utf8(path, exc, at, lines + before.count(b"\n") + 1, at - start + 1) from None
        content = content or bool(chunk.strip())
        lines += chunk.count(b"\n")
        newline = chunk.rfind(b"\n")
        line_start = offset + newline + 1 if newline >= 0 else line_start
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # the file ends inside a multi-byte sequence
        at = offset - len(exc.object) + exc.start
        raise _not_utf8(path, exc, at, lines + 1, at - line_start + 1) from None
    return content


def check_data_file(path: Path, encoding: str | None = None) -> None:
    """Refuse a data file that is empty (0 bytes, or only whitespace) or, for a text format read as UTF-8 (the
    default ``encoding``), not UTF-8. Reads a text file once; of a Parquet file, at most its first 4 KiB.

    :raises DataError: one line naming the file, the line and byte of the first bad byte, and the fix.
    """
    size = path.stat().st_size
    if size == 0:
        raise _empty(path, "0 bytes")
    suffix = path.suffix.lower()
    if suffix in TEXT_EXTENSIONS and (encoding is None or encoding.lower() in _UTF8):
        if not _scan_utf8(path):
            raise _empty(path, f"{size} bytes of whitespace only")
    elif size <= _HEAD:
        with path.open("rb") as handle:
            if not handle.read(_HEAD).strip():
                raise _empty(path, f"{size} bytes of whitespace only")


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else "true/false" if isinstance(value, bool) else "a number"


def _lines_problem(text: str) -> str | None:
    """The first JSON Lines line that is not a JSON object, as ``line N, column C: why``."""
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"line {number}, column {exc.colno}: {exc.msg}"
        if not isinstance(value, dict):
            return f"line {number}: {_type_name(value)}, not a JSON object (one record per line)"
    return None


def json_problem(path: Path, lines: bool) -> str | None:
    """Where ``path`` stops being JSON (``lines``: JSON Lines) as ``line N, column C: why``, both from 1; None
    when Python's JSON parser reads it (the failure is elsewhere). A ``.json`` file may hold JSON Lines, as
    the ``datasets`` library accepts; it is then located line by line."""
    text = path.read_text(encoding="utf-8-sig")
    if lines:
        return _lines_problem(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # more than one value: JSON Lines in a .json file
            return _lines_problem(text)
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if not isinstance(value, list | dict):
        return f"the file holds {_type_name(value)}, not an array of objects"
    if isinstance(value, list):
        bad = next((i for i, v in enumerate(value, 1) if not isinstance(v, dict)), None)
        if bad is not None:
            return f"element {bad} of the array is {_type_name(value[bad - 1])}, not an object"
    return None


def _records(path: Path) -> list[Any]:
    """The records of a JSON Lines file, or of a JSON file (an array of objects, or JSON Lines), in the order
    the ``datasets`` library reads them (blank lines skipped)."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            return value if isinstance(value, list) else [value]
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def json_keys(path: Path, expected: int) -> list[set[str]] | None:
    """The keys of each record of a JSON or JSON Lines file of ``expected`` records (an empty set for a record
    that is not an object); None when the file cannot be read as that many records (which record is which is
    not known then)."""
    try:
        records = _records(path)
    except (OSError, ValueError):
        return None
    if len(records) != expected:
        return None
    return [set(r) if isinstance(r, dict) else set() for r in records]
