"""The Failed, pruned and interrupted trials section: each trial that did not complete, with its reason (a
table in HTML; in Markdown one item each, with the trial's overrides).

``data``: ``trials`` (one dict per trial: every column of the trials table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.leaderboard.analysis.frames import format_value
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.markdown_parts import markdown_code, markdown_text
from harness.leaderboard.sections.base import Figures, Section, flat, ranked, split


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some trial did not complete."""
    if not ranked(board):
        return None
    _, others = split(flat(board.trials))
    if others.empty:
        return None
    shown = [c for c in ("method", "status", "reason", *board.swept, "trial_id") if c in others.columns]
    return Section(
        "failed",
        "Failed, pruned and interrupted trials",
        frame=others[shown].dropna(axis=1, how="all"),
        data={"trials": others.to_dict("records")},
        markdown=markdown,
    )


def _item(row: Mapping[str, Any]) -> str:
    said = "at step" in str(row["reason"] or "")  # a pruner's reason names its step
    step = (
        f" at step {format_value(row.get('step'))}"
        if row["status"] == "pruned" and not said and format_value(row.get("step"))
        else ""
    )
    reason = markdown_text(row["reason"] or "no reason recorded")
    head = f"- **{markdown_text(row['method'])}** ({markdown_text(row['status'])}{step}): {reason}"
    return f"{head}  \n  {markdown_code(row['overrides'])}"


def markdown(section: Section) -> list[str]:
    """One item per trial: its method, status (and the step a pruned trial stopped at),
    reason and overrides."""
    return [f"## {section.title}", "", *map(_item, section.data["trials"]), ""]
