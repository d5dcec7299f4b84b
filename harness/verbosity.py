"""How chatty the libraries underneath are, and what reaches the console.

A sweep runs dozens of trials in one process; per-trial loading bars, dataset ``map`` bars, TRL's
reference-pass bar and deprecation warnings from datasets, transformers and TRL would bury the harness's own
progress bars and results. Unless ``verbose=true``:

- :func:`set_library_verbosity` turns the libraries' bars off with their own switches (datasets'
  ``disable_progress_bars``, transformers' ``disable_progress_bar``, ``TQDM_DISABLE`` which TRL reads for its
  reference-pass bar; the harness's own bars pass ``disable`` explicitly and stay) and their info logs.
- :func:`route_console` (the command line, once Hydra has set up the trial's logging) sends the libraries'
  log records below ERROR and their Python warnings to the trial's log file (Hydra's ``<job>.log``) instead of
  the console.

Verbose or not, a warning the harness or a built-in plugin raises with :func:`warnings.warn` is printed as one
line, ``harness: warning: <message>``, without Python's source line, like every other harness warning.
Errors are always shown.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

from harness.records.redaction import redact

#: Loggers whose records below ERROR go to the log file only, unless verbose.
LIBRARY_LOGGERS = (
    "transformers",
    "trl",
    "datasets",
    "peft",
    "accelerate",
    "torch",
    "huggingface_hub",
    "bitsandbytes",
    "deepspeed",
    "py.warnings",  # the libraries' Python warnings, routed by _show
)
_TQDM_SWITCH = (
    "TQDM_DISABLE"  # read by TRL (reference-pass bar) and by tqdm for bars that do not pass disable=
)
_state = {"verbose": False, "installed": False}


def set_library_verbosity(verbose: bool) -> None:
    """Quiet datasets/transformers/TRL progress bars, info logs and FutureWarnings (unless ``verbose``)."""
    import datasets
    import transformers

    if verbose:
        os.environ.pop(_TQDM_SWITCH, None)
        datasets.enable_progress_bars()
        transformers.utils.logging.enable_progress_bar()
        transformers.utils.logging.set_verbosity_warning()
        return
    os.environ[_TQDM_SWITCH] = "1"
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for module in ("transformers", "trl", "peft", "accelerate", "datasets"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)


@functools.cache
def _harness_roots() -> tuple[str, ...]:
    """The folders of the harness package and of its built-in plugins (``harness_plugins``), as imported and
    resolved."""
    roots = {Path(__file__).parent}
    spec = importlib.util.find_spec("harness_plugins")
    if spec is not None and spec.submodule_search_locations:
        roots.update(Path(p) for p in spec.submodule_search_locations)
    return tuple(str(p) + os.sep for r in roots for p in {r, r.resolve()})


def is_harness_warning(category: type[Warning], filename: str) -> bool:
    """Whether a warning is the harness's own: ``warnings.warn`` called from ``filename``, a module of the
    harness or its built-in plugins, and not a deprecation notice."""
    if issubclass(category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
        return False
    name = str(filename)
    return any(
        name.startswith(root) or str(Path(name).resolve()).startswith(root) for root in _harness_roots()
    )


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while :func:`route_console` is installed (see the module docstring)."""
    if is_harness_warning(category, _caller()):
        text = redact(" ".join(str(message).split()))
        print(f"harness: warning: {text}", file=file or sys.stderr, flush=True)
        return
    if _state["verbose"]:
        _ORIGINAL_SHOW(message, category, filename, lineno, file, line)
        return
    root = logging.getLogger()
    if root.handlers:  # none before Hydra sets up logging: there is no log file to write to yet
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
        logging.getLogger("py.warnings").warning("%s", text)


_ORIGINAL_SHOW = warnings.showwarning


def _caller() -> str:
    """The file of the code that called ``warnings.warn`` (``showwarning`` runs inside that call): the true
    origin, where the warning's own ``filename`` is the frame ``stacklevel`` points at (a library warning may
    point into the harness's code that called the library)."""
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename == __file__ or frame.f_globals.get("__name__") == "warnings"
    ):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


class _QuietLibraries(logging.Filter):
    """Drops the libraries' records below ERROR from a console handler (they still reach the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _state["verbose"] or record.levelno >= logging.ERROR:
            return True
        top = record.name.split(".", 1)[0]
        return record.name != "py.warnings" and top not in LIBRARY_LOGGERS


def _console_handlers() -> list[logging.Handler]:
    """The root logger's handlers that write to the terminal (stdout/stderr), not to a file."""
    handlers: list[Any] = logging.getLogger().handlers
    return [
        h
        for h in handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and getattr(h, "stream", None) in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    ]


def route_console(verbose: bool) -> None:
    """The command line's console: harness warnings as one line each; unless ``verbose``, the libraries'
    warnings and log records below ERROR to the log file only. Safe to call again (each trial of a multirun
    sets up its logging anew)."""
    _state["verbose"] = bool(verbose)
    warnings.showwarning = _show
    for handler in _console_handlers():
        if not any(isinstance(f, _QuietLibraries) for f in handler.filters):
            handler.addFilter(_QuietLibraries())
