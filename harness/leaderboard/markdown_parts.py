"""Markdown primitives the sections and the Markdown renderer share: text safe in Markdown,
tables, trial tables."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from harness.leaderboard.analysis.frames import format_value

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY_START = re.compile(r"&(?=#?\w+;)")


def markdown_text(value: Any) -> str:
    """``value`` as text that is safe in Markdown: what would open an HTML tag (``<`` before a letter, ``/``,
    ``!`` or ``?``) or an entity (``&name;``) is escaped, so a name such as ``<script>`` is shown, not run; a
    comparison such as ``p < 0.001`` stays as it is."""
    return _TAG_START.sub("&lt;", _ENTITY_START.sub("&amp;", str(value)))


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
