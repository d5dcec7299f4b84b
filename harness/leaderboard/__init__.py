"""The leaderboard: a pure function of trial records, rebuilt from disk at any time.

``python -m harness.leaderboard multirun/<sweep> [...]`` rebuilds the reports
(:mod:`harness.leaderboard.cli`); from Python, :func:`load_leaderboard` returns a :class:`Leaderboard` whose
attributes are DataFrames.

``board`` holds the :class:`Leaderboard` and builds it from the analysis (``analysis/``: records in,
DataFrames and sentences out). A report is a list of sections (``sections/``: one module each, computed once)
rendered by ``markdown`` and ``html`` (on ``markdown_parts``, ``html_parts`` and ``static/``) in the same
order; the figures are ``plots`` (on ``plot_base``, ``plot_frontier``, ``plot_training``,
``plot_sensitivity``, ``plot_scale``); ``reports`` writes the files and ``cli`` is the command line.
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
