"""The sensitivity figure: the objective against each hyperparameter a sweep varied within a method."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.leaderboard import plot_scale
from harness.leaderboard.plot_base import (
    OBJECTIVE_LABELS,
    method_colors,
    method_handles,
    new_figure,
    objective_label,
    usable,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _numeric(values: pd.Series) -> pd.Series | None:
    """``values`` as floats when every non-missing one is a number, else None (a categorical setting)."""
    present = values.dropna()
    if present.map(lambda v: isinstance(v, bool)).any():
        return None
    converted = pd.to_numeric(present, errors="coerce")
    return converted.reindex(values.index) if converted.notna().all() else None


def _axis_label(
    param: str, methods: Sequence[str], paper_names: Mapping[str, Mapping[str, str]] | None
) -> str:
    others = [
        f"{m}: {paper_names[m][param]}"
        for m in methods
        if paper_names and paper_names.get(m, {}).get(param, param) != param
    ]
    return f"{param} ({', '.join(others)})" if others else param


def sensitivity_plot(
    trials: pd.DataFrame,
    swept: Iterable[str],
    objective: str,
    direction: str = "maximize",
    colors: Mapping[str, str] | None = None,
    paper_names: Mapping[str, Mapping[str, str]] | None = None,
) -> Figure | None:
    """One panel per swept hyperparameter (the seed excluded) that takes several values within at least one
    method: the ``objective`` of each completed trial against the value, one colour per method, with a line
    through the median at each value (over seeds and the other swept settings: one diverged seed does not move
    it). The x axis is logarithmic for positive values spanning more than 10x (learning rates); non-numeric
    values are categories. The y axis leaves out a few far outliers and names them
    (:mod:`harness.leaderboard.plot_scale`); the legend sits below the panels, clear of the title. An axis
    whose key a method's paper names otherwise (``paper_names``: method -> {key: name}) says so,
    ``beta (ipo: tau, orpo: lambda)``. Returns None when no such hyperparameter exists (e.g. only the seed, or
    only per-method defaults, differ)."""
    swept = list(swept)
    params = [p for p in swept if p != "seed" and trials is not None and p in trials.columns]
    data = usable(trials, objective)
    if "status" in data.columns:
        data = data[data["status"] == "completed"]
    params = [p for p in params if not data.empty and data.groupby("method")[p].nunique().max() > 1]
    if not params:
        return None
    colors = dict(colors or method_colors(data["method"]))
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig = new_figure(max(4.3 * ncols + 0.4, 6.4), 3.4 * nrows + 1.1)  # the legend below the panels
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    methods: set[str] = set()
    for ax, param in zip(axes, params, strict=False):
        methods |= _panel(ax, data, param, objective, direction, colors, swept, paper_names)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    handles = method_handles(methods, colors)
    handles.append(Line2D([], [], color="0.4", label="median over seeds and other settings"))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False, fontsize=8
    )
    fig.suptitle(
        f"{OBJECTIVE_LABELS.get(objective, objective)} vs each swept hyperparameter (completed trials)"
    )
    return fig


def _panel(
    ax: Axes,
    data: pd.DataFrame,
    param: str,
    objective: str,
    direction: str,
    colors: Mapping[str, str],
    swept: Sequence[str],
    paper_names: Mapping[str, Mapping[str, str]] | None,
) -> set[str]:
    """One hyperparameter's panel: each method's trials and its median line; returns the methods drawn."""
    methods: set[str] = set()
    numeric = _numeric(data[param])
    values = numeric if numeric is not None else data[param].map(lambda v: None if pd.isna(v) else str(v))
    for method, group in data.assign(_x=values).dropna(subset=["_x"]).groupby("method", sort=True):
        methods.add(str(method))
        ax.scatter(
            group["_x"],
            group[objective],
            color=colors[method],
            s=24,
            alpha=0.7,
            zorder=3,
            gid=f"points:{param}:{method}",
        )
        medians = group.groupby("_x", sort=True)[objective].median()
        ax.plot(
            medians.index,
            medians.to_numpy(),
            color=colors[method],
            linewidth=1.6,
            zorder=2,
            gid=f"mean:{param}:{method}",
        )
    if numeric is not None:
        present = numeric.dropna()
        if (present > 0).all() and present.max() > 10 * present.min():
            ax.set_xscale("log")
    ax.set_xlabel(_axis_label(param, sorted({str(m) for m in data["method"]}), paper_names))
    ax.set_ylabel(objective_label(objective, direction))
    ax.set_title(f"sensitivity to {param}", fontsize=10)
    ax.grid(True, alpha=0.3)
    plot_scale.clip_axis(
        ax, data, objective, [k for k in swept if k in data.columns], OBJECTIVE_LABELS.get(objective)
    )
    return methods
