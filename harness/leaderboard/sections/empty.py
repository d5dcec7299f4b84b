"""The report of a leaderboard without trial records: one sentence."""

from __future__ import annotations

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Section


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The sentence, when no record was found (and none from several setups)."""
    if board.groups or not board.trials.empty:
        return None
    return Section("empty", None, caption="No trial records found.")
