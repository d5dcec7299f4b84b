"""The reward-vs-KL frontier figure: every evaluated checkpoint, each method's envelope, the KL budget and the
reference model."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.leaderboard.plot_base import (
    KL_LABEL,
    OBJECTIVE_LABELS,
    empty_note,
    method_colors,
    method_handles,
    new_figure,
    objective_label,
    reference_value,
    upper_envelope,
    usable,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def frontier_plot(
    checkpoints: pd.DataFrame,
    objective: str = "gold_reward",
    kl: str = "kl",
    kl_budget: float | None = None,
    reference: float | None = None,
    colors: Mapping[str, str] | None = None,
    direction: str = "maximize",
) -> Figure:
    """The objective against KL for every evaluated checkpoint, one colour per method, with each method's
    envelope (its objective-vs-KL Pareto frontier: the best value so far as KL grows, in ``direction``) as a
    line, the KL budget as a dashed vertical line and the reference model at (0, its value). ``reference``
    defaults to the median ``base_<objective>``; being every trial's starting point, it is part of each
    envelope. Final checkpoints have a black edge. Returns the figure."""
    fig = new_figure(8.0, 5.0)
    ax = fig.add_subplot()
    points = usable(checkpoints, objective, kl)
    colors = dict(colors or method_colors(points.get("method", [])))
    ax.set_xlabel(KL_LABEL)
    ax.set_ylabel(objective_label(objective, direction))
    ax.set_title(f"{OBJECTIVE_LABELS.get(objective, objective)} vs KL: every evaluated checkpoint")
    ax.grid(True, alpha=0.3)
    if points.empty:
        empty_note(ax, "no checkpoint has both a reward and a KL")
    if reference is None:
        reference = reference_value(objective, checkpoints)
    if reference is not None and not math.isfinite(reference):
        reference = None
    start = ([0.0], [reference]) if reference is not None else ([], [])
    for method, group in points.groupby("method", sort=True):
        _draw_method(ax, group, str(method), objective, kl, colors[method], start, direction)
    handles = _marks(ax, points, kl, colors, reference, kl_budget)
    ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
    if kl_budget is not None and not points.empty:
        _zoom_to_budget(ax, points, objective, kl, float(kl_budget), reference)
    if handles:
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    return fig


def _draw_method(
    ax: Axes,
    group: pd.DataFrame,
    method: str,
    objective: str,
    kl: str,
    color: str,
    start: tuple[list[float], list[float]],
    direction: str,
) -> None:
    """One method's checkpoints (final ones with a black edge)
    and its envelope from ``start`` (the reference)."""
    final = group["final"].fillna(False).astype(bool) if "final" in group else pd.Series(False, group.index)
    face = to_rgba(color, 0.85)
    edges = [(0.0, 0.0, 0.0, 1.0) if f else face for f in final]  # black edges mark final checkpoints
    ax.scatter(
        group[kl],
        group[objective],
        facecolors=[face],
        s=np.where(final, 46, 20),
        edgecolors=edges,
        linewidths=0.9,
        zorder=3,
        gid=f"points:{method}",
    )
    sign = -1.0 if direction == "minimize" else 1.0  # the envelope of the best values so far
    ex, ey = upper_envelope([*start[0], *group[kl]], [sign * y for y in [*start[1], *group[objective]]])
    ax.plot(ex, sign * ey, color=color, linewidth=1.8, zorder=2, gid=f"envelope:{method}")


def _marks(
    ax: Axes,
    points: pd.DataFrame,
    kl: str,
    colors: Mapping[str, str],
    reference: float | None,
    kl_budget: float | None,
) -> list[Any]:
    """The reference model's star and the KL budget's line, drawn; returns the legend's handles (the methods,
    the reference, final checkpoints, the budget)."""
    handles: list[Any] = method_handles(points["method"], colors) if not points.empty else []
    if reference is not None:
        ax.scatter([0.0], [reference], marker="*", s=160, color="black", zorder=4, gid="reference")
        handles.append(
            Line2D([], [], color="black", marker="*", markersize=11, linestyle="", label="reference model")
        )
    if not points.empty:
        handles.append(
            Line2D(
                [],
                [],
                color="0.6",
                marker="o",
                markeredgecolor="black",
                linestyle="",
                label="final checkpoint",
            )
        )
    if kl_budget is not None:
        _draw_budget(ax, float(kl_budget), points[kl] if not points.empty else pd.Series(dtype=float))
        handles.append(Line2D([], [], color="0.25", linestyle="--", label=f"KL budget ({kl_budget:g} nats)"))
    return handles


def _zoom_to_budget(
    ax: Axes, points: pd.DataFrame, objective: str, kl: str, budget: float, reference: float | None
) -> None:
    """Keep the axes on the region that ranks (KL up to the budget) when diverged checkpoints lie far beyond
    it, so that they do not squash every healthy point into a corner; says how many are off the plot."""
    beyond = points[points[kl] > 1.5 * budget]
    inside = points[points[kl] <= 1.5 * budget]
    if beyond.empty or inside.empty:
        return
    ys = [*inside[objective].dropna(), *([reference] if reference is not None else [])]
    pad = 0.08 * ((max(ys) - min(ys)) or 1.0)
    right = max(budget * 1.1, float(inside[kl].max()) * 1.08)
    ax.set_xlim(-0.03 * right, right)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.annotate(
        f"{len(beyond)} checkpoints beyond KL {1.5 * budget:g} not shown (up to {beyond[kl].max():.0f} nats)",
        xy=(0.99, 0.02),
        xycoords="axes fraction",
        ha="right",
        va="bottom",
        fontsize=8,
        color="0.35",
    )


def _draw_budget(ax: Axes, budget: float, kls: pd.Series) -> None:
    """A dashed line at the budget; when the budget lies far right of every point, the axis is not stretched
    to show it (the points would be squeezed): a note at the right edge says where it is instead."""
    largest = float(kls.max()) if len(kls) else 0.0
    if largest > 0 and budget > 1.5 * largest:
        ax.annotate(
            f"KL budget {budget:g} →",
            xy=(1.0, 0.02),
            xycoords="axes fraction",
            ha="right",
            va="bottom",
            color="0.25",
            fontsize=9,
        )
        ax.axvline(budget, color="0.25", linestyle="--", linewidth=1.2, gid="kl_budget")
        ax.set_xlim(right=largest * 1.08)
        return
    low, high = ax.get_xlim()
    high = max(high, budget * 1.05)
    ax.axvline(budget, color="0.25", linestyle="--", linewidth=1.2, gid="kl_budget")
    ax.axvspan(budget, 2 * high + 1, color="0.5", alpha=0.08, linewidth=0)  # shade past the budget...
    ax.set_xlim(low, high)  # ...to the edge, without widening the axis
