"""The leaderboard's figures: reward-vs-KL frontier, training curves and hyperparameter sensitivity.

:func:`render_plots` draws a leaderboard's figures and :func:`save_plots` writes them; the figures themselves
are drawn by ``plot_frontier``, ``plot_training`` and ``plot_sensitivity`` (on ``plot_base``, ``plot_scale``)
and named here too. Every figure function takes plain pandas DataFrames (a leaderboard's ``checkpoints`` or
``trials``) and returns a matplotlib :class:`~matplotlib.figure.Figure` drawn on the Agg canvas, so nothing
touches pyplot's global state or needs a display. Each method keeps one colour in every figure
(:func:`method_colors`). Artists carry a ``gid`` (``points:<method>``, ``envelope:<method>``,
``reward:<trial>``, ...) so that callers and tests can find them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from harness.leaderboard.analysis import knobs
from harness.leaderboard.plot_base import (
    DPI,
    KL_LABEL,
    OBJECTIVE_LABELS,
    figure_png,
    method_colors,
    objective_label,
    reference_value,
    upper_envelope,
)
from harness.leaderboard.plot_frontier import frontier_plot
from harness.leaderboard.plot_sensitivity import sensitivity_plot
from harness.leaderboard.plot_training import training_curves

if TYPE_CHECKING:
    from harness.leaderboard.board import Leaderboard

__all__ = [
    "DPI",
    "KL_LABEL",
    "OBJECTIVE_LABELS",
    "PLOT_NAMES",
    "board_colors",
    "figure_png",
    "frontier_plot",
    "method_colors",
    "objective_label",
    "reference_value",
    "render_plots",
    "save_plots",
    "sensitivity_plot",
    "training_curves",
    "upper_envelope",
]

PLOT_NAMES = ("frontier", "training", "sensitivity")


def board_colors(board: Leaderboard) -> dict[str, str]:
    """The colour of every method in a leaderboard's trials and checkpoints (see :func:`method_colors`)."""
    methods: list[str] = []
    for frame in (getattr(board, "trials", None), getattr(board, "checkpoints", None)):
        if frame is not None and "method" in getattr(frame, "columns", ()):
            methods += [str(m) for m in frame["method"].dropna()]
    return method_colors(methods)


def render_plots(board: Leaderboard) -> dict[str, bytes]:
    """PNG bytes of the leaderboard's figures by name (``frontier``, ``training``, and ``sensitivity`` when a
    hyperparameter other than the seed varies within a method). ``board`` needs ``checkpoints``, ``trials``,
    ``swept``, ``objective_name`` and ``kl_budget`` (a :class:`harness.leaderboard.Leaderboard`)."""
    objective = getattr(board, "objective_name", None) or "gold_reward"
    direction = getattr(board, "objective_direction", "maximize")
    colors = board_colors(board)
    checkpoints = board.checkpoints if board.checkpoints is not None else pd.DataFrame()
    reference = reference_value(objective, checkpoints, getattr(board, "trials", None))
    figures: dict[str, Figure | None] = {
        "frontier": frontier_plot(
            checkpoints,
            objective,
            kl_budget=getattr(board, "kl_budget", None),
            reference=reference,
            colors=colors,
            direction=direction,
        ),
        "training": training_curves(
            checkpoints,
            objective,
            direction=direction,
            reference=reference,
            colors=colors,
            label_keys=list(getattr(board, "swept", []) or ["seed"]),
        ),
        "sensitivity": sensitivity_plot(
            board.trials,
            getattr(board, "swept", []) or [],
            objective,
            direction,
            colors=colors,
            paper_names=knobs.paper_names(getattr(board, "records", [])),
        ),
    }
    return {name: figure_png(fig) for name, fig in figures.items() if fig is not None}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a plot is as readable as any report file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_plots(
    board: Leaderboard, out_dir: Path | str, plots: Mapping[str, bytes] | None = None
) -> dict[str, Path]:
    """Write ``frontier.png``, ``training.png`` and (when something was swept) ``sensitivity.png`` to
    ``out_dir``, each atomically, and remove a plot of those names left by an earlier build that has none
    now; ``plots`` reuses PNGs from :func:`render_plots`. Returns name -> path."""
    out = Path(out_dir)
    pngs = render_plots(board) if plots is None else plots
    written = {}
    for name, data in pngs.items():
        _atomic_write_bytes(out / f"{name}.png", data)
        written[name] = out / f"{name}.png"
    for name in set(PLOT_NAMES) - set(pngs):
        (out / f"{name}.png").unlink(missing_ok=True)
    return written
