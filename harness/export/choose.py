"""Which checkpoint to export: one trial's (its final checkpoint, or ``--step``), or a sweep's trial at a
leaderboard rank, at the checkpoint the leaderboard ranked it by; every problem is an :class:`ExportError`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.records import RECORD_NAME, RecordError, TrialRecord, find_record_files, read_record

ADAPTER_CONFIG = "adapter_config.json"


class ExportError(UserError):
    """The trial, checkpoint or output directory asked for cannot be exported (one line, with the fix)."""


@dataclass(frozen=True)
class Chosen:
    """The checkpoint to export: its trial record, the record's file, its step and directory."""

    record: TrialRecord
    record_path: Path
    step: int
    directory: Path

    @property
    def is_adapter(self) -> bool:
        """Whether the checkpoint is a LoRA adapter (peft's adapter_config.json) rather than full weights."""
        return (self.directory / ADAPTER_CONFIG).is_file()

    @property
    def name(self) -> str:
        """The trial's id (``<sweep>/<job>`` or its directory)."""
        return str(self.record.trial_id or self.record_path.parent)


def read_trial(path: Path) -> TrialRecord:
    """The trial record at ``path``; ExportError when it cannot be read."""
    try:
        return read_record(path)
    except RecordError as exc:
        raise ExportError(str(exc)) from None


def saved_checkpoints(record: TrialRecord, record_path: Path) -> dict[int, Path]:
    """Step -> directory of each checkpoint whose weights were saved (found where the record says, or beside
    the record when the trial directory was moved)."""
    found = {}
    for entry in record.checkpoints:
        step = int(entry.step)
        candidates = [Path(entry.path)] if entry.path else []
        candidates.append(record_path.parent / "checkpoints" / f"step-{step}")
        directory = next((c for c in candidates if c.is_dir()), None)
        if directory is not None:
            found[step] = directory
    return found


def _final_step(record: TrialRecord) -> int | None:
    entries = record.checkpoints
    final = [e for e in entries if e.final] or entries
    return int(final[-1].step) if final else None


def choose_checkpoint(record: TrialRecord, record_path: Path, step: str | int = "final") -> Chosen:
    """The saved checkpoint ``step`` (``"final"`` or a step number) of one trial;
    ExportError when it has none."""
    saved = saved_checkpoints(record, record_path)
    name = record.trial_id or record_path.parent
    if not saved:
        status, reason = record.status, record.error_message
        why = f"status {status}" + (f": {reason}" if reason else "")
        save_off = ((record.config or {}).get("train") or {}).get("save_checkpoints") is False
        fix = (
            "rerun it with train.save_checkpoints=true" if save_off else "rerun it (or export another trial)"
        )
        raise ExportError(f"trial {name} has no saved checkpoint to export ({why}); {fix}.")
    wanted = _final_step(record) if step == "final" else int(step)
    if wanted not in saved:
        raise ExportError(
            f"trial {name} has no saved checkpoint at step {wanted}; saved steps: "
            f"{', '.join(map(str, sorted(saved)))} (--step final or one of those)."
        )
    return Chosen(record, record_path, wanted, saved[wanted])


def ranked_step(row: Any) -> str:
    """The checkpoint a leaderboard row was ranked by (its ``step`` column) as ``--step`` takes it: the step,
    or ``"final"`` when the row has none."""
    ranked = row.get("step")
    return "final" if ranked is None or str(ranked) in ("<NA>", "nan") else str(int(ranked))


def choose_from_sweep(path: Path, rank: int, step: str) -> Chosen:
    """The trial ranked ``rank`` by the leaderboard of the records under ``path``, at its ranked checkpoint
    (``step="ranked"``) or at ``step``."""
    from harness.leaderboard import load_leaderboard

    board = load_leaderboard([path])
    if board.groups:
        raise ExportError(
            f"the trials under {path} ran on different model, data or evaluation settings and are not "
            "ranked together; export one trial directory instead."
        )
    done = board.completed
    if done.empty:
        raise ExportError(f"no completed trial under {path} to export.")
    rows = done[done["rank"] == rank]
    if rows.empty:
        raise ExportError(f"--rank {rank} does not exist: {len(done)} completed trial(s) under {path}.")
    row = rows.iloc[0]
    record_path = Path(str(row["record"]))
    if step == "ranked":
        step = ranked_step(row)
    return choose_checkpoint(read_trial(record_path), record_path, step)


def choose(path: Path, rank: int = 1, step: str | None = None) -> Chosen:
    """The checkpoint to export for ``path`` (a trial directory, a ``trial.json`` or a sweep's directory)."""
    if not path.exists():
        raise ExportError(f"no such file or directory: {path}")
    record_file = path if path.is_file() else path / RECORD_NAME
    if record_file.is_file():
        if rank != 1:
            raise ExportError(f"{path} is one trial; --rank applies to a sweep's directory.")
        return choose_checkpoint(
            read_trial(record_file), record_file, "final" if step in (None, "ranked") else step
        )
    if not find_record_files([path]):
        raise ExportError(
            f"{path} holds no trial record ({RECORD_NAME}); pass a trial or a multirun directory."
        )
    return choose_from_sweep(path, rank, step or "ranked")
