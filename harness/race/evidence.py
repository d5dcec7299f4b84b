"""A race's evidence from trial records: each candidate's selection values by seed, with the per-prompt
selection scores at each trial's chosen checkpoint, built by the same leaderboard that writes the report
(so a trial's checkpoint, its divergence and the value it counts at are the report's)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from harness.leaderboard.analysis import conclusions, paired, seeds, twoway, verdict
from harness.leaderboard.analysis.frames import reference_values, setting_text
from harness.records import TrialRecord


@dataclass
class RaceEvidence:
    """Per candidate name, its selection :class:`~harness.leaderboard.analysis.twoway.Evidence`; the reference
    model's selection value; the objective's direction; each trial's candidate name and training steps."""

    by_candidate: dict[str, twoway.Evidence]
    base: float | None
    direction: str
    candidate_of: dict[str, str]
    steps: dict[str, int]


def setting_label(row: pd.Series, keys: Sequence[str]) -> str:
    """A candidate's name from a board row: ``<method> <setting>`` (``dpo learning_rate=0.0009``)."""
    text = setting_text(keys, [row[k] for k in keys])
    return f"{row['method']}" + ("" if text == "(one setting)" else f" {text}")


def collect(
    records: Sequence[TrialRecord],
    name_of: Callable[[pd.Series, Sequence[str]], str] | Mapping[str, str] = setting_label,
) -> RaceEvidence:
    """The evidence of ``records`` (any trials of one race), each trial's candidate named by ``name_of``:
    a mapping trial id -> name, or a function of the trial's board row and the setting keys."""
    from harness.leaderboard.board import build

    board = build(list(records))
    trials = verdict.pool(board)
    objective, direction = board.objective_name, board.objective_direction
    if trials.empty or objective is None:
        return RaceEvidence({}, None, direction, {}, {})
    _, selection_base = reference_values(board.records, objective, board.declarations)
    measured = conclusions.measured_selection(board.checkpoints, objective)
    column = conclusions.SELECTION if measured else "objective"
    keys = seeds.setting_keys(trials, board.swept)
    names = [
        name_of.get(str(t), str(t)) if isinstance(name_of, Mapping) else name_of(row, keys)
        for t, (_, row) in zip(trials["trial_id"], trials.iterrows(), strict=True)
    ]
    trials = trials.assign(_candidate=names)
    rows = paired.checkpoint_prompt_scores(board.records, objective, selection=bool(measured))
    base = selection_base if measured else reference_values(board.records, objective, board.declarations)[0]
    by_candidate = {
        str(name): verdict.evidence(group, column, base, direction, rows)
        for name, group in trials.groupby("_candidate", sort=False)
    }
    steps = pd.to_numeric(board.trials.get("steps"), errors="coerce") if "steps" in board.trials else None
    spent = (
        {str(t): int(s) for t, s in zip(board.trials["trial_id"], steps, strict=True) if s == s}
        if steps is not None
        else {}
    )
    return RaceEvidence(
        by_candidate, base, direction, dict(zip(trials["trial_id"], names, strict=True)), spent
    )
