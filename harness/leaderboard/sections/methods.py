"""The Methods section (with seeds): the verdict sentence, each method at its best setting compared with the
leader (:mod:`harness.leaderboard.analysis.conclusions`), and how to read the table.

``data``: ``verdict`` (the sentence as plain text; the caption is it made safe for Markdown).
"""

from __future__ import annotations

import html

from harness.leaderboard.analysis import conclusions
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html_parts import html_table, note
from harness.leaderboard.markdown_parts import markdown_prose
from harness.leaderboard.sections.base import Figures, Page, Section, flat, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some setting was run with several seeds."""
    summary = flat(board.method_summary)
    if not ranked(board) or summary.empty:
        return None
    verdict = board.verdict
    return Section(
        "conclusions",
        "Methods",
        caption=markdown_prose(verdict),
        frame=conclusions.shown(summary),
        notes=(conclusions.explanation(board.objective_name, board.objective_se_column()),),
        data={"verdict": verdict},
        html=to_html,
    )


def to_html(section: Section, page: Page) -> str:
    """The verdict as the lead paragraph, the table and the explanation."""
    return (
        f'<p class="lead">{html.escape(section.data["verdict"])}</p>'
        f"{html_table(section.frame, section.key, page.kl_budget, page.colors, page.notes)}"
        + "".join(map(note, section.notes))
    )
