"""Finding trials whose process died.

Optuna's heartbeat (``RDBStorage(heartbeat_interval=...)``) only covers ``study.optimize``; with ask-and-tell
a trial whose process was killed stays RUNNING forever. The harness keeps its own evidence on each running
trial: which process asked it (the sweeper), which process runs it (set when the trial starts) and a heartbeat
the running process refreshes. A RUNNING trial is lost when its processes are gone (same host: checked by pid
and start time, so a reused pid does not fool it) or its heartbeat is older than ``stale_after_s`` (any host).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import psutil

from harness.sweep import study as st

if TYPE_CHECKING:
    import optuna


def this_process() -> dict[str, Any]:
    """The identity of the current process: host, pid and start time."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": round(psutil.Process().create_time(), 3),
    }


def process_alive(identity: Mapping[str, Any] | None) -> bool | None:
    """Whether the process ``identity`` describes still runs;
    None when it ran on another host (unknowable)."""
    if not identity or identity.get("host") != socket.gethostname():
        return None
    try:
        proc = psutil.Process(int(identity["pid"]))
        return (
            abs(proc.create_time() - float(identity["started"])) < 1.0
            and proc.status() != psutil.STATUS_ZOMBIE
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError, TypeError):
        return False


def lost_reason(
    trial: optuna.trial.FrozenTrial, stale_after_s: float, now: float | None = None
) -> str | None:
    """Why the RUNNING ``trial`` (a FrozenTrial) is considered lost, or None if it may still be running."""
    attrs = trial.user_attrs
    runner, owner = attrs.get(st.ATTR_RUNNER), attrs.get(st.ATTR_OWNER)
    beat = attrs.get(st.ATTR_HEARTBEAT)
    now = time.time() if now is None else now
    alive = [process_alive(p) for p in (runner, owner) if p]
    if alive and all(a is False for a in alive):
        who = runner or owner
        return f"its process (pid {who['pid']} on {who['host']}) is gone"
    last = beat if beat is not None else (trial.datetime_start.timestamp() if trial.datetime_start else None)
    if last is not None and now - float(last) > stale_after_s and not any(a is True for a in alive):
        return f"no heartbeat for {now - float(last):.0f} s (limit {stale_after_s:g} s)"
    return None
