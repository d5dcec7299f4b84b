"""One cell of the Reward at matched KL table: points chosen on selection values, test values read there.

Each trial (one seed of a setting) has its own frontier (:mod:`harness.leaderboard.analysis.frontier`), built
from its checkpoints' values on the selection prompts (KL and objective both measured there) with the
reference model at KL 0. At each KL level the frontier gives the chosen points (one checkpoint, or two with
interpolation weights); the trial's :class:`Point` there holds the *test* value read at those points (the test
values of the same checkpoints with the same weights) and its standard error, read the same way:
``(1 - w)·se_a + w·se_b``, the largest it can be whatever the two checkpoints' errors' correlation (they share
the test prompts). A trial without selection values is read on its test values instead (``on_selection``
False: then the points are chosen on the values reported, which flatters them).

:func:`best_cell` picks a method's setting at one level by its mean selection value over the seeds that reach
the level and summarises those seeds' test values (:class:`Cell`: mean, bootstrap interval from
:mod:`harness.leaderboard.analysis.bootstrap`, and where the value is no plain measurement).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.leaderboard.analysis import bootstrap, frontier
from harness.leaderboard.analysis.frames import SELECTION_PREFIX

#: Marks of a cell that is no plain measurement: below the lowest KL measured; across a wide gap.
BELOW, GAP = "†", "‡"


@dataclass(frozen=True)
class Baseline:
    """The reference model's values of one trial's objective (None: unknown): on the test prompts with its
    standard error, and on the selection prompts."""

    test: float | None = None
    se: float | None = None
    selection: float | None = None


@dataclass(frozen=True)
class Point:
    """One trial read at one KL level: the test value at the chosen points and its standard error, the
    selection value there (``score``: signed so that higher is better), whether it lies below the lowest KL
    measured (between the reference and the first checkpoint) and the KL gap interpolated across between two
    checkpoints (0 on a measured one), and its per-prompt test scores read at the same points and weights
    (``prompts``; None where a point has none kept, e.g. the reference model's)."""

    test: float
    se: float
    score: float
    below_lowest: bool
    gap: float
    prompts: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Cell:
    """A method at one KL level: its chosen ``setting`` (text), the mean test ``value`` over the ``seeds``
    that reach the level (of the setting's ``of`` seeds) with its 95% interval ``low``-``high``, whether any
    seed's value lies below its lowest measured KL, the widest gap interpolated across (nats) and the cell's
    ``mark`` (:data:`BELOW`, :data:`GAP`, both or '')."""

    setting: str
    value: float
    low: float
    high: float
    seeds: int
    of: int
    below_lowest: bool
    gap: float
    mark: str


def _numbers(group: pd.DataFrame, column: str | None) -> list[float]:
    if column is None or column not in group:
        return [math.nan] * len(group)
    return [float(v) for v in pd.to_numeric(group[column], errors="coerce")]


def has_selection(group: pd.DataFrame, objective: str) -> bool:
    """Whether some checkpoint of ``group`` has the objective and KL measured on the selection prompts."""
    kl, y = f"{SELECTION_PREFIX}kl", f"{SELECTION_PREFIX}{objective}"
    if kl not in group or y not in group:
        return False
    both = (
        pd.to_numeric(group[kl], errors="coerce").notna() & pd.to_numeric(group[y], errors="coerce").notna()
    )
    return bool(both.any())


def trial_points(
    group: pd.DataFrame,
    objective: str,
    se_column: str | None,
    levels: Sequence[float],
    base: Baseline,
    on_selection: bool,
    sign: float = 1.0,
    prompt_scores: Sequence[np.ndarray | None] | None = None,
) -> list[Point | None]:
    """Trial ``group``'s (its checkpoints' rows) :class:`Point` at each of ``levels``, chosen on its selection
    values (``on_selection``) or else its test values; None where its frontier does not reach the level.
    ``sign`` is -1 for a minimised objective; ``prompt_scores``: each row's per-prompt test scores (None where
    not kept), read at the same points."""
    prefix = SELECTION_PREFIX if on_selection else ""
    kls = _numbers(group, f"{prefix}kl")
    scores = [sign * v for v in _numbers(group, f"{prefix}{objective}")]
    anchor = base.selection if on_selection else base.test
    start = None if anchor is None else sign * anchor
    tests, ses = _numbers(group, objective), _numbers(group, se_column)
    points: list[Point | None] = []
    for reading in frontier.read(kls, scores, levels, start):
        if reading is None:
            points.append(None)
            continue
        below = reading.below_lowest
        points.append(
            Point(
                test=reading.combine(tests, base.test),
                se=reading.combine(ses, base.se),
                score=reading.combine(scores, start),
                below_lowest=below,
                gap=0.0 if below else reading.gap,
                prompts=_read_prompts(reading, prompt_scores),
            )
        )
    return points


def _read_prompts(reading: frontier.Reading, rows: Sequence[np.ndarray | None] | None) -> np.ndarray | None:
    """The per-prompt scores at ``reading``'s points and weights; None where a point has none (the reference
    model's are not kept)."""
    if rows is None:
        return None
    ends = [reading.lower] if reading.weight == 0.0 else [reading.lower, reading.upper]
    arrays = [None if i == frontier.REFERENCE else rows[i] for i in ends]
    if any(a is None for a in arrays) or len({len(a) for a in arrays}) != 1:  # type: ignore[arg-type]
        return None
    if len(arrays) == 1:
        return arrays[0]
    return (1.0 - reading.weight) * arrays[0] + reading.weight * arrays[1]


def summarise(setting: str, points: Sequence[Point], of: int, max_gap: float | None) -> Cell:
    """The :class:`Cell` of one setting's ``points`` (one per seed that reaches the level, of ``of`` seeds);
    a gap wider than ``max_gap`` nats is marked (None: never)."""
    tests = [p.test for p in points]
    low, high = bootstrap.interval(tests, [p.se for p in points], prompts=[p.prompts for p in points])
    below = any(p.below_lowest for p in points)
    gap = max((p.gap for p in points), default=0.0)
    wide = max_gap is not None and gap > max_gap
    finite = [t for t in tests if math.isfinite(t)]
    return Cell(
        setting=setting,
        value=float(np.mean(finite)) if finite else math.nan,
        low=low,
        high=high,
        seeds=len(points),
        of=of,
        below_lowest=below,
        gap=gap,
        mark=(BELOW if below else "") + (GAP if wide else ""),
    )


def best_cell(settings: Sequence[tuple[str, Sequence[Point | None]]], max_gap: float | None) -> Cell | None:
    """The cell of the best of ``settings`` (each its text and its seeds' points at one level, None for a seed
    whose frontier does not reach it) by mean ``score`` over the seeds that reach the level; None when no
    seed of any setting does."""
    best: tuple[float, str, list[Point], int] | None = None
    for text, seeds in settings:
        reached = [p for p in seeds if p is not None]
        scores = [p.score for p in reached if math.isfinite(p.score)]
        if not scores:
            continue
        score = float(np.mean(scores))
        if best is None or score > best[0]:
            best = (score, text, reached, len(seeds))
    return None if best is None else summarise(best[1], best[2], best[3], max_gap)
