"""What surrounds a trial: signals that interrupt it, plugin hooks that must not break it, and a full disk.

- :func:`interrupts_raise`: while a trial runs, SIGINT and SIGTERM raise :class:`~harness.errors.TrialInterrupted`
  (instead of a bare ``KeyboardInterrupt`` traceback, or an immediate SIGTERM death that leaves a "running"
  record), so the runner records the trial as interrupted at the step it reached.
- :func:`call_hook`: each plugin's implementation of a hook is called on its own; one that raises is named in
  one warning line and in the record's ``plugin_errors``, and the trial and the sweep go on (pluggy would stop
  at the first exception and abort the caller). :class:`~harness.errors.TrialPruned` still stops a trial.
- :func:`disk_full`: whether an exception is a full disk (ENOSPC, or the same error wrapped by a library).
"""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

from harness.config import distributed
from harness.errors import TrialInterrupted, TrialPruned, UserError
from harness.records import TrialError, TrialRecord

INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise TrialInterrupted; the previous handlers come back afterwards.
    A no-op outside the main thread (Python delivers signals there only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise TrialInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in INTERRUPTS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def call_hook(pm: Any, name: str, into: TrialRecord | None, **kwargs: Any) -> list[Any]:
    """Call every plugin's implementation of hook ``name`` with ``kwargs`` (in pluggy's order) and return their
    non-None results. An implementation that raises is reported as one warning line naming the plugin and
    appended to the trial record's ``into.plugin_errors`` (``plugin``, ``hook``, ``type``, ``message``); the
    others still run.
    TrialPruned and TrialInterrupted propagate (they are how a trial is meant to stop). In a multi-process trial
    only the main process calls the plugins (:mod:`harness.config.distributed`)."""
    results = []
    if not distributed.is_main():
        return results
    for impl in reversed(getattr(pm.hook, name).get_hookimpls()):  # pluggy calls the last registered first
        try:
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames if arg in kwargs})
        except (TrialPruned, TrialInterrupted):
            raise
        except Exception as exc:  # a plugin's bug must not cost the trial or the sweep
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(
                f"harness: warning: plugin {impl.plugin_name!r} failed in {name}: {type(exc).__name__}: {message} "
                "(recorded on the trial; fix or remove the plugin)",
                file=sys.stderr,
                flush=True,
            )
            if into is not None:
                into.plugin_errors.append(
                    {"plugin": impl.plugin_name, "hook": name, "type": type(exc).__name__, "message": message}
                )
            continue
        if result is not None:
            results.append(result)
    return results


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a full disk: ENOSPC or EDQUOT."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


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
