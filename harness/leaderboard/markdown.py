"""The leaderboard as Markdown (``leaderboard.md``) and as the table printed when a multirun ends."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.leaderboard import budgets, caveats, conclusions, matched_kl
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.frames import format_value, markdown_table, markdown_text
from harness.leaderboard.selection import selection_sentence


def _table(board: Leaderboard, df: pd.DataFrame) -> str:
    shown = board.shown(df).drop(columns=["trial_id"], errors="ignore")
    if "pareto" in shown:
        shown = shown.assign(pareto=shown["pareto"].map(lambda v: "★" if v is True else ""))
    return markdown_table(shown)


AUTO_ORDER = "the gold reward, else a reward model's score, else a judge's win rate, else preference accuracy"
NO_OBJECTIVE_FIX = (
    "set eval.reward_model.name_or_path=<dir>, add eval.extra=[judge], or name a metric with "
    "leaderboard.objective=<metric>"
)


def objective_lines(board: Leaderboard, brief: bool = False) -> list[str]:
    """The report's first lines: which metric ranks the trials (and why that one), and the reference model's
    value of it with its standard error: the bar to beat. ``brief``: one plain line for the terminal."""
    if brief:
        return [_brief_objective(board)]
    if board.objective_name is None:
        return [
            f"**No objective**: no metric that ranks trials was measured ({AUTO_ORDER}), so the trials are "
            f"listed unranked; {NO_OBJECTIVE_FIX}."
        ]
    better = "lower" if board.objective_direction == "minimize" else "higher"
    meaning = board.objective_help()
    why = (
        f"chosen by `leaderboard.objective=auto`: the first measured of {AUTO_ORDER}"
        if board.objective_auto
        else "as named (`leaderboard.objective`, or the Optuna study's objective)"
    )
    line = f"**Objective: `{board.objective_name}`** ({meaning + '; ' if meaning else ''}{better} is better), {why}."
    value, se = board.baseline()
    if value is None:
        return [line, "", "Reference (untrained) model: not evaluated on this objective."]
    spread = f" ± {format_value(se)} (standard error)" if se is not None else ""
    return [
        line,
        "",
        f"**Reference (untrained) model: {format_value(value)}{spread}**, the bar to beat "
        f"(`{board.base_column}`).",
    ]


def _brief_objective(board: Leaderboard) -> str:
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
    return f"Objective: {board.objective_name} ({better} is better{', auto' if board.objective_auto else ''}){base}."


def _intro(board: Leaderboard, n_done: int, prompts: int | None) -> str:
    """What the tables show: how trials are ranked, on how many prompts, what the marks mean."""
    head = f"{len(board.trials)} trials ({n_done} completed)."
    if board.objective_name is None:
        return head
    budget = (
        f"within a KL budget of {board.kl_budget:g} nats" if board.kl_budget is not None else "(no KL budget)"
    )
    chosen = selection_sentence(board.records)
    return (
        f"{head} Each trial is shown at its best checkpoint by **{board.objective_name}** {budget} (a trial with "
        f"none inside the budget keeps its final checkpoint and ranks after the others), on "
        f"{prompts if prompts is not None else '?'} held-out prompts.{' ' + chosen if chosen else ''} "
        "`kl` is KL(policy || reference) in nats per "
        "sequence; `*_se` columns are standard errors; ★ marks the Pareto front (no other trial is as good at a "
        "lower KL); `health` lists flags raised at any checkpoint. The columns are explained under **Columns**."
    )


def column_lines(board: Leaderboard) -> list[str]:
    """A glossary of the metric columns the tables show (each metric's declared meaning)."""
    shown = board.shown(board.completed).columns if not board.completed.empty else []
    notes = board.notes()
    items = [f"- `{c}`: {notes[c]}" for c in shown if c in notes]
    return ["## Columns", "", *items, ""] if items else []


def to_markdown(board: Leaderboard, plots: Sequence[str] = ()) -> str:
    """The leaderboard as Markdown: ranked trials, per-method best, seeds, cost, failures, plots, reproduce."""
    lines = [f"# Leaderboard: {markdown_text(board.title)}", ""]
    if board.groups:
        return "\n".join([*lines, *incompatible_lines(board), ""])
    df = board.trials
    if df.empty:
        return "\n".join([*lines, "No trial records found.", ""])
    n_done = int((df["status"] == "completed").sum())
    prompts = df["eval_prompts"].dropna()
    lines += [
        *objective_lines(board),
        "",
        _intro(board, n_done, int(prompts.iloc[0]) if len(prompts) else None),
        "",
    ]
    if not board.method_summary.empty:
        lines += [
            "## Methods",
            "",
            markdown_text(board.verdict),
            "",
            markdown_table(conclusions.shown(board.method_summary)),
            "",
            conclusions.explanation(board.objective_name, board.objective_se_column()),
            "",
            "## Ranked trials",
            "",
        ]
    if not board.completed.empty:
        lines += [_table(board, board.completed), ""] + [x for note in board.table_notes for x in (note, "")]
    if len(board.methods) > 1:
        lines += ["## Best per method", "", _table(board, board.methods), ""]
    lines += matched_kl.markdown_lines(board.matched_kl, board.objective_name)
    lines += caveats.markdown_lines(board.no_effect)
    if not board.seeds.empty:
        lines += [
            "## Over seeds",
            "",
            f"Mean and 95% confidence interval over the non-diverged seeds of "
            f"**{board.objective_name}** and KL, each trial's standard error added to the spread over seeds; "
            "`diverged` counts the seeds left out; `p_vs_best` is a Welch-type t-test against rank 1, `p_holm` "
            "its Holm adjustment over all comparisons, and `same_as_best` marks settings whose difference from "
            "the best is not significant after it (p_holm >= 0.05).",
            "",
            markdown_table(board.seeds),
            "",
        ]
    if not board.settings.empty:
        lines += [
            "## Method settings",
            "",
            "Each method's hyperparameters that are the same in all its trials (the "
            "swept ones are columns of the tables above), and, where its plugin states it, the loss its trainer "
            "computes (`loss`: what is summed, what is averaged per token, what an NLL term covers):",
            "",
            markdown_table(board.settings),
            "",
        ]
    lines += optuna_lines(board)
    if not board.cost.empty:
        lines += budgets.markdown_lines(board.cost, board.budget_note)
    others = df[df["status"] != "completed"]
    if not others.empty:
        lines += ["## Failed, pruned and interrupted trials", ""]
        for _, row in others.iterrows():
            said = "at step" in str(row["reason"] or "")  # a pruner's reason names its step
            step = (
                f" at step {format_value(row.get('step'))}"
                if row["status"] == "pruned" and not said and format_value(row.get("step"))
                else ""
            )
            reason = markdown_text(row["reason"] or "no reason recorded")
            lines.append(
                f"- **{markdown_text(row['method'])}** ({row['status']}{step}): {reason}"
                f"  \n  `{row['overrides']}`"
            )
        lines.append("")
    lines += column_lines(board)
    if not board.samples.empty:
        lines += [
            "## Samples",
            "",
            "What each trial writes next to the reference model, on the first held-out prompts: "
            "`samples.csv` (every evaluated checkpoint) and the **Samples** section of `leaderboard.html`.",
            "",
        ]
    if plots:
        lines += ["## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots], ""]
    lines += ["## Reproduce", "", "Each trial's exact overrides:", ""]
    for _, row in df.iterrows():
        lines.append(
            f"- rank {format_value(row['rank']) or '-'} {markdown_text(row['method'])}: "
            f"`python -m harness {row['overrides']}`"
        )
    lines.append("")
    return "\n".join(lines)


def optuna_lines(board: Leaderboard) -> list[str]:
    """Markdown lines for the Optuna studies behind the board: trial counts and parameter importances."""
    from harness.sweep.study import goal_text

    if not board.studies:
        return []
    from harness.sweep.collect import missing_text
    from harness.sweep.storage import dashboard_form

    lines = ["## Optuna study", ""]
    for info in board.studies:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(info["counts"].items()))
        goal = goal_text(info["objectives"], info["directions"])
        lines += [
            f"- `{info['study']}` in `{info['storage']}` ({goal}): {counts}. Open it with "
            f"`optuna-dashboard {dashboard_form(info['storage'])}`."
        ]
        if info.get("missing"):
            lines += [f"  - **Warning:** {missing_text(info)}"]
        if info.get("remote"):
            lines += [
                "  - Trials whose directories (checkpoints, samples) are not on this machine; their records "
                "were read from the study's storage:"
            ]
            lines += [f"    - `{r['trial']}`: {r['host']}:`{r['dir']}`" for r in info["remote"]]
    from harness.sweep.results import importance_table

    table = importance_table(board.importances)
    if not table.empty:
        lines += [
            "",
            "Parameter importances (Optuna's fANOVA over completed trials, per method; each column sums "
            "to 1; a blank: the method has no such parameter):",
            "",
            markdown_table(table),
        ]
    return [*lines, ""]


def incompatible_lines(board: Leaderboard) -> list[str]:
    """Markdown lines explaining why records from several setups were not merged."""
    g = board.groups
    lines = [
        f"These {len(board.records)} trial records come from {len(g['counts'])} different setups (model, data "
        "or evaluation settings), so they are not ranked together. Rebuild the leaderboard from the "
        "directories of one setup at a time.",
        "",
        "Settings that differ (one value per setup):",
        "",
    ]
    lines += [f"- `{key}`: {', '.join(repr(v) for v in values)}" for key, values in g["differ"].items()]
    lines += ["", "Setups:", ""]
    lines += [
        f"- `{key}`: {count} trials ({', '.join(g['trials'][key][:5])}{' ...' if count > 5 else ''})"
        for key, count in g["counts"].items()
    ]
    return lines


def console_table(board: Leaderboard) -> str:
    """A compact text table for the terminal, under the objective and its baseline."""
    if board.groups:
        return "\n".join(incompatible_lines(board))
    if board.trials.empty:
        return "(no trial records)"
    return f"{objective_lines(board, brief=True)[0]}\n\n{_table(board, board.trials)}"
