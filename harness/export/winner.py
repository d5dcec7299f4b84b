"""The verdict's winner (``python -m harness.export SWEEP... --verdict``): the leaderboard of the sweeps, its
verdict (:func:`harness.leaderboard.analysis.verdict.decide`), and the one trial of the recommended method's
setting to export.

The recommended method's setting was run with one or more seeds; the trial exported is the seed whose
*selection* value (``selection_objective``, measured on the selection prompts at the trial's chosen
checkpoint) is best, at that checkpoint (the leaderboard's ``step``). No test value takes part: the test
prompts only report. A setting with no selection values measured exports its first seed's trial, and says so.
Every problem (no records, nothing that completed without diverging, a verdict not decided under
``--require-decided``, no saved checkpoint) is one :class:`~harness.export.choose.ExportError` line, raised
before any weights are read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.export.choose import (
    Chosen,
    ExportError,
    choose_checkpoint,
    ranked_step,
    read_trial,
    saved_checkpoints,
)
from harness.records import RECORD_NAME, find_record_files

if TYPE_CHECKING:
    from harness.leaderboard.analysis.verdict import Verdict
    from harness.leaderboard.board import Leaderboard

SELECTION = "selection_objective"


@dataclass(frozen=True)
class Winner:
    """What ``--verdict`` exports: the verdict, its leaderboard, the sweeps it was built from, the chosen
    checkpoint, the trial's selection value there (None: not measured) and how the trial was picked, in
    words."""

    verdict: Verdict
    board: Leaderboard
    paths: tuple[Path, ...]
    chosen: Chosen
    selection: float | None
    picked: str


def load_board(paths: Sequence[Path]) -> Leaderboard:
    """The leaderboard of the records under ``paths``, refusing paths that do not exist or hold no record and
    records from setups that are not ranked together."""
    from harness.leaderboard.board import load_leaderboard

    for path in paths:
        if not path.exists():
            raise ExportError(f"no such file or directory: {path}")
    if not find_record_files(list(paths)):
        shown = " ".join(map(str, paths))
        raise ExportError(
            f"{shown} holds no trial record ({RECORD_NAME}); pass the sweep directories (multirun/<sweep>) "
            "whose verdict to export."
        )
    board = load_leaderboard(list(paths))
    if board.groups:
        raise ExportError(
            "the trials under these paths ran on different model, data or evaluation settings and have no "
            "verdict together; pass the sweeps of one setup."
        )
    return board


def usable(trials: pd.DataFrame) -> pd.Series:
    """Whether each trial completed without diverging (what a verdict can recommend)."""
    from harness.leaderboard.analysis import seeds

    if trials.empty:
        return pd.Series(dtype=bool)
    return (trials["status"] == "completed") & ~seeds.diverged(trials)


def _check_usable(board: Leaderboard, paths: Sequence[Path]) -> None:
    shown = " ".join(map(str, paths))
    if not usable(board.trials).any():
        counts = board.trials["status"].value_counts().to_dict() if not board.trials.empty else {}
        seen = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials"
        raise ExportError(
            f"no completed trial that did not diverge under {shown} ({seen}): nothing to recommend; see "
            f"why in its leaderboard (python -m harness.leaderboard {shown}), fix the cause (a diverged "
            "trial: a lower method.learning_rate or a higher method.beta) and run the sweep again."
        )


def refuse_undecided(verdict: Verdict) -> None:
    """Raise the one line that refuses ``verdict`` under ``--require-decided``, with what would settle it."""
    rec = verdict.recommended
    leading = f" ({rec.method} leads on the selection prompts)" if rec else ""
    fix = (
        f"run what would settle it ({verdict.commands[0]})"
        if verdict.commands
        else "run more seeds or prompts (the leaderboard's verdict says how many)"
    )
    raise ExportError(
        f"the verdict is {verdict.state!r}, not decided{leading}; {fix}, or export the leading method "
        "without --require-decided."
    )


def pick_trial(board: Leaderboard, trial_ids: Sequence[str]) -> tuple[pd.Series, float | None, str]:
    """Among ``trial_ids`` (a setting's seeds), the completed, non-diverged trial with the best selection
    value at its chosen checkpoint: its leaderboard row, that value (None: none measured) and the rule, in
    words."""
    trials = board.trials
    rows = trials[trials["trial_id"].astype(str).isin(list(trial_ids)) & usable(trials)]
    if rows.empty:
        raise ExportError(
            f"every trial of the recommended setting ({', '.join(trial_ids)}) failed or diverged; "
            "nothing to export."
        )
    values = pd.to_numeric(rows[SELECTION], errors="coerce") if SELECTION in rows else None
    n = len(rows)
    if values is None or not values.notna().any():
        row = rows.iloc[0]
        return (
            row,
            None,
            (
                f"the first of its {n} seed(s): no selection value was measured "
                "(eval.selection.num_prompts=0), and a test value never chooses"
            ),
        )
    best = values.idxmin() if board.objective_direction == "minimize" else values.idxmax()
    rule = "lowest" if board.objective_direction == "minimize" else "highest"
    return (
        rows.loc[best],
        float(values.loc[best]),
        (
            f"the {rule} selection value of its {n} completed seed(s), at each seed's chosen checkpoint "
            "(measured on the selection prompts; no test value took part)"
        ),
    )


def choose_winner(
    paths: Sequence[Path],
    margin_share: float | None = None,
    require_decided: bool = False,
    step: str | None = None,
) -> Winner:
    """The verdict of the sweeps under ``paths`` and the checkpoint of its recommended setting to export (see
    the module docstring); ``step`` (``final`` or a number) overrides the trial's chosen checkpoint.

    :raises ExportError: no records, nothing recommendable, a margin outside (0, 1), a verdict not decided
        under ``require_decided``, or no saved checkpoint at the step."""
    from harness.leaderboard.analysis.verdict import VerdictError, check_margin, decide

    if margin_share is not None:
        try:
            check_margin(margin_share, "--margin")
        except VerdictError as exc:
            raise ExportError(str(exc)) from None
    board = load_board(paths)
    _check_usable(board, paths)
    verdict = decide(board, margin_share)
    if verdict.recommended is None:
        raise ExportError(f"{verdict.headline} Name an objective the trials measured; nothing to export.")
    if require_decided and verdict.state != "decided":
        refuse_undecided(verdict)
    row, value, picked = pick_trial(board, verdict.recommended.trials)
    record_path = Path(str(row["record"]))
    record = read_trial(record_path)
    if not saved_checkpoints(record, record_path):
        raise ExportError(
            f"the recommended trial {row['trial_id']} ({record.method}) has no saved checkpoint to export; "
            "rerun its sweep with train.save_checkpoints=true (the verdict's trials need their weights kept)."
        )
    wanted = step if step not in (None, "ranked") else ranked_step(row)
    chosen = choose_checkpoint(record, record_path, wanted)
    return Winner(verdict, board, tuple(paths), chosen, value, picked)


def row_of(winner: Winner) -> dict[str, Any]:
    """The exported trial's leaderboard row as a dict (empty when it is not on the board)."""
    trials = winner.board.trials
    rows = trials[trials["trial_id"].astype(str) == str(winner.chosen.record.trial_id)]
    return rows.iloc[0].to_dict() if not rows.empty else {}


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
