"""The Compute cost per method section: measured wall time and memory, and each method's mean compute budget
(:mod:`harness.leaderboard.analysis.budgets`), with one note when the methods' budgets differ.

``data``: ``note`` (the budget note, or None).
"""

from __future__ import annotations

import html

from harness.leaderboard.analysis import budgets
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html_parts import html_table, plain
from harness.leaderboard.markdown_parts import section_table
from harness.leaderboard.sections.base import Figures, Page, Section, flat, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when a trial completed."""
    cost = flat(board.cost)
    if not ranked(board) or cost.empty:
        return None
    described = [f"`{c}`: {budgets.NOTES[c]}." for c in budgets.COLUMNS if c in cost.columns]
    return Section(
        "cost",
        "Compute cost per method",
        caption="Measured wall time and memory; each method's mean budget over its "
        "completed trials. " + " ".join(described),
        frame=cost,
        column_notes=budgets.NOTES,
        data={"note": board.budget_note},
        markdown=markdown,
        html=to_html,
    )


def markdown(section: Section) -> list[str]:
    """The caption, the budget note and the table."""
    note = section.data["note"]
    return [
        f"## {section.title}",
        "",
        section.caption,
        "",
        *([f"**Note:** {note}", ""] if note else []),
        section_table(section.frame),
        "",
    ]


def to_html(section: Section, page: Page) -> str:
    """The caption, the budget note (highlighted) and the table."""
    note = section.data["note"]
    lead = f'<p class="objective"><b>Note:</b> {html.escape(note)}</p>' if note else ""
    notes = {**page.notes, **section.column_notes}
    return (
        f"<p>{plain(section.caption)}</p>"
        f"{lead}{html_table(section.frame, section.key, page.kl_budget, page.colors, notes)}"
    )
