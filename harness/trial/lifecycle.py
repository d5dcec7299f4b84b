"""What surrounds a trial: signals that interrupt it, plugin hooks that must not break it, and a full disk.

- :func:`interrupts_raise`: while a trial runs, SIGINT and SIGTERM raise
  :class:`~harness.errors.TrialInterrupted` (instead of a bare ``KeyboardInterrupt`` traceback, or an
  immediate SIGTERM death that leaves a "running" record), so the runner records the trial as interrupted at
  the step it reached.
- :func:`call_hook`: each plugin's implementation of a hook is called on its own; one that raises is named in
  one warning line and in the record's ``plugin_errors``, and the trial and the sweep go on (pluggy would stop
  at the first exception and abort the caller). :class:`~harness.errors.TrialPruned` still stops a trial, once
  every implementation has been called.
- :class:`TrialHooks`: one trial's lifecycle hooks and the observers its plugins returned
  (:class:`harness.plugin.TrialObserver`), called under the same policy; the observers live and die with the
  trial.
- :func:`note_evaluator_errors`: the evaluators that failed at any checkpoint, added to ``plugin_errors``.
- :func:`disk_full`: whether an exception is a full disk (ENOSPC, or the same error wrapped by a library).
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from harness.config import distributed
from harness.errors import TrialInterrupted, TrialPruned, UserError, disk_full
from harness.records import TrialError, TrialRecord

if TYPE_CHECKING:
    from types import FrameType

    from omegaconf import DictConfig

    from harness.plugin.manager import HarnessPluginManager

INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise TrialInterrupted; the previous handlers come back
    afterwards. A no-op outside the main thread (Python delivers signals there only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise TrialInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in INTERRUPTS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _fail(plugin: str, hook: str, exc: Exception, into: TrialRecord | None) -> None:
    """Report a plugin's failure in ``hook``: one warning line, and an entry in ``into.plugin_errors``."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(
        f"harness: warning: plugin {plugin!r} failed in {hook}: {type(exc).__name__}: {message} "
        "(recorded on the trial; fix or remove the plugin)",
        file=sys.stderr,
        flush=True,
    )
    if into is not None:
        into.plugin_errors.append(
            {"plugin": plugin, "hook": hook, "type": type(exc).__name__, "message": message}
        )


def _call_each(
    calls: list[tuple[str, str, Callable[..., Any], list[str]]],
    into: TrialRecord | None,
    kwargs: dict[str, Any],
) -> list[tuple[str, Any]]:
    """Call each ``(plugin, hook, function, its parameter names)`` with the ``kwargs`` it names; returns the
    ``(plugin, result)`` of those that returned something. A failure is reported (:func:`_fail`) and the
    others still run; the first TrialPruned is raised once all have run; TrialInterrupted propagates at
    once."""
    results, pruned = [], None
    for plugin, hook, function, names in calls:
        try:
            result = function(**{arg: kwargs[arg] for arg in names if arg in kwargs})
        except TrialPruned as exc:
            pruned = pruned or exc
            continue
        except Exception as exc:  # a plugin's bug must not cost the trial or the sweep
            _fail(plugin, hook, exc, into)
            continue
        if result is not None:
            results.append((plugin, result))
    if pruned is not None:
        raise pruned
    return results


def _hook_calls(pm: HarnessPluginManager, name: str) -> list[tuple[str, str, Callable[..., Any], list[str]]]:
    """Every plugin's implementation of hook ``name``, in the order pluggy would call them."""
    impls = reversed(getattr(pm.hook, name).get_hookimpls())  # pluggy calls the last registered first
    return [(impl.plugin_name, name, impl.function, list(impl.argnames)) for impl in impls]


def call_hook(pm: HarnessPluginManager, name: str, into: TrialRecord | None, **kwargs: Any) -> list[Any]:
    """Call every plugin's implementation of hook ``name`` with ``kwargs`` (in pluggy's order) and return
    their non-None results. An implementation that raises is reported as one warning line naming the plugin
    and appended to the trial record's ``into.plugin_errors`` (``plugin``, ``hook``, ``type``, ``message``);
    the others still run.
    TrialPruned propagates once every implementation has run, TrialInterrupted at once (they are how a trial
    is meant to stop). In a multi-process trial only the main process calls the plugins
    (:mod:`harness.config.distributed`)."""
    if not distributed.is_main():
        return []
    return [result for _, result in _call_each(_hook_calls(pm, name), into, kwargs)]


#: Everything the runner passes to an observer's methods (each method gets the ones it names).
OBSERVER_ARGUMENTS = ("cfg", "step", "metrics", "selection", "planned_steps", "record")


def _parameters(method: Callable[..., Any]) -> list[str]:
    """The parameters an observer's method takes (all of :data:`OBSERVER_ARGUMENTS` when it takes ``**kwargs``
    or its signature cannot be read)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return list(OBSERVER_ARGUMENTS)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return list(OBSERVER_ARGUMENTS)
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


class TrialHooks:
    """One trial's lifecycle: the plugins' hooks, and the observers (:class:`harness.plugin.TrialObserver`)
    their ``harness_trial_observer`` returned, which belong to this trial only. At each event the observers
    are called (in the order of the implementations that returned them), then the hook; every call follows
    :func:`call_hook`'s policy, failures recorded in the trial record ``record``."""

    def __init__(self, pm: HarnessPluginManager, record: TrialRecord) -> None:
        self.pm = pm
        self.record = record
        self.observers: list[tuple[str, Any]] = []  # (plugin, observer)

    def start(self, **kwargs: Any) -> None:
        """``harness_trial_start``, then ``harness_trial_observer``: this trial's observers."""
        call_hook(self.pm, "harness_trial_start", self.record, **kwargs)
        if distributed.is_main():
            self.observers = _call_each(_hook_calls(self.pm, "harness_trial_observer"), self.record, kwargs)

    def _observe(
        self, event: str, kwargs: dict[str, Any]
    ) -> list[tuple[str, str, Callable[..., Any], list[str]]]:
        calls = []
        for plugin, observer in self.observers:
            method = getattr(observer, event, None)
            if callable(method):
                calls.append((plugin, f"TrialObserver.{event}", method, _parameters(method)))
        return calls

    def _event(self, event: str, hook: str, hook_kwargs: dict[str, Any], kwargs: dict[str, Any]) -> None:
        if not distributed.is_main():
            return
        calls = self._observe(event, kwargs) + _hook_calls(self.pm, hook)
        _call_each(calls, self.record, {**hook_kwargs, **kwargs})

    def reference_evaluated(
        self, cfg: DictConfig, metrics: Mapping[str, Any], selection: Mapping[str, Any] | None
    ) -> None:
        """The reference model's evaluation, to the observers and ``harness_reference_evaluated``."""
        self._event(
            "reference_evaluated",
            "harness_reference_evaluated",
            {"cfg": cfg},
            {"metrics": metrics, "selection": selection},
        )

    def checkpoint_evaluated(
        self,
        cfg: DictConfig,
        step: int,
        metrics: Mapping[str, Any],
        selection: Mapping[str, Any] | None,
        planned_steps: int | None,
    ) -> None:
        """A checkpoint's evaluation, to the observers and ``harness_checkpoint_evaluated``; raises
        TrialPruned (once all have seen it) when one of them prunes the trial."""
        kwargs = {"step": step, "metrics": metrics, "selection": selection, "planned_steps": planned_steps}
        self._event("checkpoint_evaluated", "harness_checkpoint_evaluated", {"cfg": cfg}, kwargs)

    def end(self, record: TrialRecord) -> None:
        """The trial's end, to the observers (then dropped) and ``harness_trial_end``; a TrialPruned raised
        this late is ignored (the trial has ended)."""
        try:
            with contextlib.suppress(TrialPruned):
                self._event("trial_end", "harness_trial_end", {}, {"record": record})
        finally:
            self.observers = []


def note_evaluator_errors(record: TrialRecord) -> None:
    """Add each evaluator failure of the trial's evaluations (the reference's, every checkpoint's, on the
    reported and the selection prompts) to ``record.plugin_errors`` as
    ``{plugin, hook: "evaluate", evaluator, step, prompts, type, message}``; the entries themselves stay on
    the checkpoints (``evaluator_errors``)."""
    evaluations = [(0, record.reference)] if record.reference is not None else []
    evaluations += [(c.step, c) for c in record.checkpoints]
    found = []
    for step, entry in evaluations:
        for prompts, part in (("test", entry), ("selection", entry.selection)):
            for error in (part.evaluator_errors if part is not None else None) or []:
                found.append(
                    {
                        "plugin": error["plugin"],
                        "hook": "evaluate",
                        "evaluator": error["evaluator"],
                        "step": step,
                        "prompts": prompts,
                        "type": error["type"],
                        "message": error["message"],
                    }
                )
    record.plugin_errors.extend(e for e in found if e not in record.plugin_errors)


def failure(exc: BaseException) -> TrialError:
    """The ``error`` of a failed trial's record: type, one-line message (a full disk says so, with the fix),
    traceback, and whether the user can fix it (``user_error``) or the disk was full (``disk_full``)."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    full = disk_full(exc)
    if full:
        where = getattr(exc, "filename", None)
        message = (
            f"disk full (no space left on device{f' writing {where}' if where else ''}); free space, or "
            "write less (train.save_checkpoints=false), then run the same command again to resume"
        )
    return TrialError(
        type=type(exc).__name__,
        message=message,
        traceback=traceback.format_exc(),
        user_error=isinstance(exc, UserError),
        disk_full=full,
    )


def process_age() -> float:
    """Seconds since this process started (the first trial's record shows the start-up in its timings)."""
    import psutil

    return round(time.time() - psutil.Process().create_time(), 3)
