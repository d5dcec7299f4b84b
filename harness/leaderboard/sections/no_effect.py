"""The Parameters that changed nothing section: swept values of one method that gave the same run
(:func:`harness.leaderboard.analysis.caveats.find_no_effect`), one line each.

``data``: ``findings`` (one dict per group: ``method`` and ``note``, the sentence).
"""

from __future__ import annotations

import html

from harness.leaderboard.analysis import caveats
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Page, Section, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some swept values gave the same run."""
    if not ranked(board):
        return None
    findings = board.no_effect
    if findings.empty:
        return None
    return Section(
        "no_effect",
        "Parameters that changed nothing",
        caption="Trials of one method that differ in a single hyperparameter (same "
        "seed) but gave the same run at every evaluated checkpoint are one result, not "
        f"several (their rows are flagged `{caveats.FLAG}`):",
        data={"findings": findings.to_dict("records")},
        markdown=markdown,
        html=to_html,
    )


def markdown(section: Section) -> list[str]:
    """The heading, the caption and one item per finding."""
    items = [f"- **{r['method']}**: {r['note']}." for r in section.data["findings"]]
    return [f"## {section.title}", "", section.caption, "", *items, ""]


def to_html(section: Section, page: Page) -> str:
    """What the findings are, and one item per finding."""
    items = "".join(
        f"<li><b>{html.escape(str(r['method']))}</b>: {html.escape(str(r['note']))}.</li>"
        for r in section.data["findings"]
    )
    return (
        "<p>Trials of one method that differ in a single hyperparameter (same seed) "
        "but gave the same run at every evaluated checkpoint are one result, not "
        f"several (flagged {caveats.FLAG}).</p><ul>{items}</ul>"
    )
