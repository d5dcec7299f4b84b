"""The Plots section: the reward-vs-KL frontier, the training curves and the sensitivity to each swept
hyperparameter (:mod:`harness.leaderboard.plots`). The Markdown links the PNG files; the HTML inlines them
with a caption each.

``data``: ``pngs`` (name -> PNG bytes) and ``files`` (the PNG files written).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Page, Section, ranked

CAPTIONS = {
    "frontier": "Reward against KL for every evaluated checkpoint; lines: each method's upper envelope "
    "(its reward-vs-KL frontier); dashed: the KL budget; star: the reference model.",
    "training": "Reward and KL over training, one line per trial.",
    "sensitivity": "Objective against each swept hyperparameter; lines: median "
    "over seeds and the other swept settings, per value.",
}


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when the report has figures."""
    if not ranked(board) or not (figures.pngs or figures.files):
        return None
    data = {"pngs": dict(figures.pngs), "files": list(figures.files)}
    return Section("plots", "Plots", data=data, markdown=markdown, html=to_html)


def markdown(section: Section) -> list[str]:
    """One image link per file ([] without files)."""
    files = section.data["files"]
    if not files:
        return []
    return [f"## {section.title}", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in files], ""]


def to_html(section: Section, page: Page) -> str:
    """Each figure inlined with its caption, and why there is no sensitivity plot when there is none."""
    pngs = section.data["pngs"]
    if not pngs:
        return ""
    parts = []
    for name, data in pngs.items():
        encoded = base64.b64encode(data).decode("ascii")
        caption = html.escape(CAPTIONS.get(name, name))
        parts.append(
            f'<figure id="plot-{html.escape(name)}"><img alt="{html.escape(name)} plot" '
            f'src="data:image/png;base64,{encoded}"><figcaption>{caption}</figcaption></figure>'
        )
    if "sensitivity" not in pngs:
        parts.append(
            '<p class="muted">No sensitivity plot: no hyperparameter other than the seed takes several '
            "values within a method.</p>"
        )
    return "".join(parts)
