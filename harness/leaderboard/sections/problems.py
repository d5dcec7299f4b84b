"""The report's first lines when something went wrong that the tables cannot show: the objective has no value
in any trial (:attr:`harness.leaderboard.board.Leaderboard.problem`), and the metrics evaluators withheld,
per trial, with their reasons (``unusable (31/32 verdicts unusable: ...)``), so that a missing value is never
read as a result.

``data``: ``problem`` (the sentence, or None) and ``withheld`` (rows of
:func:`harness.leaderboard.analysis.problems.withheld`: trial_id, step, column, metric, reason).
"""

from __future__ import annotations

import html

from harness.leaderboard.analysis import problems
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Page, Section

SHOWN = 10  # withheld metrics listed one by one; the rest are counted


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The banner, when the objective has no value or a metric was withheld in some trial."""
    if board.groups:
        return None
    rows = problems.withheld(board.records, board.declarations)
    if board.problem is None and not rows:
        return None
    data = {"problem": board.problem, "withheld": rows}
    return Section("problems", None, data=data, markdown=markdown, html=to_html)


def _item(row: dict[str, object]) -> str:
    return f"{row['column']} in {row['trial_id']} (step {row['step']}): {row['reason']}"


def _withheld_items(rows: list[dict[str, object]]) -> tuple[list[str], str]:
    """Each withheld metric in one line (the first :data:`SHOWN`), and the count of the rest ('' if none)."""
    more = f"and {len(rows) - SHOWN} more (each checkpoint's withheld_metrics in its trial.json)"
    return [_item(r) for r in rows[:SHOWN]], (more if len(rows) > SHOWN else "")


def markdown(section: Section) -> list[str]:
    """The problem as a quoted paragraph, then the withheld metrics as a list."""
    lines = [f"> **Problem**: {section.data['problem']}", ""] if section.data["problem"] else []
    items, more = _withheld_items(section.data["withheld"])
    if items:
        lines += ["**Withheld metrics** (no value that means anything; not ranked as one):", ""]
        lines += [f"- {item}" for item in items] + ([f"- {more}"] if more else []) + [""]
    return lines


def to_html(section: Section, page: Page) -> str:
    """The problem and the withheld metrics, as HTML."""
    out = ""
    if section.data["problem"]:
        out += f'<p class="problem"><b>Problem</b>: {html.escape(str(section.data["problem"]))}</p>'
    items, more = _withheld_items(section.data["withheld"])
    if items:
        lis = "".join(f"<li>{html.escape(i)}</li>" for i in [*items, *([more] if more else [])])
        out += f'<p class="problem"><b>Withheld metrics</b> (no value that means anything):</p><ul>{lis}</ul>'
    return out
