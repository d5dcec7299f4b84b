"""A reward-vs-KL frontier and where it is read: which measured points a value at a given KL comes from.

The frontier of a set of (KL, value) points is their upper envelope (each point that beats every point at a
lower or equal KL), with the reference model at KL 0 as its start when known. :func:`read` finds, for each KL
level, the two envelope points it lies between and the interpolation weight (a :class:`Reading`), so that a
caller can pick points on one set of values (the selection prompts') and read another set (the test prompts')
at the same points with the same weights. Beyond the largest KL measured, or below the smallest without a
reference, there is no reading: a frontier is never extrapolated. Past the last envelope point, up to the
largest KL measured, the frontier stays at that point's value (the best value within the KL).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real

#: The index a :class:`Reading` gives the reference model (KL 0), which is no point of the input.
REFERENCE = -1


@dataclass(frozen=True)
class Reading:
    """Where a frontier is read at one KL level: ``value = (1 - weight) * y[lower] + weight * y[upper]``.

    ``lower`` and ``upper`` index the points given to :func:`read` (:data:`REFERENCE` for the reference model
    at KL 0); ``kl_lower`` and ``kl_upper`` are their KL values. A level on a point (or past the last envelope
    point) has ``weight`` 0 and ``upper == lower``."""

    lower: int
    upper: int
    weight: float
    kl_lower: float
    kl_upper: float

    @property
    def interpolated(self) -> bool:
        """Whether the value lies strictly between two points (not on a measured one)."""
        return 0.0 < self.weight < 1.0

    @property
    def below_lowest(self) -> bool:
        """Whether the value is a straight line from the reference model to the first measured point:
        below the lowest KL measured."""
        return self.interpolated and self.lower == REFERENCE

    @property
    def gap(self) -> float:
        """The KL distance between the two points interpolated across (0 on a measured point)."""
        return self.kl_upper - self.kl_lower if self.interpolated else 0.0

    def combine(self, values: Sequence[float], reference: float | None) -> float:
        """The reading of ``values`` (one per point given to :func:`read`; ``reference`` at KL 0) at this
        level: the same points, the same weights."""

        def at(index: int) -> float:
            if index == REFERENCE:
                return math.nan if reference is None else float(reference)
            return float(values[index])

        if self.weight == 0.0:
            return at(self.lower)
        return (1.0 - self.weight) * at(self.lower) + self.weight * at(self.upper)


def _finite(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def read(
    kls: Sequence[float], values: Sequence[float], levels: Sequence[float], reference: float | None = None
) -> list[Reading | None]:
    """Where the upper envelope of ``values`` against ``kls`` (with ``reference`` at KL 0 when given) is read
    at each of ``levels``: a :class:`Reading`, or None beyond the largest KL measured or below the smallest
    (without a reference). Points with a missing or non-finite KL or value are no points. Higher values are
    better (negate for a minimised objective)."""
    points = [
        (float(k), float(v), i)
        for i, (k, v) in enumerate(zip(kls, values, strict=True))
        if _finite(k) and _finite(v)
    ]
    if reference is not None and _finite(reference):
        points.append((0.0, float(reference), REFERENCE))
    if not points:
        return [None] * len(levels)
    # at equal KL the best value first; on a tie the reference, then the earlier point
    points.sort(key=lambda p: (p[0], -p[1], p[2] != REFERENCE, p[2]))
    front: list[tuple[float, float, int]] = []
    for point in points:
        if not front or point[1] > front[-1][1]:
            front.append(point)
    largest = points[-1][0]
    return [_reading(front, level, largest) for level in levels]


def _reading(front: list[tuple[float, float, int]], level: float, largest: float) -> Reading | None:
    if level > largest or level < front[0][0]:
        return None
    for (k0, _, i0), (k1, _, i1) in zip(front, front[1:], strict=False):
        if k0 <= level < k1:
            weight = (level - k0) / (k1 - k0)
            if weight == 0.0:
                return Reading(i0, i0, 0.0, k0, k0)
            return Reading(i0, i1, weight, k0, k1)
    k, _, i = front[-1]  # on or past the last envelope point: its value, the best within the KL
    return Reading(i, i, 0.0, k, k)


def frontier_at(
    kls: Sequence[float], values: Sequence[float], levels: Sequence[float], reference: float | None = None
) -> list[float]:
    """The upper envelope of ``values`` against ``kls`` (with the reference at KL 0 when given), read at each
    of ``levels`` by linear interpolation between envelope points (:func:`read`); NaN where there is no
    reading (beyond the largest KL measured, or below the smallest without a reference)."""
    readings = read(kls, values, levels, reference)
    return [math.nan if r is None else r.combine(values, reference) for r in readings]
