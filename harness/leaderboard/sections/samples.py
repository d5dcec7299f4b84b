"""The Samples section: what each trial writes next to the reference model on the first held-out prompts. The
Markdown points to ``samples.csv`` and the HTML; the HTML shows them
(:mod:`harness.leaderboard.sections.samples_html`).

``data``: ``view`` (a :class:`~harness.leaderboard.sections.samples_html.SamplesView`).
"""

from __future__ import annotations

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Page, Section, ranked
from harness.leaderboard.sections.samples_html import SamplesView, samples_section


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some checkpoint kept readable samples."""
    if not ranked(board) or board.samples.empty:
        return None
    view = SamplesView(
        board.samples, board.trials, list(board.swept), board.objective_name, board.declarations or {}
    )
    return Section(
        "samples",
        "Samples",
        caption="What each trial writes next to the reference model, on the first held-out prompts: "
        "`samples.csv` (every evaluated checkpoint) and the **Samples** section of `leaderboard.html`.",
        data={"view": view},
        html=to_html,
    )


def to_html(section: Section, page: Page) -> str:
    """Each method's best trial's samples, its other trials folded
    ('' when none is at its shown checkpoint)."""
    return samples_section(section.data["view"], page.colors)
