"""The Stage gain section: with ``model.sft`` (a stage trained before the method), the base model and the
stage's model on the same prompts and evaluators, the stage's row measured against the base model
(:mod:`harness.leaderboard.analysis.stage_gain`). The ranked trials' baseline is the stage's model, so this is
where the base -> SFT gain shows. Absent when no trial had a stage with an evaluation.
"""

from __future__ import annotations

from harness.leaderboard.analysis import stage_gain
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Section, flat, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when a trial's record holds its stage's evaluation."""
    if not ranked(board):
        return None
    table = stage_gain.stage_gain_table(board.records, board.declarations, list(flat(board.trials).columns))
    if table.empty:
        return None
    stages = ", ".join(str(m).replace(" (stage)", "") for m in table["model"] if m != stage_gain.BASE)
    sentence = stage_gain.gain_sentence(table, board.objective_name)
    return Section(
        "stage_gain",
        "Stage gain over the base model",
        caption=(f"{sentence} " if sentence else "")
        + f"The trials start from the model of the {stages} stage: their reference (`base_*` columns, the "
        "bar to beat) is that model. Here it is against the base model it was trained from, on the same "
        "prompts and evaluators: the stage's row is its final checkpoint, its `kl` and `win_rate` "
        "measured against the base model.",
        frame=table,
        column_notes={"model": "the base model, or the model a stage trained from it"},
    )
