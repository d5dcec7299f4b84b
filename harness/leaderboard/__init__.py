"""The leaderboard: a pure function of trial records, rebuilt from disk at any time.

``python -m harness.leaderboard multirun/<sweep> [...]`` rebuilds the reports (:mod:`harness.leaderboard.cli`);
from Python, :func:`load_leaderboard` returns a :class:`Leaderboard` whose attributes are DataFrames.

Modules: ``board`` (building it), ``frames`` (records as tables), ``columns`` (metric columns from the
evaluators' declarations), ``ranking``, ``seeds``, ``merging``, ``markdown``, ``html`` (with ``static/``, and
``samples_html`` for its Samples section), ``plots``, ``reports`` (writing the files), ``cli``.
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
