"""The Methods section (with seeds): the verdict sentence, each method at its best setting compared with the
leader (:mod:`harness.leaderboard.analysis.conclusions`), and how to read the table.

``data``: ``verdict`` (the sentence as plain text, then :data:`NOT_THE_VERDICT`; the caption is it made safe
for Markdown).
"""

from __future__ import annotations

import html

from harness.leaderboard.analysis import conclusions
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html_parts import html_table, note
from harness.leaderboard.markdown_parts import markdown_prose
from harness.leaderboard.sections.base import Figures, Page, Section, flat, ranked

#: Why this table and the Verdict section above it may name different leaders.
NOT_THE_VERDICT = (
    "This table ranks the methods by their test means; the Verdict above chooses on the selection prompts "
    "and tests the others paired against its choice, so the two can name different leaders: ship the "
    "Verdict's (a leader picked on the test means would be flattered by the prompts that picked it)."
)


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some setting was run with several seeds."""
    summary = flat(board.method_summary)
    if not ranked(board) or summary.empty:
        return None
    verdict = f"{board.verdict} {NOT_THE_VERDICT}"
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
