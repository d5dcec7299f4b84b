"""The Samples section's HTML: what each method's trials write, next to the reference model, prompt by prompt.

For every method (in the order of its best trial's rank), its best trial's readable samples at the checkpoint
the ranked table shows (its ``step``) are open, and each of its other trials is a collapsed ``<details>``. A
row is one held-out prompt: the prompt, the reference model's completion and the policy's, each with its
per-sample scores (see :mod:`harness.evaluation.readable`). All text from records is escaped; line breaks are
kept by the CSS.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.leaderboard.analysis import columns
from harness.leaderboard.analysis.frames import format_value, is_missing, is_number

_FIXED = ("trial_id", "method", "step", "prompt_index", "prompt", "reference", "policy")


@dataclass(frozen=True)
class SamplesView:
    """What the Samples section shows: the readable samples, the trials table (its ``step`` is each trial's
    shown checkpoint), the swept hyperparameters and the objective (named in each trial's label), and the
    metric declarations (each score's direction)."""

    samples: pd.DataFrame
    trials: pd.DataFrame
    swept: Sequence[str]
    objective: str | None
    declared: columns.Declarations


def _text(value: Any) -> str:
    """A prompt or completion cell's content: the escaped text, or a muted note for an empty one."""
    if is_missing(value) or str(value) == "":
        return '<span class="muted">(empty)</span>'
    return html.escape(str(value))


def _same(row: Mapping[str, Any]) -> str:
    """A muted note under a policy completion identical to the reference's
    (the policy has not moved there)."""
    policy, reference = row.get("policy"), row.get("reference")
    same = not is_missing(policy) and not is_missing(reference) and str(policy) == str(reference)
    return '<div class="same">same text as the reference</div>' if same else ""


def _mark(name: str, policy: Any, reference: Any, declared: columns.Declarations) -> str:
    """▲ or ▼ after a policy score that is better or worse than the reference's, by its declared direction."""
    found = columns.declaration_of(name, declared)
    direction = found[1].get("direction") if found else None
    if (
        direction is None
        or not (is_number(policy) and is_number(reference))
        or is_missing(policy)
        or is_missing(reference)
        or policy == reference
    ):
        return ""
    better = (policy > reference) == (direction == "maximize")
    return f' <span class="{"better" if better else "worse"}">{"▲" if better else "▼"}</span>'


def _scores(row: Mapping[str, Any], side: str, names: Sequence[str], declared: columns.Declarations) -> str:
    """The ``side`` ("reference" or "policy") scores of one sample as a small line under its text."""
    items = []
    for name in names:
        value = row.get(f"{side}_{name}")
        if is_missing(value):
            continue
        mark = _mark(name, value, row.get(f"reference_{name}"), declared) if side == "policy" else ""
        items.append(f"<span>{html.escape(name)} <b>{html.escape(format_value(value))}</b>{mark}</span>")
    return f'<div class="scores">{"".join(items)}</div>' if items else ""


def score_names(samples: pd.DataFrame) -> list[str]:
    """The score names of a samples table (its ``reference_<name>`` / ``policy_<name>`` columns), in order."""
    names = [
        c.split("_", 1)[1]
        for c in samples.columns
        if c not in _FIXED and c.split("_", 1)[0] in ("reference", "policy") and "_" in c
    ]
    return list(dict.fromkeys(names))


def samples_table(rows: pd.DataFrame, method: str, declared: columns.Declarations) -> str:
    """One trial's samples at one checkpoint: prompt | reference completion | policy
    completion, with scores."""
    names = score_names(rows)
    body = []
    for row in rows.sort_values("prompt_index").to_dict("records"):
        body.append(
            f'<tr><td class="idx">{html.escape(format_value(row.get("prompt_index")))}</td>'
            f'<td class="text prompt">{_text(row.get("prompt"))}</td>'
            f'<td class="text">{_text(row.get("reference"))}{_scores(row, "reference", names, declared)}</td>'
            f'<td class="text">{_text(row.get("policy"))}{_same(row)}'
            f"{_scores(row, 'policy', names, declared)}"
            "</td></tr>"
        )
    return (
        '<table class="samples"><colgroup><col class="idx"><col class="prompt"><col><col>'
        '</colgroup><thead><tr><th scope="col">#</th><th scope="col">prompt</th>'
        '<th scope="col">reference model</th><th scope="col">policy '
        f"({html.escape(method)})</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _label(trial: Mapping[str, Any], swept: Sequence[str], objective: str | None) -> str:
    """``rank 1 · sweep/0 · step 20 · beta=0.1 · gold_reward 0.31``, escaped."""
    parts = [
        f"rank {format_value(trial.get('rank')) or '-'}",
        str(trial.get("trial_id")),
        f"step {format_value(trial.get('step'))}",
        *(f"{k}={format_value(trial[k])}" for k in swept if k in trial and not is_missing(trial[k])),
    ]
    if objective and not is_missing(trial.get(objective)):
        parts.append(f"{objective} {format_value(trial.get(objective))}")
    return html.escape(" · ".join(parts))


def _trial_rows(samples: pd.DataFrame, trial: Mapping[str, Any]) -> pd.DataFrame:
    """The samples of ``trial`` at its shown checkpoint (its ``step``); empty when it has none."""
    step = trial.get("step")
    if is_missing(step):
        return samples.iloc[0:0]
    return samples[(samples["trial_id"] == trial.get("trial_id")) & (samples["step"] == step)]


def _method_block(
    method: str, trials: list[dict[str, Any]], samples: pd.DataFrame, view: SamplesView, color: str
) -> str:
    swept, objective, declared = view.swept, view.objective, view.declared
    shown = [(t, _trial_rows(samples, t)) for t in trials]
    shown = [(t, rows) for t, rows in shown if not rows.empty]
    if not shown:
        return ""
    (best, rows), others = shown[0], shown[1:]
    parts = [
        f'<h3><span class="swatch" style="background:{color}"></span>{html.escape(method)}</h3>',
        f'<p class="muted">best trial: {_label(best, swept, objective)}</p>',
        samples_table(rows, method, declared),
    ]
    for trial, rows in others:
        parts.append(
            f"<details><summary>{_label(trial, swept, objective)}</summary>"
            f"{samples_table(rows, method, declared)}</details>"
        )
    return f'<section class="method-samples">{"".join(parts)}</section>'


def samples_section(view: SamplesView, colors: Mapping[str, str]) -> str:
    """The Samples section's HTML ('' when no trial has readable samples at its shown checkpoint)."""
    samples, trials = view.samples, view.trials
    if samples.empty or trials.empty or "step" not in trials.columns:
        return ""
    done = trials[trials["status"] == "completed"] if "status" in trials.columns else trials
    by_method: dict[str, list[dict[str, Any]]] = {}
    for trial in done.to_dict("records"):
        by_method.setdefault(str(trial.get("method")), []).append(trial)
    blocks = [_method_block(m, ts, samples, view, colors.get(m, "#888888")) for m, ts in by_method.items()]
    blocks = [b for b in blocks if b]
    if not blocks:
        return ""
    count = samples.groupby(["trial_id", "step"]).size().max()
    return (
        f"<p>Completions on the first {int(count)} held-out prompts: the reference (untrained) "
        "model's in the middle, the trial's on the right, at the checkpoint the ranked table shows "
        "(<code>step</code>), both sampled with the same seed. Under each completion, its "
        "per-sample scores (▲/▼: the policy's is better or worse than the reference's). Each "
        "method's best trial is open; click its other trials to show theirs. Every evaluated "
        "checkpoint's samples are in <code>samples.csv</code>.</p>" + "".join(blocks)
    )
