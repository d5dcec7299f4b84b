"""The Best per method section: each method's best trial (with several methods)."""

from __future__ import annotations

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Section, flat, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when the board ranks several methods."""
    if not ranked(board) or len(board.methods) <= 1:
        return None
    return Section("methods", "Best per method", frame=board.shown(flat(board.methods)))
