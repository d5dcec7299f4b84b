"""The report of records from several setups (model, data or evaluation settings), which are never ranked
together: the settings that differ and the setups, instead of every other section.

``data``: ``groups`` (:attr:`harness.leaderboard.board.Leaderboard.groups`) and ``records`` (their count).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.markdown_parts import markdown_code, markdown_text
from harness.leaderboard.sections.base import Figures, Page, Section


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section when the board's records come from several setups."""
    if not board.groups:
        return None
    data = {"groups": board.groups, "records": len(board.records)}
    return Section("incompatible", None, data=data, markdown=markdown, html=to_html)


def incompatible_lines(groups: Mapping[str, Any], records: int) -> list[str]:
    """Markdown lines explaining why records from several setups were not merged."""
    lines = [
        f"These {records} trial records come from {len(groups['counts'])} different setups (model, data "
        "or evaluation settings), so they are not ranked together. Rebuild the leaderboard from the "
        "directories of one setup at a time.",
        "",
        "Settings that differ (one value per setup):",
        "",
    ]
    lines += [
        f"- {markdown_code(key)}: {markdown_text(', '.join(repr(v) for v in values))}"
        for key, values in groups["differ"].items()
    ]
    lines += ["", "Setups:", ""]
    lines += [
        f"- {markdown_code(key)}: {count} trials "
        f"({markdown_text(', '.join(groups['trials'][key][:5]))}{' ...' if count > 5 else ''})"
        for key, count in groups["counts"].items()
    ]
    return lines


def markdown(section: Section) -> list[str]:
    """The explanation, the settings that differ and the setups, as Markdown."""
    return [*incompatible_lines(section.data["groups"], section.data["records"]), ""]


def to_html(section: Section, page: Page) -> str:
    """The explanation, each setup's trial count and the settings that differ, as HTML."""
    groups = section.data["groups"]
    items = "".join(
        f"<li><code>{html.escape(str(k))}</code>: {html.escape(str(n))} trials</li>"
        for k, n in groups.get("counts", {}).items()
    )
    differ = html.escape(json.dumps(groups.get("differ", {}), indent=2, default=str))
    return (
        "<p>These records come from different setups "
        "(model, data or evaluation), so they are not ranked together. Build one leaderboard per setup."
        f"</p><ul>{items}</ul><details><summary>Settings that differ</summary><pre>{differ}</pre></details>"
    )
