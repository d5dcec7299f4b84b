"""Summary statistics evaluators report: a mean with its standard error (public API: :func:`mean_and_se`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the mean of a 1-D tensor (the error is NaN for fewer than two values)."""
    values = values.double()
    n = values.numel()
    se = float(values.std(unbiased=True) / n**0.5) if n > 1 else float("nan")
    return float(values.mean()), se
