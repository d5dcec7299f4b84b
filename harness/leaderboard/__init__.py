"""The leaderboard: a pure function of trial records, rebuilt from disk at any time.

``python -m harness.leaderboard multirun/<sweep> [...]`` rebuilds the reports (:mod:`harness.leaderboard.cli`);
from Python, :func:`load_leaderboard` returns a :class:`Leaderboard` whose attributes are DataFrames.

Analysis (DataFrames and sentences from records): ``board`` (the :class:`Leaderboard` and building it), ``tables``
(the per-trial table, the cost per method), ``frames`` (records as tables), ``columns`` (metric columns from the
evaluators' declarations), ``ranking``, ``seeds``, ``conclusions``, ``matched_kl``, ``caveats``, ``budgets``,
``knobs``, ``selection``, ``merging``. Reports: ``sections`` (a report is a list of sections, each one module,
computed once), rendered by ``markdown`` and ``html`` (on ``markdown_parts``, ``html_parts`` and ``static/``), the
figures (``plots``, on ``plot_base``, ``plot_frontier``, ``plot_training``, ``plot_sensitivity``, ``plot_scale``),
``reports`` (writing the files) and ``cli``.
"""

from harness.leaderboard.board import Leaderboard, build, load_leaderboard
from harness.leaderboard.cli import main
from harness.leaderboard.markdown import console_table, to_markdown
from harness.leaderboard.reports import write_leaderboard, write_reports

__all__ = [
    "Leaderboard",
    "build",
    "console_table",
    "load_leaderboard",
    "main",
    "to_markdown",
    "write_leaderboard",
    "write_reports",
]
