"""The leaderboard: a pure function of trial records, rebuilt from disk at any time.

``python -m harness.leaderboard multirun/<sweep> [...]`` rebuilds the reports; from Python,
:func:`load_leaderboard` returns a :class:`Leaderboard` whose attributes are DataFrames.
"""

from harness.leaderboard.board import (
    Leaderboard,
    build,
    console_table,
    load_leaderboard,
    main,
    to_markdown,
    write_leaderboard,
    write_reports,
)

__all__ = ["Leaderboard", "build", "console_table", "load_leaderboard", "main", "to_markdown", "write_leaderboard",
           "write_reports"]
