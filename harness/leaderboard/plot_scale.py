"""Axis limits that a few diverged points cannot set, and the note naming the points left off the axis.

One diverged trial (KTO at KL 70 with a gold reward of -4.7) stretches an axis so far that every healthy trial
lies on one line. :func:`robust_limits` finds the points far outside the bulk of the data (beyond Tukey's
far-out fences, 3 interquartile ranges past the quartiles) when they are few (at most a fifth of the points)
and far (the full range at least twice the range of the rest); the axis is then set to the rest with a margin,
and :func:`off_scale_note` names the points left out in the figure ("off-scale: kto beta=0.1 seed=2 (KL 68)").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FENCE = 3.0  # interquartile ranges past the quartiles
MAX_FRACTION = 0.2  # at most this share of the points may be left off
MARGIN = 0.08  # of the kept range, on each side
SHOWN = 3  # points named in the note; the rest are counted


def robust_limits(values: Sequence[float] | np.ndarray | pd.Series) -> tuple[float, float, np.ndarray] | None:
    """``(low, high, outside)`` when a few far outliers should be left off the axis (``outside``: a mask over
    ``values``, NaN never outside), else None (the data's own range is fine)."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    x = v[finite]
    if x.size < 4:
        return None
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    low, high = q1 - FENCE * iqr, q3 + FENCE * iqr
    outside = finite & ((v < low) | (v > high))
    kept = v[finite & ~outside]
    if not outside.any() or outside.sum() > MAX_FRACTION * x.size or kept.size == 0:
        return None
    span = float(kept.max() - kept.min()) or max(abs(float(kept.mean())), 1e-9)
    if float(x.max() - x.min()) < 2 * span:
        return None
    pad = MARGIN * span
    return float(kept.min()) - pad, float(kept.max()) + pad, outside


def point_label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``kto beta=0.1 seed=2``: the method and the given settings of one row."""
    settings = " ".join(f"{k}={_short(row[k])}" for k in keys if k in row and not _missing(row[k]))
    return f"{row.get('method', '?')}{' ' + settings if settings else ''}"


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def off_scale_note(
    frame: pd.DataFrame, column: str, outside: np.ndarray, keys: Sequence[str], what: str | None = None
) -> str:
    """``off-scale: kto beta=0.1 seed=2 (KL 68), ...``: each trial (or row) with a point left off the axis, at
    its most extreme value; the first :data:`SHOWN` named, the rest counted."""
    rows = frame.loc[np.asarray(outside, dtype=bool)]
    if rows.empty:
        return ""
    centre = float(np.nanmedian(pd.to_numeric(frame[column], errors="coerce")))
    group = "trial_id" if "trial_id" in rows.columns else None
    items: dict[str, float] = {}
    for _, row in rows.iterrows():
        key = str(row[group]) if group else str(len(items))
        value = float(row[column])
        if key not in items or abs(value - centre) > abs(items[key] - centre):
            items[key] = value
    labels = {}
    for key, value in items.items():
        row = rows[rows[group] == key].iloc[0] if group else rows.iloc[len(labels)]
        labels[key] = f"{point_label(row, keys)} ({what or column} {value:.3g})"
    named = list(labels.values())
    more = f" and {len(named) - SHOWN} more" if len(named) > SHOWN else ""
    return f"off-scale: {', '.join(named[:SHOWN])}{more}"


def clip_axis(
    ax: Axes, frame: pd.DataFrame, column: str, keys: Sequence[str], what: str | None = None, y: float = 0.02
) -> str:
    """Set ``ax``'s y limits to :func:`robust_limits` of ``frame[column]`` when a few points lie far outside,
    and write the :func:`off_scale_note` in the axes' lower left corner (``y``: its height in axes fraction);
    returns the note ('' when nothing was clipped)."""
    if frame is None or frame.empty or column not in frame.columns:
        return ""
    limits = robust_limits(pd.to_numeric(frame[column], errors="coerce"))
    if limits is None:
        return ""
    low, high, outside = limits
    ax.set_ylim(low, high)
    text = off_scale_note(frame, column, outside, keys, what)
    ax.text(
        0.01,
        y,
        text,
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=7,
        color="0.3",
        gid="off_scale",
        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1.5},
    )
    return text
