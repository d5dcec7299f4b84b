"""HTML primitives the sections and the HTML renderer share: sortable tables, their cells and column tooltips,
and Markdown text as plain escaped text. All text from records is escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from harness.leaderboard.analysis import conclusions
from harness.leaderboard.analysis.frames import format_value, is_missing, is_number

# The meaning of the columns that are not metrics (metrics explain themselves: their declarations' help).
COLUMN_NOTES = {
    "rank": "position by the objective (completed trials within the KL budget first)",
    "pareto": "★: on the objective-vs-KL Pareto front (no other trial is at least as good with less KL)",
    "method": "alignment method",
    "health": "warnings raised during training or evaluation",
    "step": "training step of the checkpoint shown",
    "trials": "number of completed trials",
    "train_s": "training wall time in seconds",
    "train_s_mean": "mean training wall time in seconds",
    "peak_mem_mb": "peak memory in MB (GPU when used, else process RSS)",
    "peak_mem_mb_max": "largest peak memory in MB",
    "models": "models held in memory while training (policy, reference, ...)",
    "models_in_memory": "models held in memory while training (policy, reference, ...)",
    "n_seeds": "number of seeds run with this setting",
    "objective_mean": "mean of the objective over seeds",
    "kl_ci95": "half-width of the 95% confidence interval of kl_mean, evaluation noise included",
    **conclusions.NOTES,
}


def plain(text: str) -> str:
    """Markdown text as escaped HTML text: its code marks (backticks) and bold marks (``**``) dropped."""
    return html.escape(text.replace("`", "").replace("**", ""))


def note(text: str) -> str:
    """A muted paragraph under a table ('' for no text), from Markdown text."""
    return f'<p class="muted">{plain(text)}</p>' if text else ""


def _cell(column: str, value: Any, kl_budget: float | None, colors: Mapping[str, str]) -> str:
    if column == "pareto":
        on = bool(value) if not is_missing(value) else False
        return f'<td class="star" data-sort="{int(on)}">{"★" if on else ""}</td>'
    if column == "method" and not is_missing(value):
        color = colors.get(str(value), "#888888")
        return f'<td><span class="swatch" style="background:{color}"></span>{html.escape(str(value))}</td>'
    if column == "health" and not is_missing(value) and str(value).strip():
        flags = [f.strip() for f in str(value).split(",") if f.strip()]
        badges = "".join(f'<span class="flag">{html.escape(f)}</span>' for f in flags)
        return f'<td data-sort="{html.escape(", ".join(flags))}">{badges}</td>'
    if column == "overrides":
        return f"<td><code>{html.escape(format_value(value))}</code></td>"
    if is_number(value) and not is_missing(value):
        classes = ["num"]
        if column in ("kl", "kl_mean") and kl_budget is not None and float(value) > kl_budget:
            classes.append("over")
        return (
            f'<td class="{" ".join(classes)}" data-sort="'
            f'{float(value)!r}">{html.escape(format_value(value))}</td>'
        )
    text = format_value(value)
    wrap = ' class="wrap"' if column == "reason" else ""
    return f'<td{wrap} data-sort="{html.escape(text)}">{html.escape(text)}</td>'


def html_table(
    df: pd.DataFrame,
    table_id: str,
    kl_budget: float | None = None,
    colors: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
) -> str:
    """``df`` as a sortable ``<table>`` (escaped; numbers right-aligned with their raw value in
    ``data-sort``; Pareto rows and KL over the budget marked); an "empty" note when ``df`` has no rows."""
    if df.empty:
        return '<p class="muted">(none)</p>'
    colors = colors or {}
    notes = {**COLUMN_NOTES, **(notes or {})}
    head = "".join(
        f'<th scope="col" title="{html.escape(notes.get(str(c), str(c)))}">{html.escape(str(c))}</th>'
        for c in df.columns
    )
    rows = []
    for record in df.to_dict("records"):
        classes = []
        if "pareto" in record and not is_missing(record["pareto"]) and bool(record["pareto"]):
            classes.append("pareto")
        attr = f' class="{" ".join(classes)}"' if classes else ""
        cells = "".join(_cell(str(c), record[c], kl_budget, colors) for c in df.columns)
        rows.append(f"<tr{attr}>{cells}</tr>")
    return (
        f'<div class="scroll"><table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
