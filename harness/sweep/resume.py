"""Re-running a grid multirun resumes it, and two processes never write one trial.

A trial's identity is the hash of its resolved config without the keys that only place or present it
(:data:`NOT_IN_HASH`). Re-running the same ``python -m harness -m ...`` command (same ``sweep_name``) skips
every job whose ``trial.json`` is completed with the same hash, runs again the failed, interrupted, pruned and
never-finished ones (their earlier outcomes kept in the new record's ``attempts``), and never overwrites a
completed record of another config: that is refused before any compute, with the fix (another ``sweep_name``,
or ``--force``, which runs every trial again). ``--force`` is the command line's spelling of ``rerun=all``.

Locks: the launching process holds ``<sweep dir>/.sweep.lock`` for the whole multirun (a second multirun on
the same directory stops with one line naming the first one's pid; which sweep owns a directory is
:mod:`harness.sweep.ownership`'s rule), and each trial's process holds
``<trial dir>/trial.lock`` while it runs. Both are ``flock`` locks, released by the kernel when a process
dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from harness.errors import ConfigError, UserError
from harness.records import RECORD_NAME, RecordError, TrialError, TrialRecord, read_record
from harness.records.redaction import redact_value

NOT_IN_HASH = (
    "sweep_name",
    "leaderboard",
    "verbose",
    "rerun",
    "tracking",
)  # keys that place, present or watch a trial
SWEEP_LOCK = ".sweep.lock"
TRIAL_LOCK = "trial.lock"
RERUN_CHOICES = ("missing", "all")

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows: no locking)
    fcntl = None  # type: ignore[assignment]


class Locked(UserError):
    """Another live process holds the lock of a sweep or trial directory."""


def config_hash(config: Mapping[str, Any]) -> str:
    """A short hash of a resolved trial config (a record's ``config``),
    the keys in :data:`NOT_IN_HASH` left out."""
    kept = {k: v for k, v in redact_value(config).items() if k not in NOT_IN_HASH}
    text = json.dumps(kept, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def completed_record(trial_dir: Path) -> TrialRecord | None:
    """The trial record in ``trial_dir`` if it is readable and completed, else None."""
    try:
        record = read_record(trial_dir / RECORD_NAME)
    except RecordError:
        return None
    return record if record.status == "completed" else None


def earlier_attempts(trial_dir: Path) -> list[dict[str, Any]]:
    """The history of this trial's earlier runs, oldest first, for the new record's ``attempts``: the
    attempts its last record kept, then that record's own (status, reason, step, host, start and end times);
    [] when there is no readable record."""
    try:
        record = read_record(trial_dir / RECORD_NAME)
    except RecordError:
        return []
    error = record.error or TrialError()
    last = {
        "status": record.status,
        "reason": error.message,
        "step": error.step,
        "host": record.host.hostname if record.host is not None else None,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }
    return [*record.attempts, last]


def _describe(config: Mapping[str, Any]) -> str:
    method = (config.get("method") or {}).get("name")
    return f"method={method} seed={config.get('seed')}"


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if not prefix and key in NOT_IN_HASH:
            continue
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(before: Mapping[str, Any], after: Mapping[str, Any], most: int = 4) -> str:
    """What differs between two resolved trial configs, as ``key: old -> new`` (secrets masked; at most
    ``most`` keys, then how many more), for a message that refuses to replace a finished result."""
    old, new = _flat(redact_value(before)), _flat(redact_value(after))
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, "<unset>") != new.get(k, "<unset>"))
    shown = [f"{k}: {old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r}" for k in keys[:most]]
    more = f", and {len(keys) - most} more" if len(keys) > most else ""
    return "; ".join(shown) + more


def check_sweep_dir(sweep_dir: Path, configs: Sequence[Mapping[str, Any]], rerun: str) -> int:
    """Before a grid multirun: the number of its jobs already completed with the same config (to be skipped).

    :raises ConfigError: job ``i``'s directory holds a completed record of another config (``rerun=missing``):
        running would replace a finished result.
    """
    done = 0
    for num, config in enumerate(configs):
        record = completed_record(sweep_dir / str(num))
        if record is None:
            continue
        if config_hash(record.config or {}) == config_hash(config):
            done += 1
        elif rerun != "all":
            raise ConfigError(
                f"{sweep_dir / str(num) / RECORD_NAME} is a completed trial of another config "
                f"({_describe(record.config or {})}; job {num} is now {_describe(config)}; changed: "
                f"{config_changes(record.config or {}, config)}); use another sweep_name=..., or add --force "
                "to run every trial again and replace it."
            )
    return done


def _hold(path: Path, what: str, shared: bool = False) -> IO[str]:
    """Open and ``flock`` ``path`` (non-blocking; ``shared``: a lock other shared holders may hold too),
    writing our pid into it; raises Locked naming the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise Locked(
            f"{what} is being written by another harness process (pid {holder}); wait for it to end, or "
            "use another sweep_name=..."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


_HELD: list[IO[str]] = []  # sweep locks held for the life of this process


def claim_sweep(sweep_dir: Path, shared: bool = False) -> None:
    """Hold ``<sweep_dir>/.sweep.lock`` until this process exits (no-op without ``fcntl``): exclusively for a
    grid, ``shared`` for a worker of an Optuna study (several workers may run one study; a grid may not run
    beside them).

    :raises Locked: another live process holds it (exclusively, or shared when we want it exclusively)."""
    if fcntl is not None:
        _HELD.append(_hold(sweep_dir / SWEEP_LOCK, f"multirun directory {sweep_dir}", shared))


@contextlib.contextmanager
def trial_lock(trial_dir: Path) -> Iterator[None]:
    """Hold ``<trial_dir>/trial.lock`` for the block. :raises Locked: another live process holds it."""
    if fcntl is None:
        yield
        return
    handle = _hold(trial_dir / TRIAL_LOCK, f"trial directory {trial_dir}")
    try:
        yield
    finally:
        handle.close()
