"""What a verdict is (:mod:`harness.leaderboard.analysis.verdict` decides it): a method's place in it
(:class:`MethodVerdict`), the verdict itself (:class:`Verdict`, whose :meth:`Verdict.to_dict` is
``verdict.json``), what it reads of a leaderboard (:class:`Leaderboard`) and its margin setting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from harness.config.sweep_checks import DEFAULT_VERDICT_MARGIN, VERDICT_MARGIN_KEY, check_verdict_margin
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.leaderboard.analysis.columns import Declarations
    from harness.records import TrialRecord

DEFAULT_MARGIN = DEFAULT_VERDICT_MARGIN
MARGIN_KEY = VERDICT_MARGIN_KEY
STATES = ("decided", "undecided", "one seed", "one method", "none")


class Leaderboard(Protocol):
    """What a verdict reads of a :class:`harness.leaderboard.board.Leaderboard` (the analysis imports nothing
    of the leaderboard outside itself)."""

    title: str
    kl_budget: float | None
    records: list[TrialRecord]
    trials: pd.DataFrame
    checkpoints: pd.DataFrame
    swept: list[str]
    objective_name: str | None
    objective_direction: str
    declarations: Declarations

    def baseline(self) -> tuple[float | None, float | None]: ...  # noqa: D102 (the board's)

    def objective_se_column(self) -> str | None: ...  # noqa: D102 (the board's)


class VerdictError(ConfigError, ValueError):
    """A verdict was asked of something that cannot give one (one line, with the fix): a user error, so the
    command line and the end of a multirun report it as one (exit status 2)."""


@dataclass
class MethodVerdict:
    """One method in the verdict: its chosen setting (text and overrides), seeds, diverged seeds, selection
    mean, test mean with its 95% interval, the difference from the recommended method (recommended minus
    this; its standard error, Holm-adjusted p, the smallest difference detectable at 80% power), its status,
    P(best) and the trials behind it."""

    method: str
    setting: str
    overrides: list[str]
    n_seeds: int
    diverged: int
    selection_mean: float
    selected_on: str
    test_mean: float
    test_low: float
    test_high: float
    status: str = "recommended"
    diff: float = math.nan
    diff_se: float = math.nan
    p: float = math.nan
    p_holm: float = math.nan
    detectable: float = math.nan
    p_best: float = math.nan
    seeds_to_settle: int | None = None
    prompt_factor: float | None = None
    trials: list[str] = field(default_factory=list)
    kl_mean: float = math.nan


@dataclass
class Verdict:
    """The verdict of a leaderboard (see the module docstring); :meth:`to_dict` is ``verdict.json``."""

    state: str
    objective: str | None
    direction: str = "maximize"
    recommended: MethodVerdict | None = None
    others: list[MethodVerdict] = field(default_factory=list)
    margin_share: float = DEFAULT_MARGIN
    margin: float = math.nan
    base: float | None = None
    gain: float = math.nan
    gain_low: float = math.nan
    gain_high: float = math.nan
    detectable: float = math.nan
    confidence: float = math.nan
    test: str = ""
    commands: list[str] = field(default_factory=list)
    kl_budget: float | None = None
    headline: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[MethodVerdict]:
        """The recommended method first, then the others."""
        return [*([self.recommended] if self.recommended else []), *self.others]

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON-able data (NaN as None)."""
        return _clean(asdict(self) | {"methods": [asdict(m) for m in self.methods]})

    def csv_row(self) -> dict[str, Any]:
        """One flat row (``verdict.csv``): the state, the recommended method, setting, test mean and interval,
        gain, margin, detectable difference, confidence and each method's status."""
        rec = self.recommended
        row: dict[str, Any] = {
            "state": self.state,
            "objective": self.objective,
            "recommended": rec.method if rec else None,
            "setting": rec.setting if rec else None,
            "test_mean": rec.test_mean if rec else None,
            "test_low": rec.test_low if rec else None,
            "test_high": rec.test_high if rec else None,
            "gain_over_base": self.gain,
            "margin": self.margin,
            "detectable": self.detectable,
            "confidence": self.confidence,
        }
        for m in self.others:
            row[f"status_{m.method}"] = m.status
        return _clean(row)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def margin_of(records: Sequence[TrialRecord]) -> float:
    """The margin share the records' config asks for (``leaderboard.verdict_margin``), else the default."""
    for record in records:
        board = (record.config or {}).get("leaderboard") or {}
        if board.get("verdict_margin") is not None:
            return check_margin(board["verdict_margin"])
    return DEFAULT_MARGIN


def check_margin(value: Any, key: str = MARGIN_KEY) -> float:
    """``value`` as a margin share in (0, 1), else one line naming the problem and the fix (the check the
    setting's declaration runs before any compute: :func:`harness.config.sweep_checks.check_verdict_margin`).

    :raises VerdictError: not a number strictly between 0 and 1."""
    try:
        return check_verdict_margin(value, key)
    except ConfigError as exc:
        raise VerdictError(str(exc)) from None


# -- evidence -------------------------------------------------------------------------------------------
