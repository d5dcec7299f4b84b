"""The Ranked trials section: every completed trial at its chosen checkpoint, best first, with the notes that
belong under the table (:attr:`harness.leaderboard.board.Leaderboard.table_notes`).

In Markdown the table follows the report's introduction without a heading unless the Verdict (there is one
whenever the trials have an objective) or the Methods section comes between them. ``data``: ``heading``
(whether the Markdown has the heading).
"""

from __future__ import annotations

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.markdown_parts import section_table
from harness.leaderboard.sections.base import Figures, Section, flat, ranked, split


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when a trial completed (or the Methods section precedes it)."""
    if not ranked(board):
        return None
    done, _ = split(flat(board.trials))
    after_methods = not board.method_summary.empty
    if done.empty and not after_methods:
        return None
    heading = after_methods or board.objective_name is not None  # the Verdict section comes first
    return Section(
        "trials",
        "Ranked trials",
        frame=board.shown(done),
        notes=tuple(board.table_notes),
        data={"heading": heading},
        markdown=markdown,
    )


def markdown(section: Section) -> list[str]:
    """The heading (after the Verdict or the Methods section only), the table and its notes."""
    lines = [f"## {section.title}", ""] if section.data["heading"] else []
    if section.frame.empty:
        return lines
    return [*lines, section_table(section.frame), ""] + [x for text in section.notes for x in (text, "")]
