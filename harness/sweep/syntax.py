"""Hydra's sweep syntax as Optuna distributions: one dimension of a search space, parsed, sampled and shown.

``choice(a, b)`` or ``a,b`` is categorical, ``range(start, stop, step)`` stepped (stop excluded),
``interval(low, high)`` a float (an int when both ends are ints) and ``tag(log, interval(low, high))``
log-scaled. What Optuna cannot search (``shuffle``, an empty or reversed interval, ``log`` on a non-positive
interval or a stepped range) is a one-line :class:`harness.errors.ConfigError`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    import optuna.distributions as D


def parse_dimension(key: str, spec: Any) -> Any | None:
    """The Optuna distribution of ``key=spec`` in Hydra's sweep syntax; None for a fixed (non-sweep) value.

    Raises ConfigError for syntax Hydra cannot parse or a sweep Optuna cannot search (``shuffle``, an empty
    or reversed interval, ``log`` on a non-positive interval or a stepped range).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    text = (
        spec
        if isinstance(spec, str)
        else ",".join(map(str, spec))
        if isinstance(spec, (list, tuple))
        else str(spec)
    )
    try:
        value = OverridesParser.create().parse_override(f"{key}={text}").value()
    except HydraException as exc:  # OverrideParseException, or the grammar's own syntax errors
        raise ConfigError(
            f"Cannot parse the search space of {key}: {text!r} ({str(exc).splitlines()[0]}); use "
            "choice(a,b), range(start,stop,step), interval(low,high) or tag(log, interval(low,high))."
        ) from None
    return dimension(key, value)


def dimension(key: str, value: Any) -> Any | None:
    """The Optuna distribution of an already parsed override value (see :func:`parse_dimension`)."""
    import optuna.distributions as D
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    log = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):
        if value.shuffle:
            raise ConfigError(f"{key}: shuffle(...) has no meaning for Optuna; use choice(...).")
        choices = [_plain(v, key) for v in value.list]
        if not choices:
            raise ConfigError(f"{key}: choice() needs at least one value.")
        return D.CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step if value.step is not None else 1
        if log:
            raise ConfigError(
                f"{key}: tag(log, ...) cannot apply to range(); use tag(log, interval(low, high))."
            )
        count = math.ceil((stop - start) / step) if step else 0
        if count <= 0:
            raise ConfigError(f"{key}: range({start}, {stop}, {step}) is empty.")
        last = start + (count - 1) * step
        if all(isinstance(x, int) for x in (start, stop, step)):
            return D.IntDistribution(int(start), int(last), step=int(step))
        return D.FloatDistribution(float(start), float(round(last, 12)), step=float(step))
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if low is None or high is None or not low < high:
            raise ConfigError(f"{key}: interval({low}, {high}) must have low < high.")
        if log and low <= 0:
            raise ConfigError(f"{key}: tag(log, interval({low}, {high})) needs low > 0.")
        if isinstance(low, int) and isinstance(high, int):
            return D.IntDistribution(low, high, log=log)
        return D.FloatDistribution(float(low), float(high), log=log)
    return None


def _plain(value: Any, key: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{key}: choice values must be numbers, strings, booleans or null, not {value!r}.")


def suggest(
    trial: optuna.trial.Trial,
    name: str,
    dist: D.CategoricalDistribution | D.IntDistribution | D.FloatDistribution,
) -> Any:
    """Suggest ``name`` from ``dist`` on an Optuna trial through its public ``suggest_*`` methods."""
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, D.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def show(dist: D.CategoricalDistribution | D.IntDistribution | D.FloatDistribution) -> str:
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return f"choice({', '.join(map(str, dist.choices))})"
    kind = "int " if isinstance(dist, D.IntDistribution) else ""
    scale = "log " if dist.log else ""
    step = f" step {dist.step:g}" if dist.step is not None else ""
    return f"{scale}{kind}[{dist.low:g}, {dist.high:g}]{step}"
