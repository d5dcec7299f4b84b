"""``python -m harness.export PATH --out DIR``: a trial's checkpoint as a model directory you
can load anywhere.

``PATH`` is a trial directory (or its ``trial.json``): its final checkpoint is exported. Or it is a sweep's
directory (``multirun/<sweep>``): the leaderboard is built from its records and the trial ranked ``--rank``
(default 1) is exported at the checkpoint the leaderboard ranked it by (its ``step`` column: the final one
unless the KL budget chose an earlier one); ``--step final`` or ``--step N`` picks another saved checkpoint.

The output is what ``AutoModelForCausalLM.from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)``
load: a full fine-tune's weights as they were saved, or a LoRA trial's adapter merged into its base weights
(``--merged``, the default); ``--adapter`` exports the adapter alone (load it with peft over the base model).
Every problem (no checkpoint saved, a rank that does not exist, an output directory in the way) is one line
and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
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


def _read(path: Path) -> TrialRecord:
    try:
        return read_record(path)
    except RecordError as exc:
        raise ExportError(str(exc)) from None


def _saved_checkpoints(record: TrialRecord, record_path: Path) -> dict[int, Path]:
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
    saved = _saved_checkpoints(record, record_path)
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
    ranked = row.get("step")
    if step == "ranked":
        step = "final" if ranked is None or str(ranked) in ("<NA>", "nan") else str(int(ranked))
    return choose_checkpoint(_read(record_path), record_path, step)


def choose(path: Path, rank: int = 1, step: str | None = None) -> Chosen:
    """The checkpoint to export for ``path`` (a trial directory, a ``trial.json`` or a sweep's directory)."""
    if not path.exists():
        raise ExportError(f"no such file or directory: {path}")
    record_file = path if path.is_file() else path / RECORD_NAME
    if record_file.is_file():
        if rank != 1:
            raise ExportError(f"{path} is one trial; --rank applies to a sweep's directory.")
        return choose_checkpoint(
            _read(record_file), record_file, "final" if step in (None, "ranked") else step
        )
    if not find_record_files([path]):
        raise ExportError(
            f"{path} holds no trial record ({RECORD_NAME}); pass a trial or a multirun directory."
        )
    return choose_from_sweep(path, rank, step or "ranked")


def _base_model_path(chosen: Chosen) -> tuple[str, dict[str, Any]]:
    """Where the adapter's base model is, and the trial's model settings: the adapter's own base path when it
    is a directory, else the trial's ``model.name_or_path`` resolved as the trial resolved it."""
    from omegaconf import OmegaConf

    from harness.config.resources import resolve_model_path
    from harness.plugin.manager import get_plugin_manager

    config = chosen.record.config or {}
    model_cfg = dict(config.get("model") or {})
    base = json.loads((chosen.directory / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if base and Path(base).is_dir():
        return str(base), model_cfg
    cfg = OmegaConf.create(config)
    return resolve_model_path(get_plugin_manager(list(cfg.get("plugins") or [])), cfg), model_cfg


def _write_merged(chosen: Chosen, target: Path) -> None:
    """Load the base model in full precision (never quantized), apply the adapter, merge it and save."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.config.model_settings import DTYPES
    from harness.verbosity import set_library_verbosity

    set_library_verbosity(False)
    base_path, model_cfg = _base_model_path(chosen)
    name = str(model_cfg.get("dtype"))
    dtype = getattr(torch, name) if name in DTYPES else torch.float32
    base = AutoModelForCausalLM.from_pretrained(
        base_path,
        revision=model_cfg.get("revision"),
        dtype=dtype,
        trust_remote_code=bool(model_cfg.get("trust_remote_code", False)),
    )
    merged = PeftModel.from_pretrained(base, str(chosen.directory)).merge_and_unload()
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(str(chosen.directory)).save_pretrained(target)


def export(chosen: Chosen, out: Path, adapter: bool = False) -> str:
    """Write ``chosen`` to ``out`` (merged weights, or the adapter alone with ``adapter``); returns what was
    written, in words. ``out`` must not exist or be empty; it is written to a temporary directory first."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(
            f"--out {out} already exists and is not empty; choose a new directory or remove it."
        )
    if adapter and not chosen.is_adapter:
        raise ExportError(
            f"trial {chosen.name} trained all weights (no LoRA adapter); export it without --adapter."
        )
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if chosen.is_adapter and not adapter:
        _write_merged(chosen, tmp)
        what = "its LoRA adapter merged into the base weights"
    else:
        shutil.copytree(chosen.directory, tmp)
        what = "its LoRA adapter" if adapter else "its weights"
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return what


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.export PATH --out DIR [--rank N] [--step final|N] [--adapter | --merged]``."""
    parser = argparse.ArgumentParser(prog="python -m harness.export", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "path",
        type=Path,
        help="a trial directory (or its trial.json), or a sweep's directory "
        "(multirun/<sweep>): its leaderboard's trial at --rank",
    )
    parser.add_argument("--out", type=Path, required=True, help="the model directory to write (new or empty)")
    parser.add_argument(
        "--rank", type=int, default=1, help="with a sweep: the leaderboard rank to export (default 1)"
    )
    parser.add_argument(
        "--step",
        default=None,
        help="final, or a step with saved weights (default: a trial's "
        "final checkpoint; a sweep's trial at the checkpoint the leaderboard ranked)",
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--merged",
        dest="adapter",
        action="store_false",
        help="merge a LoRA adapter into the base weights (the default)",
    )
    kind.add_argument("--adapter", dest="adapter", action="store_true", help="export a LoRA adapter alone")
    parser.set_defaults(adapter=False)
    args = parser.parse_args(argv)
    try:
        if args.step not in (None, "final", "ranked") and not str(args.step).isdigit():
            raise ExportError(f"--step {args.step} is invalid; use final or a step number.")
        chosen = choose(args.path, args.rank, args.step)
        what = export(chosen, args.out, adapter=args.adapter)
    except UserError as exc:
        print(f"harness.export: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"exported trial {chosen.name} ({chosen.record.method}), step {chosen.step}: {what}, with its "
        f"tokenizer, to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
