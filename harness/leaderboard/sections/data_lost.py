"""The What the data lost section: per method (and per trial, where a method's trials differ) the rows read,
the rows dropped and why, the rows truncated and the rows trained on
(:mod:`harness.leaderboard.analysis.data_loss`), with a note when the methods trained on different shares of
their data.

Shown only when some trial lost rows or had rows truncated: a report whose trials trained on every row they
read (the toy world's) has no such section.
"""

from __future__ import annotations

from harness.leaderboard.analysis import data_loss
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.sections.base import Figures, Section, ranked


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, when some trial's data lost or truncated rows."""
    if not ranked(board) or not data_loss.lost_anything(board.records):
        return None
    table = data_loss.data_loss_table(board.records)
    note = data_loss.unequal_note(table)
    return Section(
        "data_lost",
        "What the data lost",
        caption=(f"**Note:** {note}\n\n" if note else "")
        + "Rows dropped before training (ties; prompts that alone fill `max_length`) and rows the trainer "
        "truncates to `max_length`, with their shares, per method (a row per distinct set of figures when a "
        "method's trials differ; `trials` counts them). `examples` are in the method's kind (pairs; "
        "unpaired examples for KTO), before fitting to its length; `trained_on` is what it trained on.",
        frame=table,
        column_notes=data_loss.NOTES,
    )
