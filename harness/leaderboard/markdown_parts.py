"""Markdown primitives the sections and the Markdown renderer share: text safe in Markdown,
tables, trial tables."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from harness.leaderboard.analysis.frames import format_value

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY_START = re.compile(r"&(?=#?\w+;)")
_LINE_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029]")
_BACKTICKS = re.compile(r"`+")


def one_line(value: Any) -> str:
    """``value`` as text on one line: every line break (``\\n``, ``\\r``, U+2028/9) becomes a space, so a
    value can neither end a table row nor start a heading or a list item of its own."""
    return _LINE_BREAK.sub(" ", str(value))


def markdown_prose(text: Any) -> str:
    """A sentence the harness wrote (it may hold code spans of its own, around column names) with values
    in it, safe in Markdown and on one line (:func:`one_line`): what would open an HTML tag (``<`` before a
    letter, ``/``, ``!`` or ``?``) or an entity (``&name;``) is escaped, so a name such as ``<script>`` is
    shown, not run, inside a code span or out of it; ``](`` is broken so the text cannot close a link. A
    comparison such as ``p < 0.001`` stays as it is."""
    return _TAG_START.sub("&lt;", _ENTITY_START.sub("&amp;", one_line(text))).replace("](", "]\\(")


def markdown_text(value: Any) -> str:
    """A value (a name, a reason, a table cell) as literal text: :func:`markdown_prose`, and a backtick is
    backslashed so it cannot open a code span that would swallow the delimiter of the next one."""
    return markdown_prose(value).replace("`", "\\`")


def markdown_code(value: Any) -> str:
    """``value`` as a Markdown code span, on one line: delimited by one backtick more than the longest run of
    backticks inside it (and padded with a space where it starts or ends with one), so nothing in it can close
    the span; inside a code span Markdown shows everything literally, HTML included."""
    text = one_line(value)
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_table(df: pd.DataFrame) -> str:
    """``df`` as a Markdown table: every cell through :func:`format_value` and :func:`markdown_text`, and
    ``|`` backslashed so that it does not split a row."""
    return df.map(lambda v: markdown_text(format_value(v)).replace("|", "\\|")).to_markdown(index=False)


def section_table(df: pd.DataFrame) -> str:
    """A section's table in Markdown: ``trial_id`` left out (the Reproduce list names each trial) and the
    Pareto flag shown as ★."""
    shown = df.drop(columns=["trial_id"], errors="ignore")
    if "pareto" in shown:
        shown = shown.assign(pareto=shown["pareto"].map(lambda v: "★" if v is True else ""))
    return markdown_table(shown)
