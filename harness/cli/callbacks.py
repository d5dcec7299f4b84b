"""Hydra callbacks: thin triggers for work that lives in modules that also run on their own.

Hydra turns exceptions raised in callbacks into warnings, so nothing important happens here beyond calling
:func:`harness.leaderboard.write_leaderboard`, which users can also run as ``python -m harness.leaderboard``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def write_sweep_leaderboard(config: DictConfig, sweep_dir: Path, echo: bool = True) -> Path:
    """Write the reports of the records under ``sweep_dir`` to ``<leaderboard.dir>/<sweep name>/`` (and print
    the table when ``echo`` and ``leaderboard.print``); returns the path of ``leaderboard.md``."""
    from harness.leaderboard import console_table, write_leaderboard

    out = Path(config.leaderboard.dir) / sweep_dir.name
    lb = config.leaderboard
    board = write_leaderboard(
        [sweep_dir],
        out,
        title=sweep_dir.name,
        objective=lb.get("objective", "auto"),
        kl_budget=lb.get("kl_budget", 10.0),
    )
    if echo and lb.get("print", True):
        print(f"\nLeaderboard ({len(board.records)} trials) -> {out / 'leaderboard.md'}\n")
        print(console_table(board), flush=True)
    return out / "leaderboard.md"


class WriteLeaderboard(Callback):
    """When a multirun ends, write the reports to ``<leaderboard.dir>/<sweep name>/`` and print the table."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:  # noqa: D102 (Hydra hook)
        write_sweep_leaderboard(config, Path(config.hydra.sweep.dir))
