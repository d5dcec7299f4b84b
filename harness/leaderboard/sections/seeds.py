"""The Over seeds section: each setting run with several seeds, its mean and 95% interval with evaluation
noise, and how it compares with the best (:mod:`harness.leaderboard.analysis.seeds`)."""

from __future__ import annotations

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Section, flat, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some setting was run with several seeds."""
    table = flat(board.seeds)
    if not ranked(board) or table.empty or "n_seeds" not in table or not (table["n_seeds"] > 1).any():
        return None
    return Section(
        "seeds",
        "Over seeds",
        caption="Mean and 95% confidence interval over every seed of "
        f"**{board.objective_name}** (a diverged seed counted at the worse of its value and the "
        "reference model's; `survivors_mean` over the others) and KL (over the seeds that did not "
        "diverge), each trial's standard error added to the spread over seeds and never narrower than "
        "the seeds-only t interval; `diverged` counts the seeds that diverged; `p_vs_best` is a "
        "Welch-type t-test against rank 1, `p_holm` its Holm adjustment over all comparisons, and "
        "`same_as_best` marks settings whose difference from the best is not significant after it "
        "(p_holm >= 0.05).",
        frame=table,
    )
