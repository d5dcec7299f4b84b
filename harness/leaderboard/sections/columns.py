"""The Columns section: what each column of the tables means. The Markdown lists the metric columns of the
ranked table (each metric's declared meaning); the HTML glossary also names the other tables' columns and
those that are not metrics.

``data``: ``items`` (Markdown: ``(column, meaning)`` pairs) and ``glossary`` (HTML: the same for every table).
"""

from __future__ import annotations

import html

from harness.leaderboard.analysis import conclusions
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html_parts import COLUMN_NOTES
from harness.leaderboard.markdown_parts import markdown_code, markdown_text
from harness.leaderboard.sections.base import Figures, Page, Section, flat, ranked, split


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some shown column has a meaning to give."""
    if not ranked(board):
        return None
    notes = board.notes()
    shown = board.shown(board.completed).columns if not board.completed.empty else []
    items = [(c, notes[c]) for c in shown if c in notes]
    done, _ = split(flat(board.trials))
    every = [
        *conclusions.shown(flat(board.method_summary)).columns,
        *board.shown(done).columns,
        *flat(board.cost).columns,
        *flat(board.seeds).columns,
    ]
    meanings = {**COLUMN_NOTES, **notes}
    glossary = [(c, meanings[c]) for c in dict.fromkeys(every) if c in meanings]
    if not items and not glossary:
        return None
    data = {"items": items, "glossary": glossary}
    return Section("columns", "Columns", data=data, markdown=markdown, html=to_html)


def markdown(section: Section) -> list[str]:
    """One item per metric column of the ranked table ([] when none has a meaning)."""
    items = [f"- {markdown_code(c)}: {markdown_text(meaning)}" for c, meaning in section.data["items"]]
    return [f"## {section.title}", "", *items, ""] if items else []


def to_html(section: Section, page: Page) -> str:
    """A definition list of every table's columns ('' when none has a meaning)."""
    body = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(t)}</dd>" for c, t in section.data["glossary"])
    return f'<dl class="glossary">{body}</dl>' if body else ""
