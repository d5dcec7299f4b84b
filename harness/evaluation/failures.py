"""What an evaluator's failure or odd result costs: its own metrics at that checkpoint, never the trial.

The evaluator loop (:func:`harness.evaluation.context.evaluate_checkpoint`) hands each evaluator's outcome to
:class:`Outcomes`, which keeps one checkpoint's metrics and what went wrong, each attributed to the evaluator
and the plugin that registered it:

- an evaluator that raises loses its metrics at this checkpoint; the others' are kept. One warning line names
  the evaluator, its plugin, the exception's type and message; ``errors`` gets
  ``{evaluator, plugin, type, message}`` (the runner stores them as the checkpoint's ``evaluator_errors`` and
  the trial's ``plugin_errors``). What no evaluator can be blamed for still stops the trial
  (:func:`stops_the_trial`: a full disk, exhausted host memory, :class:`harness.errors.TrialInterrupted`), as
  does a failure of the harness itself outside ``evaluate`` (storing the reference cache, the readable
  samples).
- a key another evaluator already returned at this checkpoint is not kept (the first value stays): one warning
  line, and an ``errors`` entry of type ``DuplicateMetric`` naming both evaluators. (Declared names are unique
  across evaluators, checked at registration; this catches undeclared keys.)
- a metric the evaluator withholds (:meth:`harness.plugin.EvalContext.withhold`: it has no value that
  means anything, e.g. a judge whose verdicts were unusable) is absent from the metrics, its reason kept as
  the checkpoint's ``withheld_metrics`` (key -> why), with one warning line (:func:`warn_withheld`).
- a NaN or infinite value is kept as it is (JSON ``NaN``/``Infinity``, which the leaderboard reads as missing
  or infinite), its key listed in ``nonfinite`` (the checkpoint's ``nonfinite_metrics``: key -> evaluator),
  with one warning line naming the evaluator and the metric. A declared standard error (``Metric.se``) may be
  NaN silently: :func:`harness.plugin.mean_and_se` returns NaN for fewer than two values.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import disk_full

if TYPE_CHECKING:
    from collections.abc import Mapping

    from harness.plugin.specs import EvaluatorSpec


def stops_the_trial(exc: BaseException) -> bool:
    """Whether an evaluator's exception must stop the trial rather than cost its metrics: host memory
    exhausted, or a full disk (ENOSPC, EDQUOT, or that error wrapped by a library), which the runner records
    with its fix and which would fail everything after it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return True
        current = current.__cause__ or current.__context__
    return disk_full(exc)


def _warn(text: str) -> None:
    print(f"harness: warning: {text}", file=sys.stderr, flush=True)


def _message(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _who(spec: EvaluatorSpec) -> str:
    return f"evaluator {spec.name!r}" + (f" of plugin {spec.plugin!r}" if spec.plugin else "")


@dataclass
class Outcomes:
    """One checkpoint's metrics, gathered evaluator by evaluator,
    with what went wrong (see the module docstring).

    ``where`` says which evaluation the warnings are about (``"step 4"``, ``"step 0 (reference), selection
    prompts"``)."""

    where: str
    metrics: dict[str, float] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    nonfinite: dict[str, str] = field(default_factory=dict)
    owners: dict[str, EvaluatorSpec] = field(default_factory=dict)

    def failed(self, spec: EvaluatorSpec, exc: Exception) -> None:
        """``spec`` raised ``exc``: record it and say so in one line;
        its metrics are missing at this checkpoint."""
        entry = {
            "evaluator": spec.name,
            "plugin": spec.plugin,
            "type": type(exc).__name__,
            "message": _message(exc),
        }
        self.errors.append(entry)
        _warn(
            f"{_who(spec)} failed at {self.where}: {entry['type']}: {entry['message']} (its metrics are "
            "missing there; recorded on the trial; fix or remove the plugin)"
        )

    def add(self, spec: EvaluatorSpec, result: Mapping[str, float]) -> None:
        """Keep ``spec``'s metrics: a key another evaluator returned first is refused,
        a non-finite value noted."""
        for key, value in result.items():
            first = self.owners.get(key)
            if first is not None:
                message = (
                    f"metric {key!r} was already returned by {_who(first)}; this evaluator's value "
                    f"({value!r}) was not kept"
                )
                self.errors.append(
                    {
                        "evaluator": spec.name,
                        "plugin": spec.plugin,
                        "type": "DuplicateMetric",
                        "message": message,
                    }
                )
                _warn(f"{_who(spec)} at {self.where}: {message}; rename the metric (Metric(name=...))")
                continue
            self.owners[key] = spec
            self.metrics[key] = value
            if not math.isfinite(value) and not _is_standard_error(spec, key):
                self.nonfinite[key] = spec.name
                _warn(
                    f"{_who(spec)} returned {value} for metric {key!r} at {self.where} (kept as {value}; "
                    "listed in the checkpoint's nonfinite_metrics)"
                )


def warn_withheld(spec: EvaluatorSpec | None, step: int, selection: bool, metric: str, reason: str) -> None:
    """One warning line: ``spec`` withheld ``metric`` at ``step`` (selection prompts) for ``reason``."""
    who = _who(spec) if spec is not None else "an evaluator"
    where = f"step {step}{', selection prompts' if selection else ''}"
    _warn(f"{who} withheld {metric} at {where}: {reason} (recorded as the checkpoint's withheld_metrics)")


def _is_standard_error(spec: EvaluatorSpec, key: str) -> bool:
    """Whether ``key`` is the standard error (``Metric.se``) of one of ``spec``'s declared metrics."""
    return any(m.se == key for m in spec.metrics)
