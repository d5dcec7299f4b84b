"""What a report section is: computed once from a leaderboard, then laid out by each renderer.

A :class:`Section` is data: a key (the HTML anchor and table id), a title (the heading; None for the lines
under the report's title), a Markdown caption before its table, the table (a DataFrame), Markdown notes after
it and the meaning of its columns. :mod:`harness.leaderboard.markdown` and :mod:`harness.leaderboard.html` lay
out every section the same generic way (heading, caption, table, notes) unless the section brings its own
layout for a format (``markdown`` or ``html``: a function of the section, reading what it needs from
``data``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from harness.leaderboard.board import Leaderboard


@dataclass(frozen=True)
class Page:
    """What every section of one HTML page shares: the KL budget (KL cells over it are marked), each method's
    colour and the meaning of the metric columns (header tooltips)."""

    kl_budget: float | None
    colors: Mapping[str, str]
    notes: Mapping[str, str]


MarkdownLayout = Callable[["Section"], list[str]]
HtmlLayout = Callable[["Section", Page], str]


@dataclass(frozen=True, eq=False)
class Section:
    """One part of a report.

    Attributes:
        key: a stable identifier: the HTML anchor and the id of the section's table.
        title: the heading (``## title``, ``<h2>``); None for a part that opens the report under its title.
        caption: Markdown text before the table ('' for none).
        frame: the table (empty: none).
        notes: Markdown paragraphs after the table.
        column_notes: the meaning of the table's columns that are not metrics (HTML header tooltips).
        data: what the section's own layouts read (documented by the section's module).
        markdown: the section's own Markdown layout (None: the generic one); it may return [] to show nothing.
        html: the section's own HTML layout, heading excluded (None: the generic one); '' shows nothing.
    """

    key: str
    title: str | None
    caption: str = ""
    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: tuple[str, ...] = ()
    column_notes: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    markdown: MarkdownLayout | None = None
    html: HtmlLayout | None = None


@dataclass(frozen=True)
class Figures:
    """The report's figures: PNG bytes by plot name (inlined by the HTML page) and the files they were written
    to (linked from the Markdown)."""

    pngs: Mapping[str, bytes] = field(default_factory=dict)
    files: tuple[str, ...] = ()


#: A section's module computes it with a function of this type: None when the report has no such section.
Compute = Callable[["Leaderboard", Figures], "Section | None"]


def ranked(board: Leaderboard) -> bool:
    """Whether ``board`` has trials to report (records of one setup):
    the sections after the opening need them."""
    return not board.groups and not board.trials.empty


def flat(df: pd.DataFrame | None) -> pd.DataFrame:
    """``df`` with a plain column list (MultiIndex columns joined by spaces) and its index as columns when it
    is not a plain range (a leaderboard's own tables already are); an empty frame for None."""
    if df is None:
        return pd.DataFrame()
    out = df.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" ".join(str(p) for p in col if str(p)) for col in out.columns]
    if not isinstance(out.index, pd.RangeIndex):
        out = out.reset_index()
    return out


def split(trials: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The completed trials and the others (failed, pruned, interrupted) of a trials table."""
    if trials.empty or "status" not in trials.columns:
        return trials, pd.DataFrame()
    done = trials["status"] == "completed"
    return trials[done], trials[~done]
