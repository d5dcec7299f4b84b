"""The report's opening (no heading): which metric ranks the trials and why that one, the reference model's
value of it (the bar to beat), and what the tables show (how many trials, on how many prompts, how checkpoints
were chosen, what the marks mean).

``data``: ``objective``, ``direction``, ``meaning`` (its declared help), ``auto`` (chosen by ``auto``),
``base_column``, ``value`` and ``se`` (the reference model's value and standard error), ``trials``, ``done``,
``others`` (counts), ``prompts`` (held-out prompts, or None), ``kl_budget``, ``selection`` (the sentence of
:func:`harness.leaderboard.analysis.selection.selection_sentence`), ``data`` (what the trials were trained and
evaluated on, :func:`data_sentence`), ``chat_template`` (what the chat
template did to the data, :func:`chat_template_sentence`) and ``problem`` (the board's, shown above by
:mod:`harness.leaderboard.sections.problems`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from harness.leaderboard.analysis.frames import format_value
from harness.leaderboard.analysis.selection import selection_sentence
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.markdown_parts import markdown_code
from harness.leaderboard.sections.base import Figures, Page, Section, flat, ranked, split

AUTO_ORDER = "the gold reward, else a reward model's score, else a judge's win rate, else preference accuracy"
NO_OBJECTIVE_FIX = (
    "set eval.reward_model.name_or_path=<dir>, add eval.extra=[judge], or name a metric with "
    "leaderboard.objective=<metric>"
)


def _said(label: str, texts: list[str]) -> str:
    """``label: text.`` when every trial says the same, else each text once with its count of trials."""
    counts = {text: texts.count(text) for text in dict.fromkeys(texts)}
    if len(counts) == 1:
        return f"{label}: {texts[0]}."
    return f"{label}: " + "; ".join(f"{text} ({n} trials)" for text, n in counts.items()) + "."


def chat_template_sentence(board: Leaderboard) -> str:
    """What the chat template did to the trials' data (their records' ``data.chat_template``), with the count
    of trials of each when they differ; '' when no record says, or when every trial's data was read as it is
    because its config said ``never`` (the toy world's data: nothing for a reader to check)."""
    said = [r.data.chat_template for r in board.records if r.data is not None and r.data.chat_template]
    if not said or all(text.startswith("not applied (never") for text in said):
        return ""
    return _said("Chat template", said)


def data_sentence(board: Leaderboard) -> str:
    """What the trials were trained and evaluated on (their records' ``data.source``, each name once, with
    the count of trials of each when they differ); '' when no record names its data."""
    said = [r.data.source for r in board.records if r.data is not None and r.data.source]
    return _said("Data", said) if said else ""


def facts(board: Leaderboard) -> dict[str, Any]:
    """What the opening says, computed once (see the module docstring)."""
    trials = flat(board.trials)
    done, others = split(trials)
    prompts = trials["eval_prompts"].dropna() if "eval_prompts" in trials.columns else trials.iloc[0:0]
    value, se = board.baseline()
    objective = board.objective_name
    return {
        "objective": objective,
        "direction": board.objective_direction,
        "meaning": board.objective_help(),
        "auto": board.objective_auto,
        "base_column": board.base_column,
        "value": value,
        "se": se,
        "trials": len(trials),
        "done": len(done),
        "others": len(others),
        "prompts": prompts.iloc[0] if len(prompts) else None,
        "kl_budget": board.kl_budget,
        "selection": selection_sentence(board.records) if objective else "",
        "chat_template": chat_template_sentence(board),
        "data": data_sentence(board),
        "problem": board.problem,
    }


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The opening of a report with trials."""
    if not ranked(board):
        return None
    return Section("overview", None, data=facts(board), markdown=markdown, html=to_html)


def objective_lines(data: Mapping[str, Any]) -> list[str]:
    """The objective (and why that one) and the reference model's value of it with its standard error."""
    if data["objective"] is None and data["problem"]:
        return ["**No objective** (see the problem above): the trials are listed unranked."]
    if data["objective"] is None:
        return [
            f"**No objective**: no metric that ranks trials was measured ({AUTO_ORDER}), so the trials are "
            f"listed unranked; {NO_OBJECTIVE_FIX}."
        ]
    better = "lower" if data["direction"] == "minimize" else "higher"
    meaning = data["meaning"]
    why = (
        f"chosen by `leaderboard.objective=auto`: the first measured of {AUTO_ORDER}"
        if data["auto"]
        else "as named (`leaderboard.objective`, or the Optuna study's objective)"
    )
    line = (
        f"**Objective: {markdown_code(data['objective'])}** "
        f"({meaning + '; ' if meaning else ''}{better} is better), {why}."
    )
    value, se = data["value"], data["se"]
    if value is None:
        return [line, "", "Reference (untrained) model: not evaluated on this objective."]
    spread = f" ± {format_value(se)} (standard error)" if se is not None else ""
    return [
        line,
        "",
        f"**Reference (untrained) model: {format_value(value)}{spread}**, the bar to beat "
        f"(`{data['base_column']}`).",
    ]


def brief_objective(board: Leaderboard) -> str:
    """The objective and the reference model's value of it in one plain line, for the terminal."""
    if board.objective_name is None and board.problem:
        return f"Problem: {board.problem}"
    if board.objective_name is None:
        return f"No objective: nothing that ranks trials was measured; {NO_OBJECTIVE_FIX}."
    better = "lower" if board.objective_direction == "minimize" else "higher"
    value, se = board.baseline()
    base = (
        ""
        if value is None
        else (
            f"; reference model {format_value(value)}"
            f"{f' ± {format_value(se)} (SE)' if se is not None else ''}"
        )
    )
    return (
        f"Objective: {board.objective_name} ({better} is "
        f"better{', auto' if board.objective_auto else ''}){base}."
    )


def _intro(data: Mapping[str, Any]) -> str:
    """What the tables show: how trials are ranked, on how many prompts, what the marks mean."""
    head = f"{data['trials']} trials ({data['done']} completed)."
    head += f" {data['data']}" if data.get("data") else ""
    head += f" {data['chat_template']}" if data.get("chat_template") else ""
    if data["objective"] is None:
        return head
    budget = (
        f"within a KL budget of {data['kl_budget']:g} nats"
        if data["kl_budget"] is not None
        else "(no KL budget)"
    )
    prompts = int(data["prompts"]) if data["prompts"] is not None else "?"
    chosen = data["selection"]
    return (
        f"{head} Each trial is shown at its best checkpoint by **{data['objective']}** {budget} (a "
        "trial with none inside the budget keeps its final checkpoint and ranks after the others), "
        f"on {prompts} held-out prompts.{' ' + chosen if chosen else ''} `kl` is KL(policy || "
        "reference) in nats per sequence; `*_se` columns are standard errors; ★ marks the Pareto "
        "front (no other trial is as good at a lower KL); `health` lists flags raised at any "
        "checkpoint. The columns are explained under **Columns**."
    )


def markdown(section: Section) -> list[str]:
    """The objective lines and the introduction, as Markdown."""
    return [*objective_lines(section.data), "", _intro(section.data), ""]


def _objective_html(data: Mapping[str, Any]) -> str:
    objective = data["objective"]
    if not objective and data["problem"]:
        return (
            '<p class="objective"><b>No objective</b> (see the problem above): '
            "the trials are listed unranked.</p>"
        )
    if not objective:
        return (
            f'<p class="objective"><b>No objective</b>: no metric that ranks trials was measured '
            f"({html.escape(AUTO_ORDER)}), so the trials are listed unranked; "
            f"{html.escape(NO_OBJECTIVE_FIX)}.</p>"
        )
    better = "lower" if data["direction"] == "minimize" else "higher"
    meaning = data["meaning"]
    why = (
        f"chosen by <code>leaderboard.objective=auto</code>: the first measured of {html.escape(AUTO_ORDER)}"
        if data["auto"]
        else "as named (<code>leaderboard.objective</code>, or the Optuna study's objective)"
    )
    value, se = data["value"], data["se"]
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


def _intro_html(data: Mapping[str, Any]) -> str:
    objective, budget = data["objective"], data["kl_budget"]
    where = f" on {format_value(data['prompts'])} held-out prompts" if data["prompts"] is not None else ""
    budget_text = (
        f"among those within the KL budget of <b>{html.escape(format_value(budget))} nats</b> "
        "(its final checkpoint when none is)"
        if budget is not None
        else "with no KL budget"
    )
    if objective:
        better = "lower" if data["direction"] == "minimize" else "higher"
        best = "lowest" if better == "lower" else "highest"
        ranking = (
            f"Each trial is shown at its best evaluated checkpoint (column <code>step</code>): the one "
            f"with the {best} <b>{html.escape(objective)}</b> {budget_text}. Completed trials are "
            f"ranked by that {html.escape(objective)}, {better} is better, evaluated{where}; "
            f"<code>base_{html.escape(objective)}</code> is the reference (untrained) model's value."
        )
    else:
        ranking = "No metric that ranks trials was evaluated, so the trials are not ranked."
    ranking += f" {html.escape(data['data'])}" if data.get("data") else ""
    ranking += f" {html.escape(data['selection'])}" if data["selection"] else ""
    ranking += f" {html.escape(data['chat_template'])}" if data.get("chat_template") else ""
    return (
        f'<p class="lead">{data["trials"]} trials: {data["done"]} completed, {data["others"]} failed or '
        f"pruned. {ranking} <code>kl</code> is KL(policy ‖ reference) in nats per sequence (shown in red "
        "when over the budget); <code>_se</code> columns are standard errors; ★ and a yellow row mark the "
        "reward-vs-KL Pareto front; red badges are health warnings. Hover a column header for its meaning"
        '<span class="hint">, click it to sort</span>.</p>'
    )


def to_html(section: Section, page: Page) -> str:
    """The objective and the introduction, as HTML."""
    return _objective_html(section.data) + _intro_html(section.data)
