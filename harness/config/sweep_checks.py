"""Checks of a whole run that no single job's config shows: a setting given twice or a sweep that lists a
value twice (:func:`check_repeated_overrides`), a knob that means different things to the methods of one
grid, and the leaderboard's matched-KL levels and verdict margin.

:func:`knob_meaning_warning` reads each method's :class:`~harness.plugin.settings.Hyperparameter` help: a grid
such as ``-m method=dpo,ipo,orpo method.beta=0.05,0.1`` sets DPO's KL strength, IPO's tau and ORPO's lambda to
the same numbers, which is rarely what a comparison wants, so the run is announced with one warning line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.plugin.manager import HarnessPluginManager

MATCHED_KL_KEY = "leaderboard.matched_kl"
DEFAULT_MATCHED_KL = (1.0, 2.0, 5.0)
VERDICT_MARGIN_KEY = "leaderboard.verdict_margin"
DEFAULT_VERDICT_MARGIN = 0.2  # the verdict's tie margin, as a share of the best method's gain over the base
DEFAULT_MATCHED_KL_MAX_GAP = 1.0  # leaderboard.matched_kl_max_gap of records older than the setting
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=,+-]{0,199}")  # one path component, never .. or absolute


def check_matched_kl(value: Any, key: str = MATCHED_KL_KEY) -> tuple[float, ...]:
    """The KL levels (nats per sequence) at which the leaderboard compares methods, sorted; ``null`` or
    ``[]``: none (no matched-KL table).

    :raises ConfigError: not a list of finite numbers > 0.
    """
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(
            f"{key}={value!r} is invalid; give a list of KL values in nats > 0, e.g. [1, 2, 5], or [] "
            "for none."
        )
    levels = list(value)
    bad = [
        v for v in levels if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v <= 0
    ]
    if bad:
        raise ConfigError(
            f"{key}={levels!r} is invalid: {bad[0]!r} is not a KL value in nats > 0; give a list such "
            "as [1, 2, 5]."
        )
    return tuple(sorted({float(v) for v in levels}))


def check_verdict_margin(value: Any, key: str = VERDICT_MARGIN_KEY) -> float:
    """``value`` as the verdict's margin share in (0, 1) (:mod:`harness.leaderboard.analysis.verdict`).

    :raises ConfigError: not a number strictly between 0 and 1, in one line naming the key and the fix."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and 0 < float(value) < 1
    if not ok:
        raise ConfigError(
            f"{key}={value!r} is not a share in (0, 1); give the share of the best method's gain over the "
            f"base model inside which two methods count as tied, e.g. {key}={DEFAULT_VERDICT_MARGIN}."
        )
    return float(value)


def _meaning(help_text: str) -> str:
    """The meaning part of a hyperparameter's help: the text before its first ``;``
    (the ranges come after)."""
    return help_text.split(";", 1)[0].strip() or "(no description)"


def knob_meanings(
    jobs: Sequence[tuple[str, Iterable[str]]], pm: HarnessPluginManager
) -> dict[str, dict[str, str]]:
    """For each ``method.<knob>`` that the jobs set (``(method name, knobs set on its command line)`` per job)
    for several methods that declare it with different meanings: method -> meaning, in the order first
    seen."""
    methods_by_knob: dict[str, list[str]] = {}
    for method, knobs in jobs:
        for knob in knobs:
            methods_by_knob.setdefault(knob, [])
            if method not in methods_by_knob[knob]:
                methods_by_knob[knob].append(method)
    found: dict[str, dict[str, str]] = {}
    for knob, methods in methods_by_knob.items():
        meanings = {}
        for method in methods:
            declared = pm.method(method).hyperparameter(knob)
            if declared is not None:
                meanings[method] = _meaning(declared.help)
        if len(set(meanings.values())) > 1:
            found[knob] = meanings
    return found


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def knob_meaning_warning(jobs: Sequence[tuple[str, Iterable[str]]], pm: HarnessPluginManager) -> str | None:
    """One warning line when a grid sets a knob whose meaning differs between its methods (see
    :func:`knob_meanings`), naming each method's meaning (methods that share one together) and the fix: one
    grid per meaning; None when there is none."""
    found = knob_meanings(jobs, pm)
    if not found:
        return None
    parts, fix = [], ""
    for knob, meanings in found.items():
        groups: dict[str, list[str]] = {}
        for method, meaning in meanings.items():
            groups.setdefault(meaning, []).append(method)
        listed = ", ".join(f"{_and(methods)}: {meaning}" for meaning, methods in groups.items())
        parts.append(f"method.{knob} means different things here: {listed}")
        if not fix:
            first, *others = list(groups.values())
            rest = _and([",".join(group) for group in others])
            fix = (
                f"-m method={','.join(first)} method.{knob}=... and "
                f"{'a second sweep' if len(others) == 1 else 'one sweep each'} for {rest}"
            )
    return f"{'; '.join(parts)}; sweep each method's own grid (e.g. {fix})"


def method_knobs(job: Sequence[str]) -> set[str]:
    """The method hyperparameters a job's overrides set (``method.<knob>=...``, not ``method.trl.*``)."""
    knobs = set()
    for override in job:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith("method.") and "=" in override and "." not in key[len("method.") :]:
            knobs.add(key[len("method.") :])
    return knobs


def check_sweep_name(name: Any) -> str:
    """``sweep_name`` as given, if it is one safe directory name (letters, digits, ``_.=,+-``; not starting
    with a dot; at most 200 characters). :raises ConfigError: anything that could place files elsewhere
    (``../x``, ``/tmp/x``, ``a/b``)."""
    text = str(name)
    if not SWEEP_NAME.fullmatch(text) or ".." in text:
        raise ConfigError(
            f"sweep_name={text!r} is not a plain directory name (it becomes multirun/<sweep_name>); use "
            "letters, digits and _ . = , + - only, e.g. sweep_name=dpo-vs-simpo."
        )
    return text


def check_repeated_overrides(overrides: Iterable[Any]) -> None:
    """Refuse a command line that sets one key to two values (``method=dpo method=simpo``: Hydra would
    silently keep the last) or sweeps a value twice (``-m method=dpo,dpo``: the same trial would train twice).
    ``overrides``: Hydra's parsed overrides (``hydra.core.override_parser.types.Override``).

    :raises ConfigError: one line naming the key and the fix."""
    seen: dict[str, str] = {}
    for override in overrides:
        key = override.get_key_element()
        if key in seen and seen[key] != override.input_line:  # the same override twice changes nothing
            raise ConfigError(
                f"{key} is given twice ({seen[key]} and {override.input_line}): Hydra would silently keep "
                f"the last one; keep one (to compare both, sweep them: -m {key}=a,b)."
            )
        seen[key] = override.input_line
        if override.is_choice_sweep() or override.is_range_sweep():
            values = list(override.sweep_string_iterator())
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ConfigError(
                    f"{override.input_line} lists {', '.join(twice)} more than once: the same trial would "
                    "train again; list each value once."
                )
