"""The Method settings section: each method's hyperparameters that are the same in all its trials, and the
loss its trainer computes where its plugin states it
(:func:`harness.leaderboard.analysis.caveats.with_loss_notes`). The HTML lists them (too long for table
cells)."""

from __future__ import annotations

import html

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Page, Section, flat, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when the board has settings to list."""
    settings = flat(board.settings)
    if not ranked(board) or settings.empty:
        return None
    return Section(
        "settings",
        "Method settings",
        caption="Each method's hyperparameters that are the same in all its trials (the "
        "swept ones are columns of the tables above), and, where its plugin states it, the loss its trainer "
        "computes (`loss`: what is summed, what is averaged per token, what an NLL term covers):",
        frame=settings,
        html=to_html,
    )


def to_html(section: Section, page: Page) -> str:
    """One wrapped line per method, its loss under it ('' without a ``settings`` column)."""
    if "settings" not in section.frame.columns:
        return ""
    items = "".join(
        f"<li><b>{html.escape(str(row['method']))}</b>: <code>{html.escape(str(row['settings']))}</code>"
        + (f'<br><span class="muted">loss: {html.escape(str(row["loss"]))}</span>' if row.get("loss") else "")
        + "</li>"
        for row in section.frame.to_dict("records")
    )
    return (
        "<p>Each method's hyperparameters that are the same in all its trials (the swept ones are "
        "columns of the tables above), and, where its plugin states it, the loss its trainer computes "
        "(what is summed, what is averaged per token, what an NLL term covers).</p>"
        f'<ul class="settings">{items}</ul>'
    )
