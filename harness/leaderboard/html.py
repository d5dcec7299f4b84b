"""The leaderboard as one self-contained HTML file: tables, plots and reproduce commands, readable offline.

Everything is inline (CSS, a small table-sorting script, the plots as base64 PNGs), so the file can be mailed,
archived or opened from disk with no network. All text from records is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.leaderboard import plots as plotting
from harness.leaderboard.frames import format_value, is_missing, is_number
from harness.records import atomic_write_text

# Shown as header tooltips and in the glossary, for the columns present.
COLUMN_NOTES = {
    "rank": "position by the objective (completed trials within the KL budget first)",
    "pareto": "★: on the reward-vs-KL Pareto front (no other trial has at least as much reward with less KL)",
    "method": "alignment method",
    "gold_reward": "mean gold (true) reward of sampled completions on held-out prompts",
    "gold_se": "standard error of gold_reward",
    "rm_score": "mean score of the reward model on sampled completions",
    "kl": "KL(policy ‖ reference) in nats per sequence, estimated on sampled completions",
    "kl_se": "standard error of kl",
    "win_rate": "fraction of prompts where the policy's completion beats the reference's (gold reward)",
    "pref_acc": "fraction of held-out preference pairs the policy's implicit reward orders correctly",
    "length": "mean completion length in tokens",
    "distinct_2": "distinct bigrams / all bigrams of completions (diversity)",
    "base_gold": "gold reward of the reference (untrained) model",
    "health": "warnings raised during training or evaluation",
    "step": "training step of the checkpoint shown",
    "final": "whether the checkpoint shown is the trial's last one",
    "base_rm_score": "reward-model score of the reference (untrained) model",
    "objective": "the value trials are ranked by",
    "trials": "number of completed trials",
    "train_s": "training wall time in seconds",
    "train_s_mean": "mean training wall time in seconds",
    "peak_mem_mb": "peak memory in MB (GPU when used, else process RSS)",
    "peak_mem_mb_max": "largest peak memory in MB",
    "models": "models held in memory while training (policy, reference, ...)",
    "models_in_memory": "models held in memory while training (policy, reference, ...)",
    "n_seeds": "number of seeds run with this setting",
    "p_vs_best": "Welch t-test p-value against the best setting",
    "same_as_best": "not significantly different from the best setting (p ≥ 0.05)",
}
# Columns that are never table cells: the row marks, reasons and commands have their own places.
_HIDDEN = ("status", "reason", "overrides", "record", "eval_prompts", "within_budget", "records")
_SECTIONS = (("trials", "Ranked trials"), ("failed", "Failed and pruned trials"), ("methods", "Best per method"),
             ("seeds", "Across seeds"), ("settings", "Method settings"), ("optuna", "Optuna study"), ("cost", "Cost"), ("plots", "Plots"),
             ("reproduce", "Reproduce"))
_PLOT_CAPTIONS = {
    "frontier": "Reward against KL for every evaluated checkpoint; lines: each method's upper envelope "
                "(its reward-vs-KL frontier); dashed: the KL budget; star: the reference model.",
    "training": "Reward and KL over training, one line per trial.",
    "sensitivity": "Objective against each swept hyperparameter; lines: mean over seeds and the other swept settings, per value.",
}

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --head: #f2f4f8; --pareto: #fff7d6; --bad: #b42318; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 24px 32px 64px; max-width: 1600px; }
h1 { font-size: 24px; margin: 0 0 8px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
p.lead { max-width: 1100px; }
nav a { margin-right: 14px; color: #2456c7; text-decoration: none; }
.muted { color: var(--muted); }
.scroll { display: inline-block; max-width: 100%; overflow-x: auto; border: 1px solid var(--line);
          border-radius: 6px; vertical-align: top; }
table { border-collapse: collapse; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--head); font-weight: 600; position: relative; }
table.sortable th { cursor: pointer; user-select: none; padding-right: 20px; }
table.sortable th::after { content: "↕"; position: absolute; right: 6px; color: #a0a7b4; font-size: 11px; }
table.sortable th[aria-sort="ascending"]::after { content: "▲"; color: var(--fg); }
table.sortable th[aria-sort="descending"]::after { content: "▼"; color: var(--fg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 280px; max-width: 640px; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.pareto { background: var(--pareto) !important; }
td.star { color: #b7791f; text-align: center; }
td.over { color: var(--bad); font-weight: 600; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px;
          vertical-align: baseline; }
.flag { display: inline-block; background: #fde8e6; color: var(--bad); border: 1px solid #f4b5ae;
        border-radius: 10px; padding: 0 7px; margin-right: 4px; font-size: 12px; }
figure { margin: 16px 0 28px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); margin-top: 4px; }
ol.commands li { margin: 6px 0; }
ul.settings li { margin: 6px 0; max-width: 1100px; }
ul.settings code { white-space: normal; word-break: break-word; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f2f4f8;
       border-radius: 4px; padding: 2px 6px; user-select: all; word-break: break-all; }
.hint { display: none; }
.js .hint { display: inline; }
dl.glossary { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.glossary dt { font-weight: 600; } dl.glossary dd { margin: 0; }
"""

# Sorts a table.sortable by the clicked header: numbers numerically (cells' data-sort hold the raw values),
# text naturally, blank cells last in either direction.
JS = """
(function () {
  document.documentElement.classList.add("js");
  function key(cell) {
    var v = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v : n;
  }
  function compare(x, y) {
    if (typeof x === "number" && typeof y === "number") return x - y;
    return String(x).localeCompare(String(y), undefined, {numeric: true});
  }
  function sortBy(table, th) {
    var col = th.cellIndex;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) return (x === null) - (y === null);
      return asc ? compare(x, y) : compare(y, x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(table, th); });
    });
  });
})();
"""


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


def _cell(column: str, value: Any, kl_budget: float | None, colors: Mapping[str, str]) -> str:
    if column == "pareto":
        on = bool(value) if not is_missing(value) else False
        return f'<td class="star" data-sort="{int(on)}">{"★" if on else ""}</td>'
    if column == "method" and not is_missing(value):
        color = colors.get(str(value), "#888888")
        return (f'<td><span class="swatch" style="background:{color}"></span>'
                f"{html.escape(str(value))}</td>")
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


def html_table(df: pd.DataFrame, table_id: str, kl_budget: float | None = None,
               colors: Mapping[str, str] | None = None) -> str:
    """``df`` as a sortable ``<table>`` (escaped; numbers right-aligned with their raw value in
    ``data-sort``; Pareto rows and KL over the budget marked); an "empty" note when ``df`` has no rows."""
    if df.empty:
        return '<p class="muted">(none)</p>'
    colors = colors or {}
    head = "".join(
        f'<th scope="col" title="{html.escape(COLUMN_NOTES.get(c, c))}">{html.escape(str(c))}</th>'
        for c in df.columns)
    rows = []
    for record in df.to_dict("records"):
        classes = []
        if "pareto" in record and not is_missing(record["pareto"]) and bool(record["pareto"]):
            classes.append("pareto")
        attr = f' class="{" ".join(classes)}"' if classes else ""
        cells = "".join(_cell(str(c), record[c], kl_budget, colors) for c in df.columns)
        rows.append(f"<tr{attr}>{cells}</tr>")
    return (f'<div class="scroll"><table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _shown(df: pd.DataFrame, objective: str | None, swept: Sequence[str] = ()) -> pd.DataFrame:
    """The displayed columns of a trials-like table, without bookkeeping columns, all-empty columns and the
    ``objective`` column when it duplicates the named objective's; ordered rank, pareto, method, the swept
    hyperparameters, the objective, the other metrics, ..., trial_id."""
    if df.empty:
        return df
    hidden = set(_HIDDEN)
    if objective and objective in df.columns:
        hidden.add("objective")
    out = df.drop(columns=[c for c in df.columns if c in hidden]).dropna(axis=1, how="all")
    first = [c for c in ("rank", "pareto", "method", *swept, objective or "objective") if c in out.columns]
    last = [c for c in ("trial_id",) if c in out.columns and c not in first]
    middle = [c for c in out.columns if c not in first and c not in last]
    return out[list(dict.fromkeys([*first, *middle, *last]))]


def _split(trials: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if trials.empty or "status" not in trials.columns:
        return trials, pd.DataFrame()
    done = trials["status"] == "completed"
    return trials[done], trials[~done]


def _intro(board: Any, trials: pd.DataFrame) -> str:
    objective = getattr(board, "objective_name", None)
    budget = getattr(board, "kl_budget", None)
    done, others = _split(trials)
    prompts = trials["eval_prompts"].dropna() if "eval_prompts" in trials.columns else pd.Series(dtype=float)
    where = f" on {format_value(prompts.iloc[0])} held-out prompts" if len(prompts) else ""
    budget_text = (f"among those within the KL budget of <b>{html.escape(format_value(budget))} nats</b> "
                   "(its final checkpoint when none is)" if budget is not None else "with no KL budget")
    if objective:
        ranking = (f"Each trial is shown at its best evaluated checkpoint (column <code>step</code>): the one "
                   f"with the highest <b>{html.escape(objective)}</b> {budget_text}. Completed trials are "
                   f"ranked by that {html.escape(objective)}, higher is better, evaluated{where}.")
    else:
        ranking = "No reward metric was evaluated, so the trials are not ranked."
    return (f"<p class=\"lead\">{len(trials)} trials: {len(done)} completed, {len(others)} failed or pruned. "
            f"{ranking} <code>kl</code> is KL(policy ‖ reference) in nats per sequence (shown in red when over "
            "the budget); <code>_se</code> columns are standard errors; ★ and a yellow row mark the reward-vs-KL "
            "Pareto front; red badges are health warnings. Hover a column header for its meaning"
            "<span class=\"hint\">, click it to sort</span>.</p>")


def _glossary(columns: Sequence[str]) -> str:
    items = [(c, COLUMN_NOTES[c]) for c in dict.fromkeys(columns) if c in COLUMN_NOTES]
    items += [(c, "lm-eval benchmark score of the checkpoint") for c in dict.fromkeys(columns)
              if c.startswith("lm_eval/")]
    body = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(t)}</dd>" for c, t in items)
    return f'<details><summary>Columns</summary><dl class="glossary">{body}</dl></details>' if items else ""


def _groups(board: Any) -> str:
    groups = getattr(board, "groups", None) or {}
    if not groups:
        return ""
    counts = groups.get("counts", {})
    items = "".join(f"<li><code>{html.escape(str(k))}</code>: {html.escape(str(n))} trials</li>"
                    for k, n in counts.items())
    differ = html.escape(json.dumps(groups.get("differ", {}), indent=2, default=str))
    return ("<h2 id=\"incompatible\">Incompatible setups</h2><p>These records come from different setups "
            "(model, data or evaluation), so they are not ranked together. Build one leaderboard per setup."
            f"</p><ul>{items}</ul><details><summary>Settings that differ</summary><pre>{differ}</pre></details>")


def _settings(settings: pd.DataFrame) -> str:
    """Each method's unswept hyperparameters, one wrapped line per method (too long for a table cell)."""
    if settings.empty or "settings" not in settings.columns:
        return ""
    items = "".join(f"<li><b>{html.escape(str(row['method']))}</b>: <code>{html.escape(str(row['settings']))}</code></li>"
                    for row in settings.to_dict("records"))
    return ("<p>Each method's hyperparameters that are the same in all its trials (the swept ones are columns of the "
            f"tables above).</p><ul class=\"settings\">{items}</ul>")


def _reproduce(trials: pd.DataFrame) -> str:
    if trials.empty or "overrides" not in trials.columns:
        return '<p class="muted">(no trials)</p>'
    items = []
    for record in trials.to_dict("records"):
        rank = format_value(record.get("rank")) or "-"
        label = f"rank {rank} · {record.get('method', '?')} · {format_value(record.get('trial_id'))}"
        command = f"python -m harness {format_value(record.get('overrides'))}".rstrip()
        items.append(f'<li><span class="muted">{html.escape(label)}</span><br><code>{html.escape(command)}</code></li>')
    return ("<p>Each trial's command (its Hydra overrides); run it from the same checkout and environment."
            f"</p><ol class=\"commands\">{''.join(items)}</ol>")


def _plots(pngs: Mapping[str, bytes]) -> str:
    if not pngs:
        return '<p class="muted">(no plots: no checkpoint was evaluated)</p>'
    parts = []
    for name, data in pngs.items():
        encoded = base64.b64encode(data).decode("ascii")
        caption = html.escape(_PLOT_CAPTIONS.get(name, name))
        parts.append(f'<figure id="plot-{html.escape(name)}"><img alt="{html.escape(name)} plot" '
                     f'src="data:image/png;base64,{encoded}"><figcaption>{caption}</figcaption></figure>')
    if "sensitivity" not in pngs:
        parts.append('<p class="muted">No sensitivity plot: no hyperparameter other than the seed takes several values within a method.</p>')
    return "".join(parts)


def _optuna(board: Any, budget: float | None, colors: Mapping[str, str]) -> str:
    """The Optuna section: each study's trial counts and the parameter-importance table ('' without a study)."""
    from harness.sweep.results import importance_table
    from harness.sweep.study import goal_text

    studies = getattr(board, "studies", None) or []
    if not studies:
        return ""
    items = "".join(
        f"<li><code>{html.escape(i['study'])}</code> "
        f"({html.escape(goal_text(i['objectives'], i['directions']))}): "
        f"{html.escape(', '.join(f'{n} {s}' for s, n in sorted(i['counts'].items())))}; "
        f"<code>optuna-dashboard {html.escape(str(i['storage']))}</code></li>" for i in studies)
    table = importance_table(getattr(board, "importances", None))
    note = ("<p>Parameter importances (Optuna's fANOVA over completed trials, per method; each column sums to 1)."
            "</p>" + html_table(table, "importances", budget, colors)) if not table.empty else ""
    return f"<ul>{items}</ul>{note}"


def render_html(board: Any, plots: Mapping[str, bytes] | None = None) -> str:
    """The leaderboard ``board`` (a :class:`harness.leaderboard.Leaderboard`, or any object with its
    DataFrames) as one self-contained HTML page: explanation, ranked trials, failed and pruned trials, best
    per method, seeds (when several), cost, the plots (``plots``: PNGs from
    :func:`harness.leaderboard.plots.render_plots`, rendered here when None) and each trial's reproduce command."""
    title = str(getattr(board, "title", None) or "leaderboard")
    objective = getattr(board, "objective_name", None)
    budget = getattr(board, "kl_budget", None)
    trials = _flat(getattr(board, "trials", None))
    done, others = _split(trials)
    colors = plotting.board_colors(board)
    if plots is None:
        plots = plotting.render_plots(board) if not _flat(board.checkpoints).empty else {}
    seeds = _flat(getattr(board, "seeds", None))
    several_seeds = not seeds.empty and "n_seeds" in seeds.columns and (seeds["n_seeds"] > 1).any()
    swept = list(getattr(board, "swept", None) or [])
    shown_trials = _shown(done, objective, swept)
    failed = others[[c for c in ("method", "status", "reason", *swept, "trial_id")
                     if c in others.columns]] if not others.empty else others
    sections = {
        "trials": html_table(shown_trials, "trials", budget, colors),
        "failed": html_table(failed.dropna(axis=1, how="all"), "failed", budget, colors),
        "methods": html_table(_shown(_flat(getattr(board, "methods", None)), objective, swept), "methods", budget,
                              colors),
        "seeds": html_table(seeds, "seeds", budget, colors) if several_seeds else "",
        "settings": _settings(_flat(getattr(board, "settings", None))),
        "optuna": _optuna(board, budget, colors),
        "cost": html_table(_flat(getattr(board, "cost", None)), "cost", budget, colors),
        "plots": _plots(plots),
        "reproduce": _reproduce(trials),
    }
    if others.empty:
        sections["failed"] = ""
    nav = "".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name in _SECTIONS if sections[key])
    body = "".join(f'<h2 id="{key}">{html.escape(name)}</h2>{sections[key]}'
                   for key, name in _SECTIONS if sections[key])
    columns = [*shown_trials.columns, *_flat(getattr(board, "cost", None)).columns, *seeds.columns]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Leaderboard: {html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>Leaderboard: {html.escape(title)}</h1>{_intro(board, trials)}{_glossary(columns)}"
        f"<nav>{nav}</nav>{_groups(board)}{body}<script>{JS}</script></body></html>\n"
    )


def write_html(board: Any, path: Path | str, plots: Mapping[str, bytes] | None = None) -> Path:
    """Write :func:`render_html` of ``board`` to ``path`` atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_html(board, plots))
    return path
