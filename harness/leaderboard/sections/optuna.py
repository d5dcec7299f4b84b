"""The Optuna study section: each study behind the board (trial counts by state, how to open it in
optuna-dashboard, missing records, trials whose directories are elsewhere) and Optuna's parameter importances.

``data``: ``studies`` (:attr:`harness.leaderboard.board.Leaderboard.studies`); the table is the importances,
one column per method (:func:`harness.sweep.results.importance_table`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html_parts import html_table
from harness.leaderboard.markdown_parts import markdown_code, markdown_table, markdown_text
from harness.leaderboard.sections.base import Figures, Page, Section, ranked
from harness.sweep.collect import missing_text
from harness.sweep.results import importance_table
from harness.sweep.storage import dashboard_form
from harness.sweep.study import goal_text


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when the board comes from Optuna studies."""
    if not ranked(board) or not board.studies:
        return None
    return Section(
        "optuna",
        "Optuna study",
        frame=importance_table(board.importances),
        data={"studies": board.studies},
        markdown=markdown,
        html=to_html,
    )


def _study_lines(info: Mapping[str, Any]) -> list[str]:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(info["counts"].items()))
    goal = goal_text(info["objectives"], info["directions"])
    lines = [
        f"- {markdown_code(info['study'])} in {markdown_code(info['storage'])} ({markdown_text(goal)}): "
        f"{markdown_text(counts)}. Open it with "
        f"{markdown_code('optuna-dashboard ' + dashboard_form(info['storage']))}."
    ]
    if info.get("missing"):
        lines += [f"  - **Warning:** {missing_text(info)}"]
    if info.get("remote"):
        lines += [
            "  - Trials whose directories (checkpoints, samples) are not on this machine; their records "
            "were read from the study's storage:"
        ]
        lines += [
            f"    - {markdown_code(r['trial'])}: {markdown_text(r['host'])}:{markdown_code(r['dir'])}"
            for r in info["remote"]
        ]
    return lines


def markdown(section: Section) -> list[str]:
    """The studies as a list, then the importances table."""
    lines = [f"## {section.title}", ""]
    for info in section.data["studies"]:
        lines += _study_lines(info)
    if not section.frame.empty:
        lines += [
            "",
            "Parameter importances (Optuna's fANOVA over completed trials, per method; each column sums "
            "to 1; a blank: the method has no such parameter):",
            "",
            markdown_table(section.frame),
        ]
    return [*lines, ""]


def _whereabouts(info: Mapping[str, Any]) -> str:
    """A study's missing records (a warning) and the trials whose directories are not on this
    machine (HTML)."""
    parts = []
    if info.get("missing"):
        parts.append(f'<p class="warn"><strong>Warning:</strong> {html.escape(missing_text(info))}</p>')
    if info.get("remote"):
        rows = "".join(
            f"<li><code>{html.escape(str(r['trial']))}</code>: {html.escape(str(r['host']))}:"
            f"<code>{html.escape(str(r['dir']))}</code></li>"
            for r in info["remote"]
        )
        parts.append(
            "<p>Trials whose directories (checkpoints, samples) are not on this machine; their records were "
            f"read from the study's storage:</p><ul>{rows}</ul>"
        )
    return "".join(parts)


def to_html(section: Section, page: Page) -> str:
    """The studies as a list, then the importances table."""
    items = "".join(
        f"<li><code>{html.escape(i['study'])}</code> in <code>{html.escape(str(i['storage']))}</code> "
        f"({html.escape(goal_text(i['objectives'], i['directions']))}): "
        f"{html.escape(', '.join(f'{n} {s}' for s, n in sorted(i['counts'].items())))}; <code>"
        f"optuna-dashboard {html.escape(dashboard_form(str(i['storage'])))}</code>{_whereabouts(i)}</li>"
        for i in section.data["studies"]
    )
    table = section.frame
    note = (
        "<p>Parameter importances (Optuna's fANOVA over completed trials, per method; each column sums to 1)."
        "</p>" + html_table(table, "importances", page.kl_budget, page.colors)
        if not table.empty
        else ""
    )
    return f"<ul>{items}</ul>{note}"
