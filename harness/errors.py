"""Errors the harness raises, under one base class.

A :class:`UserError` is something the user can fix (bad config, unknown method, malformed data, missing
model). Its message is one line that names the problem and the fix; the command line prints it without a
traceback and exits with status 2, before any compute. Everything else is a bug or a failed trial.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class UserError(HarnessError):
    """A problem the user can fix; the message is one line naming the problem and the fix."""


class ConfigError(UserError):
    """The composed configuration is invalid (unknown option, out-of-range value, ...)."""


class UnknownNameError(ConfigError):
    """A name (method, evaluator, data source, option) that no registry knows."""

    def __init__(self, kind: str, name: str, available: Iterable[str], hint: str = "") -> None:
        choices = sorted(available)
        # Compare the last dotted component, so that "method.bta" suggests "method.beta", not "method.trl".
        by_leaf: dict[str, list[str]] = {}
        for choice in choices:
            by_leaf.setdefault(choice.rsplit(".", 1)[-1], []).append(choice)
        leaves = difflib.get_close_matches(name.rsplit(".", 1)[-1], list(by_leaf), n=3, cutoff=0.6)
        close = [choice for leaf in leaves for choice in by_leaf[leaf]]
        parts = [f"Unknown {kind} '{name}'."]
        if close:
            parts.append(f"Did you mean: {', '.join(close)}?")
        shown = ", ".join(choices[:15]) + (f", ... ({len(choices) - 15} more)" if len(choices) > 15 else "")
        parts.append(f"Available: {shown or '(none)'}.")
        if hint:
            parts.append(hint)
        super().__init__(" ".join(parts))
        self.kind, self.name, self.available = kind, name, choices


class DataError(UserError):
    """Preference data is missing, in an unknown format, or malformed (the message gives row numbers)."""


class ModelError(UserError):
    """A model or tokenizer cannot be found or loaded."""


class PluginError(UserError):
    """A plugin failed to import or does not satisfy the hook specifications."""


class TrialFailed(HarnessError):
    """Training diverged or otherwise failed in a way that is recorded as a failed trial (e.g. NaN loss)."""


class TrialPruned(HarnessError):
    """Raised from ``harness_checkpoint_evaluated`` to stop a trial early; it is recorded as pruned."""


class TrialInterrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM arrived while a trial ran: it is recorded as interrupted, the leaderboard of
    what is complete is written, and the run exits with ``128 + signum`` (130 or 143). A ``BaseException``,
    like ``KeyboardInterrupt``, so that no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        super().__init__(self.signal_name)

    @property
    def exit_code(self) -> int:
        """The shell's exit status for a process ended by this signal."""
        return 128 + self.signum


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
