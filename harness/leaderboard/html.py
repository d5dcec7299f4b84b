"""The leaderboard as one self-contained HTML file: tables, plots and reproduce commands, readable offline.

Everything is inline (CSS, a small table-sorting script, the plots as base64 PNGs), so the file can be mailed,
archived or opened from disk with no network. All text from records is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from harness.leaderboard import budgets, caveats, conclusions, matched_kl
from harness.leaderboard import plots as plotting
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.frames import format_value, is_missing, is_number
from harness.leaderboard.samples_html import samples_section
from harness.leaderboard.selection import selection_sentence
from harness.records import atomic_write_text

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
_SECTIONS = (
    ("conclusions", "Methods"),
    ("trials", "Ranked trials"),
    ("failed", "Failed, pruned and interrupted trials"),
    ("methods", "Best per method"),
    ("matched_kl", "Reward at matched KL"),
    ("no_effect", "Parameters that changed nothing"),
    ("seeds", "Across seeds"),
    ("settings", "Method settings"),
    ("optuna", "Optuna study"),
    ("cost", "Cost"),
    ("plots", "Plots"),
    ("samples", "Samples"),
    ("reproduce", "Reproduce"),
)
_PLOT_CAPTIONS = {
    "frontier": "Reward against KL for every evaluated checkpoint; lines: each method's upper envelope "
    "(its reward-vs-KL frontier); dashed: the KL budget; star: the reference model.",
    "training": "Reward and KL over training, one line per trial.",
    "sensitivity": "Objective against each swept hyperparameter; lines: median over seeds and the other swept settings, per value.",
}


def _flat(df: pd.DataFrame | None) -> pd.DataFrame:
    """``df`` with a plain column list (MultiIndex columns joined by spaces) and its index as columns when
    it is not a plain range; an empty frame for None."""
    if df is None:
        return pd.DataFrame()
    out = df.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" ".join(str(p) for p in col if str(p)) for col in out.columns]
    if not isinstance(out.index, pd.RangeIndex):
        out = out.reset_index()
    return out


def _static(name: str) -> str:
    """A file of ``harness/leaderboard/static`` (the page's CSS and script), read from the installed package."""
    return files("harness.leaderboard").joinpath("static", name).read_text(encoding="utf-8")


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
        return f'<td class="{" ".join(classes)}" data-sort="{float(value)!r}">{html.escape(format_value(value))}</td>'
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


def _split(trials: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if trials.empty or "status" not in trials.columns:
        return trials, pd.DataFrame()
    done = trials["status"] == "completed"
    return trials[done], trials[~done]


def _objective(board: Any) -> str:
    """The first lines: the objective (and why that one), the reference model's value of it ± its standard error."""
    from harness.leaderboard.markdown import AUTO_ORDER, NO_OBJECTIVE_FIX

    objective = getattr(board, "objective_name", None)
    if not objective:
        return (
            f'<p class="objective"><b>No objective</b>: no metric that ranks trials was measured '
            f"({html.escape(AUTO_ORDER)}), so the trials are listed unranked; {html.escape(NO_OBJECTIVE_FIX)}.</p>"
        )
    better = "lower" if board.objective_direction == "minimize" else "higher"
    meaning = board.objective_help()
    why = (
        f"chosen by <code>leaderboard.objective=auto</code>: the first measured of {html.escape(AUTO_ORDER)}"
        if board.objective_auto
        else "as named (<code>leaderboard.objective</code>, or the Optuna study's objective)"
    )
    value, se = board.baseline()
    base = (
        "The reference (untrained) model was not evaluated on it"
        if value is None
        else f"Reference (untrained) model: <b>{html.escape(format_value(value))}"
        f"{' ± ' + html.escape(format_value(se)) if se is not None else ''}</b>"
        f"{' (standard error)' if se is not None else ''}, the bar to beat"
    )
    return (
        f'<p class="objective">Objective: <b>{html.escape(objective)}</b> '
        f"({html.escape(meaning + '; ') if meaning else ''}{better} is better), {why}.<br>{base}.</p>"
    )


def _intro(board: Any, trials: pd.DataFrame) -> str:
    objective = getattr(board, "objective_name", None)
    budget = getattr(board, "kl_budget", None)
    done, others = _split(trials)
    prompts = trials["eval_prompts"].dropna() if "eval_prompts" in trials.columns else pd.Series(dtype=float)
    where = f" on {format_value(prompts.iloc[0])} held-out prompts" if len(prompts) else ""
    budget_text = (
        f"among those within the KL budget of <b>{html.escape(format_value(budget))} nats</b> "
        "(its final checkpoint when none is)"
        if budget is not None
        else "with no KL budget"
    )
    if objective:
        better = "lower" if getattr(board, "objective_direction", "maximize") == "minimize" else "higher"
        best = "lowest" if better == "lower" else "highest"
        ranking = (
            f"Each trial is shown at its best evaluated checkpoint (column <code>step</code>): the one "
            f"with the {best} <b>{html.escape(objective)}</b> {budget_text}. Completed trials are "
            f"ranked by that {html.escape(objective)}, {better} is better, evaluated{where}; "
            f"<code>base_{html.escape(objective)}</code> is the reference (untrained) model's value."
        )
    else:
        ranking = "No metric that ranks trials was evaluated, so the trials are not ranked."
    chosen = selection_sentence(getattr(board, "records", None) or []) if objective else ""
    ranking += f" {html.escape(chosen)}" if chosen else ""
    return (
        f'<p class="lead">{len(trials)} trials: {len(done)} completed, {len(others)} failed or pruned. '
        f"{ranking} <code>kl</code> is KL(policy ‖ reference) in nats per sequence (shown in red when over "
        "the budget); <code>_se</code> columns are standard errors; ★ and a yellow row mark the reward-vs-KL "
        "Pareto front; red badges are health warnings. Hover a column header for its meaning"
        '<span class="hint">, click it to sort</span>.</p>'
    )


def _glossary(columns: Sequence[str], notes: Mapping[str, str]) -> str:
    notes = {**COLUMN_NOTES, **notes}
    items = [(c, notes[c]) for c in dict.fromkeys(columns) if c in notes]
    body = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(t)}</dd>" for c, t in items)
    return f'<details><summary>Columns</summary><dl class="glossary">{body}</dl></details>' if items else ""


def _groups(board: Any) -> str:
    groups = getattr(board, "groups", None) or {}
    if not groups:
        return ""
    counts = groups.get("counts", {})
    items = "".join(
        f"<li><code>{html.escape(str(k))}</code>: {html.escape(str(n))} trials</li>"
        for k, n in counts.items()
    )
    differ = html.escape(json.dumps(groups.get("differ", {}), indent=2, default=str))
    return (
        '<h2 id="incompatible">Incompatible setups</h2><p>These records come from different setups '
        "(model, data or evaluation), so they are not ranked together. Build one leaderboard per setup."
        f"</p><ul>{items}</ul><details><summary>Settings that differ</summary><pre>{differ}</pre></details>"
    )


def _note(text: str) -> str:
    """A muted paragraph under a table ('' for no text); Markdown code marks dropped."""
    return f'<p class="muted">{html.escape(text.replace("`", ""))}</p>' if text else ""


def _settings(settings: pd.DataFrame) -> str:
    """Each method's unswept hyperparameters, one wrapped line per method (too long for a table cell)."""
    if settings.empty or "settings" not in settings.columns:
        return ""
    items = "".join(
        f"<li><b>{html.escape(str(row['method']))}</b>: <code>{html.escape(str(row['settings']))}</code>"
        + (f'<br><span class="muted">loss: {html.escape(str(row["loss"]))}</span>' if row.get("loss") else "")
        + "</li>"
        for row in settings.to_dict("records")
    )
    return (
        "<p>Each method's hyperparameters that are the same in all its trials (the swept ones are columns of the "
        "tables above), and, where its plugin states it, the loss its trainer computes (what is summed, what is "
        f'averaged per token, what an NLL term covers).</p><ul class="settings">{items}</ul>'
    )


def _matched_kl(board: Any, budget: float | None, colors: Mapping[str, str]) -> str:
    """The objective on each method's frontier at common KL values ('' without it)."""
    table = getattr(board, "matched_kl", None)
    if table is None or table.empty:
        return ""
    text = matched_kl.explanation(table, board.objective_name).replace("`", "").replace("**", "")
    return f"<p>{html.escape(text)}</p>{html_table(table, 'matched_kl', budget, colors, matched_kl.NOTES)}"


def _no_effect(board: Any) -> str:
    """Swept values that gave the same run, one line each ('' when there are none)."""
    findings = getattr(board, "no_effect", None)
    if findings is None or findings.empty:
        return ""
    items = "".join(
        f"<li><b>{html.escape(str(r['method']))}</b>: {html.escape(str(r['note']))}.</li>"
        for r in findings.to_dict("records")
    )
    return (
        "<p>Trials of one method that differ in a single hyperparameter (same seed) but gave the same run at every "
        f"evaluated checkpoint are one result, not several (flagged {caveats.FLAG}).</p><ul>{items}</ul>"
    )


def _cost(board: Any, budget: float | None, colors: Mapping[str, str]) -> str:
    """The cost table, with the budget note when the methods' budgets differ."""
    note = getattr(board, "budget_note", None)
    lead = f'<p class="objective"><b>Note:</b> {html.escape(note)}</p>' if note else ""
    return lead + html_table(_flat(board.cost), "cost", budget, colors, budgets.NOTES)


def _reproduce(trials: pd.DataFrame) -> str:
    if trials.empty or "overrides" not in trials.columns:
        return '<p class="muted">(no trials)</p>'
    items = []
    for record in trials.to_dict("records"):
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


def _plots(pngs: Mapping[str, bytes]) -> str:
    if not pngs:
        return '<p class="muted">(no plots: no checkpoint was evaluated)</p>'
    parts = []
    for name, data in pngs.items():
        encoded = base64.b64encode(data).decode("ascii")
        caption = html.escape(_PLOT_CAPTIONS.get(name, name))
        parts.append(
            f'<figure id="plot-{html.escape(name)}"><img alt="{html.escape(name)} plot" '
            f'src="data:image/png;base64,{encoded}"><figcaption>{caption}</figcaption></figure>'
        )
    if "sensitivity" not in pngs:
        parts.append(
            '<p class="muted">No sensitivity plot: no hyperparameter other than the seed takes several values within a method.</p>'
        )
    return "".join(parts)


def _optuna(board: Any, budget: float | None, colors: Mapping[str, str]) -> str:
    """The Optuna section: each study's trial counts and the parameter-importance table ('' without a study)."""
    from harness.sweep.results import importance_table
    from harness.sweep.storage import dashboard_form
    from harness.sweep.study import goal_text

    studies = getattr(board, "studies", None) or []
    if not studies:
        return ""
    items = "".join(
        f"<li><code>{html.escape(i['study'])}</code> in <code>{html.escape(str(i['storage']))}</code> "
        f"({html.escape(goal_text(i['objectives'], i['directions']))}): "
        f"{html.escape(', '.join(f'{n} {s}' for s, n in sorted(i['counts'].items())))}; "
        f"<code>optuna-dashboard {html.escape(dashboard_form(str(i['storage'])))}</code>{_whereabouts(i)}</li>"
        for i in studies
    )
    table = importance_table(getattr(board, "importances", None))
    note = (
        (
            "<p>Parameter importances (Optuna's fANOVA over completed trials, per method; each column sums to 1)."
            "</p>" + html_table(table, "importances", budget, colors)
        )
        if not table.empty
        else ""
    )
    return f"<ul>{items}</ul>{note}"


def _whereabouts(info: Mapping[str, Any]) -> str:
    """A study's missing records (a warning) and the trials whose directories are not on this machine (HTML)."""
    from harness.sweep.collect import missing_text

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


def _conclusions(
    board: Any, budget: float | None, colors: Mapping[str, str], notes: Mapping[str, str]
) -> str:
    """The Methods section: the verdict sentence and each method at its best setting ('' without seeds)."""
    summary = _flat(getattr(board, "method_summary", None))
    if summary.empty:
        return ""
    explanation = conclusions.explanation(board.objective_name, board.objective_se_column())
    return (
        f'<p class="lead">{html.escape(board.verdict)}</p>'
        f"{html_table(conclusions.shown(summary), 'conclusions', budget, colors, notes)}"
        f'<p class="muted">{html.escape(explanation.replace("`", "").replace("**", ""))}</p>'
    )


def render_html(board: Leaderboard, plots: Mapping[str, bytes] | None = None) -> str:
    """The leaderboard ``board`` (a :class:`harness.leaderboard.Leaderboard`, or any object with its
    DataFrames) as one self-contained HTML page: explanation, ranked trials, failed and pruned trials, best
    per method, seeds (when several), cost, the plots (``plots``: PNGs from
    :func:`harness.leaderboard.plots.render_plots`, rendered here when None), readable samples
    (:mod:`harness.leaderboard.samples_html`) and each trial's reproduce command."""
    title = board.title or "leaderboard"
    budget = board.kl_budget
    trials = _flat(board.trials)
    done, others = _split(trials)
    colors = plotting.board_colors(board)
    if plots is None:
        plots = plotting.render_plots(board) if not _flat(board.checkpoints).empty else {}
    seeds = _flat(board.seeds)
    several_seeds = not seeds.empty and "n_seeds" in seeds.columns and (seeds["n_seeds"] > 1).any()
    swept = list(board.swept)
    notes = board.notes()
    shown_trials = board.shown(done)
    failed = (
        others[[c for c in ("method", "status", "reason", *swept, "trial_id") if c in others.columns]]
        if not others.empty
        else others
    )
    sections = {
        "conclusions": _conclusions(board, budget, colors, notes),
        "trials": html_table(shown_trials, "trials", budget, colors, notes)
        + "".join(map(_note, board.table_notes)),
        "failed": html_table(failed.dropna(axis=1, how="all"), "failed", budget, colors, notes),
        "methods": html_table(board.shown(_flat(board.methods)), "methods", budget, colors, notes),
        "matched_kl": _matched_kl(board, budget, colors),
        "no_effect": _no_effect(board),
        "seeds": html_table(seeds, "seeds", budget, colors, notes) if several_seeds else "",
        "settings": _settings(_flat(board.settings)),
        "optuna": _optuna(board, budget, colors),
        "cost": _cost(board, budget, colors),
        "plots": _plots(plots),
        "samples": samples_section(board, colors),
        "reproduce": _reproduce(trials),
    }
    if others.empty:
        sections["failed"] = ""
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name in _SECTIONS if sections[key])
    body = "".join(
        f'<h2 id="{key}">{html.escape(name)}</h2>{sections[key]}' for key, name in _SECTIONS if sections[key]
    )
    columns = [
        *conclusions.shown(_flat(getattr(board, "method_summary", None))).columns,
        *shown_trials.columns,
        *_flat(board.cost).columns,
        *seeds.columns,
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Leaderboard: {html.escape(title)}</title><style>{_static('report.css')}</style></head><body>"
        f"<h1>Leaderboard: {html.escape(title)}</h1>{_objective(board)}{_intro(board, trials)}{_glossary(columns, notes)}"
        f"<nav>{nav}</nav>{_groups(board)}{body}<script>{_static('report.js')}</script></body></html>\n"
    )


def write_html(board: Leaderboard, path: Path | str, plots: Mapping[str, bytes] | None = None) -> Path:
    """Write :func:`render_html` of ``board`` to ``path`` atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_html(board, plots))
    return path
