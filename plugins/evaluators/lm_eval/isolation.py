"""Keeping lm-eval from changing the process it runs in: its logs and progress bars, and the random states
it seeds."""

from __future__ import annotations

import contextlib
import io
import logging
import random
import sys
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def quiet_lm_eval(verbose: bool) -> Iterator[None]:
    """Silence lm-eval's logs and progress bars unless ``verbose``; replay them if an exception escapes.

    lm-eval's progress bars have no switch, so stderr is captured while it runs.
    """
    if verbose:
        from lm_eval.utils import setup_logging

        setup_logging(logging.INFO)
        yield
        return
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's random states afterwards (lm-eval seeds all three)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
