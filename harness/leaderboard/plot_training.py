"""The training-curves figure: reward and KL over training steps, one line per trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.leaderboard import plot_scale
from harness.leaderboard.plot_base import (
    KL_LABEL,
    OBJECTIVE_LABELS,
    empty_note,
    method_colors,
    method_handles,
    new_figure,
    objective_label,
    reference_value,
    usable,
)


def training_curves(
    checkpoints: pd.DataFrame,
    objective: str = "gold_reward",
    kl: str = "kl",
    direction: str = "maximize",
    reference: float | None = None,
    colors: Mapping[str, str] | None = None,
    label_keys: Sequence[str] = ("seed",),
) -> Figure:
    """Two panels over training steps, reward (top) and KL (bottom), with one line per trial coloured by its
    method; the reference model's reward (``reference``, by default from ``base_<objective>``) as a dotted
    line when known. A panel's y axis leaves out a few far outliers (a diverged trial, see
    :mod:`harness.leaderboard.plot_scale`) and names them, by method and ``label_keys`` settings. Returns the
    figure."""
    fig = new_figure(8.0, 6.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    frame = checkpoints if checkpoints is not None else pd.DataFrame()
    colors = dict(colors or method_colors(frame.get("method", [])))
    methods: set[str] = set()
    for panel, ax, column, label in (
        ("reward", top, objective, objective_label(objective, direction)),
        ("kl", bottom, kl, KL_LABEL),
    ):
        data = usable(frame, "step", column)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if data.empty:
            empty_note(ax, f"no evaluated checkpoint has {column}")
            continue
        for trial, group in data.sort_values("step").groupby("trial_id", sort=True):
            method = str(group["method"].iloc[0])
            methods.add(method)
            ax.plot(
                group["step"],
                group[column],
                color=colors[method],
                marker="o",
                markersize=3.5,
                linewidth=1.4,
                alpha=0.8,
                gid=f"{panel}:{trial}",
            )
        plot_scale.clip_axis(
            ax, data, column, label_keys, "KL" if panel == "kl" else OBJECTIVE_LABELS.get(column)
        )
    top.set_title(f"{OBJECTIVE_LABELS.get(objective, objective)} and KL over training (one line per trial)")
    bottom.set_xlabel("training step (optimizer updates)")
    if reference is None:
        reference = reference_value(objective, frame)
    handles: list[Any] = method_handles(methods, colors)
    if reference is not None:
        top.axhline(reference, color="black", linestyle=":", linewidth=1.2, gid="reference")
        handles.append(Line2D([], [], color="black", linestyle=":", label="reference model"))
    if handles:
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    return fig
