"""The Reproduce section: each trial's command (its Hydra overrides), ranked trials first.

``data``: ``trials`` (one dict per trial: ``rank``, ``method``, ``trial_id``, ``overrides``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from harness.leaderboard.analysis.frames import format_value
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.markdown_parts import markdown_code, markdown_text
from harness.leaderboard.sections.base import Figures, Page, Section, flat, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, for a report with trials."""
    if not ranked(board):
        return None
    trials = flat(board.trials)
    return Section(
        "reproduce", "Reproduce", data={"trials": trials.to_dict("records")}, markdown=markdown, html=to_html
    )


def _markdown_item(row: Mapping[str, Any]) -> str:
    return (
        f"- rank {format_value(row['rank']) or '-'} {markdown_text(row['method'])}: "
        f"{markdown_code('python -m harness ' + str(row['overrides']))}"
    )


def markdown(section: Section) -> list[str]:
    """One item per trial: its rank, method and command."""
    return [
        f"## {section.title}",
        "",
        "Each trial's exact overrides:",
        "",
        *map(_markdown_item, section.data["trials"]),
        "",
    ]


def to_html(section: Section, page: Page) -> str:
    """An ordered list of the commands, each under its rank, method and trial id."""
    trials = section.data["trials"]
    if not trials or "overrides" not in trials[0]:
        return '<p class="muted">(no trials)</p>'
    items = []
    for record in trials:
        rank = format_value(record.get("rank")) or "-"
        label = f"rank {rank} · {record.get('method', '?')} · {format_value(record.get('trial_id'))}"
        command = f"python -m harness {format_value(record.get('overrides'))}".rstrip()
        items.append(
            f'<li><span class="muted">{html.escape(label)}</span><br><code>{html.escape(command)}</code></li>'
        )
    return (
        "<p>Each trial's command (its Hydra overrides); run it from the same checkout and environment."
        f'</p><ol class="commands">{"".join(items)}</ol>'
    )
