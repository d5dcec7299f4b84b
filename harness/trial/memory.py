"""Peak memory of a trial's training, measured rather than assumed.

A background thread samples the process's resident set size; on CUDA the allocator's peak is read too.
Sampling pauses while checkpoints are evaluated, so the figure is the method's training memory and the
seed's "models in memory" claim can be checked against it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psutil
import torch

from harness.records import PeakMemory

_MB = 1024 * 1024


class MemoryMonitor:
    """Samples RSS every ``interval`` seconds between ``start`` and ``stop``; ``paused()`` skips a region."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self.baseline_rss = 0
        self.peak_rss = 0
        self.cuda_peak = 0

    def _sample(self) -> None:
        if not self._paused.is_set():
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called (its figures can then be read with :meth:`stop`)."""
        return self._thread is not None

    def start(self) -> MemoryMonitor:
        """Begin sampling; the current RSS is the baseline."""
        self.baseline_rss = self.peak_rss = self._process.memory_info().rss
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._run, name="harness-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> PeakMemory:
        """Stop sampling; returns the figures for the trial record (MB)."""
        self._sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        result = PeakMemory(
            rss_peak_mb=round(self.peak_rss / _MB, 1),
            rss_baseline_mb=round(self.baseline_rss / _MB, 1),
            rss_added_mb=round((self.peak_rss - self.baseline_rss) / _MB, 1),
        )
        if torch.cuda.is_available():
            self.cuda_peak = max(self.cuda_peak, torch.cuda.max_memory_allocated())
            result.cuda_peak_mb = round(self.cuda_peak / _MB, 1)
        return result

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Do not count memory used inside this block (checkpoint evaluation)."""
        self._sample()
        self._paused.set()
        cuda = torch.cuda.is_available()
        if cuda:
            self.cuda_peak = max(self.cuda_peak, torch.cuda.max_memory_allocated())
        try:
            yield
        finally:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            self._paused.clear()
