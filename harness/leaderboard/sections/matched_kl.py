"""The Reward at matched KL section: each method's objective on its own reward-vs-KL frontier at common KL
values, chosen on selection values and read on test values, with intervals and marks
(:mod:`harness.leaderboard.analysis.matched_kl`)."""

from __future__ import annotations

from harness.leaderboard.analysis import matched_kl
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Section, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when the board has an objective, KL values and checkpoints to read them from."""
    if not ranked(board):
        return None
    table = board.matched_kl
    if table.empty:
        return None
    return Section(
        "matched_kl",
        "Reward at matched KL",
        caption=matched_kl.explanation(table, board.objective_name, matched_kl.max_gap_of(board.records)),
        frame=matched_kl.shown(table),
        column_notes=matched_kl.NOTES,
    )
