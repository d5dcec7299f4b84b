"""What the leaderboard's figures share: each method's colour, axis labels, the reward-vs-KL envelope, new
figures on the Agg canvas (nothing touches pyplot's global state or needs a display), and PNG bytes without
metadata."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DPI = 110
KL_LABEL = "KL(policy ‖ reference) [nats per sequence]"
OBJECTIVE_LABELS = {"gold_reward": "gold reward", "rm_score": "reward-model score"}


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


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def usable(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Rows of ``df`` whose ``columns`` all hold finite numbers (an empty frame if a column is missing)."""
    if df is None or df.empty or any(c not in df.columns for c in columns):
        return pd.DataFrame(columns=["trial_id", "method", *columns])
    numeric = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in columns})
    return numeric[np.isfinite(numeric[list(columns)].astype(float)).all(axis=1)]


def method_handles(methods: Iterable[str], colors: Mapping[str, str], marker: str = "o") -> list[Line2D]:
    return [Line2D([], [], color=colors[m], marker=marker, label=m) for m in sorted(set(methods))]


def empty_note(ax: Axes, text: str) -> None:
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


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`, without the software metadata (so equal figures give equal
    bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
