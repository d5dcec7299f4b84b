"""The HTML renderer: the leaderboard as one self-contained page, readable offline.

:func:`render_html` walks the report's sections (:mod:`harness.leaderboard.sections`) in the Markdown's order:
the sections without a title open the page, a navigation bar links the others, each under its ``<h2>``; a
section without its own HTML layout is laid out by :func:`section_html`. Everything is inline (CSS, a small
table-sorting script, the plots as base64 PNGs), so the file can be mailed, archived or opened from disk with
no network. All text from records is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path

from harness.leaderboard import plots as plotting
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html_parts import html_table, note, plain
from harness.leaderboard.sections import Figures, Page, Section, compute_sections
from harness.leaderboard.sections.base import flat
from harness.records import atomic_write_text


def _static(name: str) -> str:
    """A file of ``harness/leaderboard/static`` (the page's CSS and script),
    read from the installed package."""
    return files("harness.leaderboard").joinpath("static", name).read_text(encoding="utf-8")


def section_html(section: Section, page: Page) -> str:
    """The generic layout (the heading aside): the caption as a paragraph, the table and each note, muted."""
    caption = f"<p>{plain(section.caption)}</p>" if section.caption else ""
    table = (
        html_table(
            section.frame, section.key, page.kl_budget, page.colors, {**page.notes, **section.column_notes}
        )
        if not section.frame.empty
        else ""
    )
    return caption + table + "".join(map(note, section.notes))


def _body(sections: Sequence[Section], page: Page) -> str:
    """The sections' HTML: those before the first titled one, the navigation bar, then the rest under
    headings; a section whose layout shows nothing is left out, heading and link too."""
    parts = [(s, (s.html or section_html)(s, page)) for s in sections]
    parts = [(s, body) for s, body in parts if body]
    links = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s, _ in parts if s.title)
    out, nav = [], f"<nav>{links}</nav>" if links else ""
    for section, body in parts:
        if section.title and nav:
            out.append(nav)
            nav = ""
        out.append(
            f'<h2 id="{section.key}">{html.escape(section.title)}</h2>{body}' if section.title else body
        )
    return "".join(out)


def render_html(
    board: Leaderboard, plots: Mapping[str, bytes] | None = None, sections: Sequence[Section] | None = None
) -> str:
    """The leaderboard ``board`` as one self-contained HTML page: its title, then each section (``sections``,
    or those computed from ``board`` with the PNGs ``plots`` from
    :func:`harness.leaderboard.plots.render_plots`, rendered here when None)."""
    if sections is None:
        if plots is None:
            plots = plotting.render_plots(board) if not flat(board.checkpoints).empty else {}
        sections = compute_sections(board, Figures(pngs=plots))
    title = board.title or "leaderboard"
    page = Page(board.kl_budget, plotting.board_colors(board), board.notes())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Leaderboard: {html.escape(title)}</title><style>{_static('report.css')}</style></head><body>"
        f"<h1>Leaderboard: {html.escape(title)}</h1>{_body(sections, page)}"
        f"<script>{_static('report.js')}</script></body></html>\n"
    )


def write_html(
    board: Leaderboard,
    path: Path | str,
    plots: Mapping[str, bytes] | None = None,
    sections: Sequence[Section] | None = None,
) -> Path:
    """Write :func:`render_html` of ``board`` to ``path`` atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_html(board, plots, sections))
    return path
