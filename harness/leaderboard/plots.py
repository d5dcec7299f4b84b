"""The leaderboard's figures: reward-vs-KL frontier, training curves and hyperparameter sensitivity.

Every function takes plain pandas DataFrames (a leaderboard's ``checkpoints`` or ``trials``) and returns a
matplotlib :class:`~matplotlib.figure.Figure` drawn on the Agg canvas, so nothing touches pyplot's global state
or needs a display. Each method keeps one colour in every figure (:func:`method_colors`). Artists carry a
``gid`` (``points:<method>``, ``envelope:<method>``, ``reward:<trial>``, ...) so that callers and tests can find
them.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.leaderboard import knobs, plot_scale

DPI = 110
KL_LABEL = "KL(policy ‖ reference) [nats per sequence]"
OBJECTIVE_LABELS = {"gold_reward": "gold reward", "rm_score": "reward-model score"}
PLOT_NAMES = ("frontier", "training", "sensitivity")


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    """A fixed colour (hex) per method, assigned in sorted name order from the tab10 palette (tab20 past ten
    methods), so the same set of methods gets the same colours in every figure and table."""
    names = sorted({str(m) for m in methods})
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: to_hex(cmap(i % cmap.N)) for i, name in enumerate(names)}


def objective_label(objective: str, direction: str = "maximize") -> str:
    """A readable axis label for an objective column, e.g. ``gold reward (higher is better)``."""
    better = "lower" if direction == "minimize" else "higher"
    return f"{OBJECTIVE_LABELS.get(objective, objective)} ({better} is better)"


def upper_envelope(kl: Iterable[float], reward: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points where the running maximum of ``reward`` over increasing ``kl`` rises: the reward-vs-KL
    Pareto frontier (no other point has at least as much reward with less KL), in order of KL. Both returned
    arrays are increasing; NaN points are ignored."""
    x = np.asarray(list(kl), dtype=float)
    y = np.asarray(list(reward), dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return x, y
    order = np.lexsort((-y, x))  # by KL, the higher reward first among equal KLs
    x, y = x[order], y[order]
    front = y > np.concatenate(([-np.inf], np.maximum.accumulate(y)[:-1]))
    return x[front], y[front]


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _usable(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Rows of ``df`` whose ``columns`` all hold finite numbers (an empty frame if a column is missing)."""
    if df is None or df.empty or any(c not in df.columns for c in columns):
        return pd.DataFrame(columns=["trial_id", "method", *columns])
    numeric = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in columns})
    return numeric[np.isfinite(numeric[list(columns)].astype(float)).all(axis=1)]


def _method_handles(methods: Iterable[str], colors: Mapping[str, str], marker: str = "o") -> list[Line2D]:
    return [Line2D([], [], color=colors[m], marker=marker, label=m) for m in sorted(set(methods))]


def _empty_note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def reference_value(objective: str, *frames: pd.DataFrame | None) -> float | None:
    """The reference model's ``objective`` (the ``base_<objective>`` column): the median of that column in the
    first of ``frames`` that has one, else None."""
    column = f"base_{objective}"
    for frame in frames:
        if frame is None or column not in getattr(frame, "columns", ()):
            continue
        values = pd.to_numeric(frame[column], errors="coerce").dropna()
        if len(values):
            return float(values.median())
    return None


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
    defaults to the median ``base_<objective>``; being every trial's starting point, it is part of each envelope.
    Final checkpoints have a black edge. Returns the figure."""
    fig = _new_figure(8.0, 5.0)
    ax = fig.add_subplot()
    points = _usable(checkpoints, objective, kl)
    colors = dict(colors or method_colors(points.get("method", [])))
    ax.set_xlabel(KL_LABEL)
    ax.set_ylabel(objective_label(objective, direction))
    ax.set_title(f"{OBJECTIVE_LABELS.get(objective, objective)} vs KL: every evaluated checkpoint")
    ax.grid(True, alpha=0.3)
    handles: list[Any] = []
    if points.empty:
        _empty_note(ax, "no checkpoint has both a reward and a KL")
    if reference is None:
        reference = reference_value(objective, checkpoints)
    if reference is not None and not math.isfinite(reference):
        reference = None
    start = ([0.0], [reference]) if reference is not None else ([], [])
    for method, group in points.groupby("method", sort=True):
        final = (
            group["final"].fillna(False).astype(bool) if "final" in group else pd.Series(False, group.index)
        )
        face = to_rgba(colors[method], 0.85)
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
        ax.plot(ex, sign * ey, color=colors[method], linewidth=1.8, zorder=2, gid=f"envelope:{method}")
    handles += _method_handles(points["method"], colors) if not points.empty else []
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
    ax.set_xlim(left=min(0.0, ax.get_xlim()[0]))
    if kl_budget is not None and not points.empty:
        _zoom_to_budget(ax, points, objective, kl, float(kl_budget), reference)
    if handles:
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    return fig


def _zoom_to_budget(
    ax: Any, points: pd.DataFrame, objective: str, kl: str, budget: float, reference: float | None
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


def _draw_budget(ax: Any, budget: float, kls: pd.Series) -> None:
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
    method; the reference model's reward (``reference``, by default from ``base_<objective>``) as a dotted line
    when known. A panel's y axis leaves out a few far outliers (a diverged trial, see
    :mod:`harness.leaderboard.plot_scale`) and names them, by method and ``label_keys`` settings. Returns the
    figure."""
    fig = _new_figure(8.0, 6.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    frame = checkpoints if checkpoints is not None else pd.DataFrame()
    colors = dict(colors or method_colors(frame.get("method", [])))
    methods: set[str] = set()
    for panel, ax, column, label in (
        ("reward", top, objective, objective_label(objective, direction)),
        ("kl", bottom, kl, KL_LABEL),
    ):
        data = _usable(frame, "step", column)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if data.empty:
            _empty_note(ax, f"no evaluated checkpoint has {column}")
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
    handles: list[Any] = _method_handles(methods, colors)
    if reference is not None:
        top.axhline(reference, color="black", linestyle=":", linewidth=1.2, gid="reference")
        handles.append(Line2D([], [], color="black", linestyle=":", label="reference model"))
    if handles:
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
    return fig


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
    it). The x axis is logarithmic for positive values spanning more than 10x (learning rates); non-numeric values
    are categories. The y axis leaves out a few far outliers and names them (:mod:`harness.leaderboard.plot_scale`);
    the legend sits below the panels, clear of the title. An axis whose key a method's paper names otherwise
    (``paper_names``: method -> {key: name}) says so, ``beta (ipo: tau, orpo: lambda)``. Returns None when no
    such hyperparameter exists (e.g.
    only the seed, or only per-method defaults, differ)."""
    swept = list(swept)
    params = [p for p in swept if p != "seed" and trials is not None and p in trials.columns]
    data = _usable(trials, objective)
    if "status" in data.columns:
        data = data[data["status"] == "completed"]
    params = [p for p in params if not data.empty and data.groupby("method")[p].nunique().max() > 1]
    if not params:
        return None
    colors = dict(colors or method_colors(data["method"]))
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig = _new_figure(max(4.3 * ncols + 0.4, 6.4), 3.4 * nrows + 1.1)  # the legend below the panels
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    methods: set[str] = set()
    for ax, param in zip(axes, params, strict=False):
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
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    handles = _method_handles(methods, colors)
    handles.append(Line2D([], [], color="0.4", label="median over seeds and other settings"))
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False, fontsize=8
    )
    fig.suptitle(
        f"{OBJECTIVE_LABELS.get(objective, objective)} vs each swept hyperparameter (completed trials)"
    )
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`, without the software metadata (so equal figures give equal
    bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def board_colors(board: Any) -> dict[str, str]:
    """The colour of every method in a leaderboard's trials and checkpoints (see :func:`method_colors`)."""
    methods: list[str] = []
    for frame in (getattr(board, "trials", None), getattr(board, "checkpoints", None)):
        if frame is not None and "method" in getattr(frame, "columns", ()):
            methods += [str(m) for m in frame["method"].dropna()]
    return method_colors(methods)


def render_plots(board: Any) -> dict[str, bytes]:
    """PNG bytes of the leaderboard's figures by name (``frontier``, ``training``, and ``sensitivity`` when a
    hyperparameter other than the seed varies within a method). ``board`` needs ``checkpoints``, ``trials``, ``swept``,
    ``objective_name`` and ``kl_budget`` (a :class:`harness.leaderboard.Leaderboard`)."""
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


def save_plots(board: Any, out_dir: Path | str, plots: Mapping[str, bytes] | None = None) -> dict[str, Path]:
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
