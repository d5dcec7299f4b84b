"""Hydra callbacks: thin triggers for work that lives in modules that also run on their own.

Hydra turns exceptions raised in callbacks into warnings, so nothing important happens here beyond calling
:func:`harness.leaderboard.write_leaderboard`, which users can also run as ``python -m harness.leaderboard``.
What went wrong at the end of a multirun (a report whose objective has no value in any trial, a report that
could not be written) is kept in :data:`PROBLEMS`, from which the command line takes its exit status
(:func:`exit_status`) once Hydra returns.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness.errors import UserError

#: (exit status, one line) for each problem found when the multirun ended, in order.
PROBLEMS: list[tuple[int, str]] = []


def write_sweep_leaderboard(config: DictConfig, sweep_dir: Path, echo: bool = True) -> Path:
    """Write the reports of the records under ``sweep_dir`` to ``<leaderboard.dir>/<sweep name>/`` (and print
    the table when ``echo`` and ``leaderboard.print``); returns the path of ``leaderboard.md``. A report whose
    objective has no value in any trial is written all the same, its problem at the top and in
    :data:`PROBLEMS`."""
    from harness.leaderboard import console_table, write_leaderboard
    from harness.leaderboard.analysis.problems import EXIT_NO_OBJECTIVE

    out = Path(config.leaderboard.dir) / sweep_dir.name
    lb = config.leaderboard
    board = write_leaderboard(
        [sweep_dir],
        out,
        title=sweep_dir.name,
        objective=lb.get("objective", "auto"),
        kl_budget=lb.get("kl_budget", 10.0),
    )
    if board.problem:
        PROBLEMS.append((EXIT_NO_OBJECTIVE, f"{board.problem} Report: {out / 'leaderboard.md'}"))
    if echo and lb.get("print", True):
        print(f"\nLeaderboard ({len(board.records)} trials) -> {out / 'leaderboard.md'}\n")
        print(console_table(board), flush=True)
    return out / "leaderboard.md"


def exit_status() -> int:
    """The exit status the problems of the multirun's end call for (0: none), having printed each as one line
    (``harness: error: ...``)."""
    for _, line in PROBLEMS:
        print(f"harness: error: {line}", file=sys.stderr, flush=True)
    return PROBLEMS[0][0] if PROBLEMS else 0


class WriteLeaderboard(Callback):
    """When a multirun ends, write the reports to ``<leaderboard.dir>/<sweep name>/`` and print the table."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:  # noqa: D102 (Hydra hook)
        try:
            write_sweep_leaderboard(config, Path(config.hydra.sweep.dir))
        except Exception as exc:  # Hydra would turn it into a warning and exit 0
            first = (str(exc).splitlines() or [""])[0]
            code = 2 if isinstance(exc, UserError) else 1
            PROBLEMS.append((code, f"the leaderboard could not be written: {type(exc).__name__}: {first}"))
