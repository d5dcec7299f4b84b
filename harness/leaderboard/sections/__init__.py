"""A report is a list of sections, each computed once from a leaderboard and rendered by the Markdown and the
HTML renderer (:mod:`harness.leaderboard.markdown`, :mod:`harness.leaderboard.html`) in the same order.

Each section is one module of this package with a ``compute(board, figures)`` function that returns a
:class:`~harness.leaderboard.sections.base.Section` (its table, caption and notes, and its own layouts where
the generic heading-caption-table-notes one does not fit) or None when the report has no such section. Adding
a section is one module and one entry in :data:`SECTIONS`; a caller may also pass its own list to the
renderers.

Modules, in report order: ``problems`` (an objective with no value, withheld metrics), ``overview`` (the
objective and the introduction), ``verdict`` (which method and setting to ship, and how sure that is),
``incompatible`` (records from several setups), ``empty`` (no records), ``methods``, ``trials``,
``stage_gain`` (what a stage before training, ``model.sft``, gained over the base model), ``data_lost`` (rows
dropped and truncated), ``best``, ``matched_kl``, ``no_effect``, ``seeds``, ``settings``, ``optuna``,
``cost``, ``failed``, ``columns``, ``samples`` (with ``samples_html``), ``plots`` and ``reproduce``; ``base``
holds the types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.leaderboard.sections import (
    best,
    columns,
    cost,
    data_lost,
    empty,
    failed,
    incompatible,
    matched_kl,
    methods,
    no_effect,
    optuna,
    overview,
    plots,
    problems,
    reproduce,
    samples,
    seeds,
    settings,
    stage_gain,
    trials,
    verdict,
)
from harness.leaderboard.sections.base import Compute, Figures, Page, Section

if TYPE_CHECKING:
    from harness.leaderboard.board import Leaderboard

#: The report's sections, in order.
SECTIONS: tuple[Compute, ...] = (
    problems.compute,
    overview.compute,
    verdict.compute,
    incompatible.compute,
    empty.compute,
    methods.compute,
    trials.compute,
    stage_gain.compute,
    data_lost.compute,
    best.compute,
    matched_kl.compute,
    no_effect.compute,
    seeds.compute,
    settings.compute,
    optuna.compute,
    cost.compute,
    failed.compute,
    columns.compute,
    samples.compute,
    plots.compute,
    reproduce.compute,
)


def compute_sections(
    board: Leaderboard, figures: Figures | None = None, sections: Sequence[Compute] = SECTIONS
) -> list[Section]:
    """The sections of ``board``'s report, each computed once, in order (those it has none of left out)."""
    figures = figures or Figures()
    return [section for section in (compute(board, figures) for compute in sections) if section is not None]


__all__ = ["SECTIONS", "Compute", "Figures", "Page", "Section", "compute_sections"]
