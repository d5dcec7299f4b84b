"""Reward at matched KL: every method read off its own reward-vs-KL frontier at the same KL values.

A ranking by the best checkpoint within a KL budget lets a method that moved far from the reference (PPO at 7
nats) outrank one that stayed close (DPO at 2 nats) although, at 2 nats, DPO is ahead. Here each method's
frontier is the upper envelope of the objective against KL over all its evaluated checkpoints (every trial and
seed) and the reference model at KL 0; it is interpolated linearly between envelope points at common KL values
(``leaderboard.matched_kl``, default 1, 2 and 5 nats) and is never extrapolated: beyond the largest KL a
method's checkpoints reached, its value is missing (a blank cell).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from harness.config.sweep_checks import DEFAULT_MATCHED_KL, MATCHED_KL_KEY, check_matched_kl
from harness.evaluation.health import KL_HIGH
from harness.leaderboard.analysis import columns
from harness.records import TrialRecord

PREFIX = "at_kl_"
NOTES = {
    "trains_on": "what the method optimised: preferences (offline methods), the gold reward (then "
    "it trained on the objective itself) or a reward model",
    "trials": "trials whose checkpoints make up the method's frontier",
    "max_kl": "the largest KL any of the method's checkpoints reached: the frontier ends there",
}


def level_column(level: float) -> str:
    """The table column of KL value ``level`` (``at_kl_2`` for 2 nats)."""
    return f"{PREFIX}{level:g}"


def levels_of(records: Iterable[TrialRecord]) -> tuple[float, ...]:
    """The KL values the records' config asks for (``leaderboard.matched_kl`` of the first record that has
    one), else :data:`~harness.config.sweep_checks.DEFAULT_MATCHED_KL`."""
    for record in records:
        board = (record.config or {}).get("leaderboard") or {}
        if "matched_kl" in board:
            return check_matched_kl(board["matched_kl"], MATCHED_KL_KEY)
    return DEFAULT_MATCHED_KL


def frontier_at(
    kls: Sequence[float], values: Sequence[float], levels: Sequence[float], reference: float | None = None
) -> list[float]:
    """The upper envelope of ``values`` against ``kls`` (with the reference at KL 0 when given), read at each
    of ``levels`` by linear interpolation between envelope points; beyond the largest KL measured (or below
    the smallest) NaN. Higher values are better (negate for a minimised objective)."""
    points = [
        (float(k), float(v))
        for k, v in zip(kls, values, strict=True)
        if k is not None and v is not None and math.isfinite(float(k)) and math.isfinite(float(v))
    ]
    if reference is not None and math.isfinite(reference):
        points.append((0.0, float(reference)))
    if not points:
        return [math.nan] * len(levels)
    points.sort(key=lambda p: (p[0], -p[1]))
    front: list[tuple[float, float]] = []
    for kl, value in points:
        if not front or value > front[-1][1]:
            front.append((kl, value))
    xs, ys = [p[0] for p in front], [p[1] for p in front]
    largest = points[-1][0]
    out = []
    for level in levels:
        if level > largest or level < xs[0]:
            out.append(math.nan)
        else:
            # past the last envelope point (up to the largest KL measured) the envelope stays
            # at its best value
            out.append(float(np.interp(level, xs, ys)))
    return out


def reference_value(
    records: Iterable[TrialRecord], objective: str, declared: columns.Declarations
) -> float | None:
    """The reference (untrained) model's value of ``objective`` from the first record that has it."""
    for record in records:
        value = columns.metric_row(record.reference_metrics or {}, declared).get(objective)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def _source(record: TrialRecord, objective: str) -> str:
    """What one trial trained on, in words (see :data:`NOTES`)."""
    reward = (record.hyperparameters or {}).get("reward")
    if not isinstance(reward, str) or not reward:
        return "preferences (unpaired labels)" if record.data_kind == "unpaired" else "preferences"
    if reward == "gold":
        return "gold reward (the objective itself)" if objective == "gold_reward" else "gold reward"
    path = record.eval_reward_model or reward
    itself = " (the objective itself)" if objective == "rm_score" else ""
    if reward == "trained":
        return f"reward model trained by the reward stage ({path}){itself}"
    return f"reward model {path}{itself}"


def trains_on(records: Iterable[TrialRecord], objective: str) -> dict[str, str]:
    """Method -> what its trials trained on (several sources joined with ``; ``)."""
    found: dict[str, list[str]] = {}
    for record in records:
        sources = found.setdefault(str(record.method), [])
        source = _source(record, objective)
        if source not in sources:
            sources.append(source)
    return {method: "; ".join(sources) for method, sources in found.items()}


def matched_kl_table(
    checkpoints: pd.DataFrame,
    records: Sequence[TrialRecord],
    objective: str | None,
    direction: str = "maximize",
    declared: columns.Declarations | None = None,
    levels: Sequence[float] | None = None,
) -> pd.DataFrame:
    """One row per method: ``method``, ``trains_on``, ``trials``, ``max_kl`` and the objective on the method's
    frontier (its checkpoints within the health band, KL <= ``KL_HIGH``) at each KL value (``at_kl_<x>``, NaN
    where the method never reached it); ordered by the first KL value, best first. Empty without an objective,
    a KL column, or KL values."""
    levels = tuple(levels) if levels is not None else levels_of(records)
    if not objective or not levels or checkpoints.empty or not {"kl", objective} <= set(checkpoints.columns):
        return pd.DataFrame()
    sign = -1.0 if direction == "minimize" else 1.0
    reference = reference_value(records, objective, declared or {})
    sources = trains_on(records, objective)
    rows = []
    frame = checkpoints.assign(
        kl=pd.to_numeric(checkpoints["kl"], errors="coerce"),
        _y=pd.to_numeric(checkpoints[objective], errors="coerce"),
    )
    healthy = frame[
        frame["kl"] <= KL_HIGH
    ]  # a diverged checkpoint (KL beyond the health band) is no frontier point
    for method, group in healthy.dropna(subset=["kl", "_y"]).groupby("method", sort=True):
        values = frontier_at(
            list(group["kl"]),
            list(sign * group["_y"]),
            levels,
            None if reference is None else sign * reference,
        )
        rows.append(
            {
                "method": method,
                "trains_on": sources.get(str(method), ""),
                "trials": group["trial_id"].nunique(),
                "max_kl": float(group["kl"].max()),
                **{level_column(x): sign * v for x, v in zip(levels, values, strict=True)},
            }
        )
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    first = level_column(levels[0])
    return table.sort_values(
        first, ascending=direction == "minimize", na_position="last", kind="stable"
    ).reset_index(drop=True)


def explanation(table: pd.DataFrame, objective: str | None) -> str:
    """What the matched-KL table shows, in one paragraph (Markdown: backticks for names)."""
    levels = ", ".join(c[len(PREFIX) :] for c in table.columns if str(c).startswith(PREFIX))
    online = table["trains_on"].str.contains("the objective itself").any() if "trains_on" in table else False
    itself = (
        " A method whose `trains_on` says *the objective itself* was trained on the very metric it is ranked "
        "by; the others never saw it."
        if online
        else ""
    )
    return (
        f"Each method's frontier of **{objective}** against KL (the upper envelope of all its evaluated "
        f"checkpoints, every trial and seed, but those beyond the health band (KL > {KL_HIGH:g} nats: "
        f"diverged), and of the reference model at KL 0) read at KL = {levels} nats, interpolated "
        "linearly between envelope points and never extrapolated: a blank cell is a KL the method never "
        "reached (`max_kl`). Compare methods within a column: a method ranked higher above may have "
        "bought its reward with more KL. The envelope is a best case over a method's trials, so a "
        f"method with more `trials` has more chances.{itself}"
    )
