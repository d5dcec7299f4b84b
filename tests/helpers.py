"""Helpers for tests that build trials in-process on the tiny toy world."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.compose import compose_job
from harness.records import Checkpoint, TrialRecord

if TYPE_CHECKING:
    from harness.trial.context import TrainContext

# Small and fast: a few optimizer steps, few held-out prompts, short completions.
FAST = [
    "method.max_steps=4",
    "train.num_checkpoints=1",
    "method.batch_size=4",
    "eval.num_prompts=8",
    "eval.max_new_tokens=12",
    "eval.selection.num_prompts=8",
    "train.num_threads=0",
]


def compose(world_overrides: list[str], overrides: list[str]):
    """The trial config for ``overrides`` on the tiny world, with the FAST settings."""
    return compose_job([*world_overrides, *FAST, *overrides], {})


#: Evaluation for tests of training itself: the gold reward only, no selection prompts, every loss logged.
TRAIN_ONLY_EVAL = ["eval.evaluators=[gold_reward]", "eval.selection.num_prompts=0", "train.logging_steps=1"]


def dpo_trial(world_overrides: list[str], directory: Path, *overrides: str) -> dict:
    """The record of a completed DPO trial on the tiny world (:data:`TRAIN_ONLY_EVAL`, then ``overrides``)."""
    from harness.trial import run_trial

    record = run_trial(compose(world_overrides, ["method=dpo", *TRAIN_ONLY_EVAL, *overrides]), directory)
    assert record["status"] == "completed", record["error"]
    return record


def logged_losses(record: dict) -> list[float]:
    """The training losses a trial record logged, in order."""
    return [entry["loss"] for entry in record["train"]["log_history"] if "loss" in entry]


def make_record(**fields: Any) -> TrialRecord:
    """The one record factory of the tests: a :class:`TrialRecord` of a completed ``dpo`` trial with no
    hyperparameters and no checkpoints, updated by ``fields`` (named and shaped as in ``trial.json``: a part
    may be given as its dict, e.g. ``reference={"metrics": {...}}``, checkpoints as :func:`checkpoint` or
    dicts)."""
    data: dict[str, Any] = {"status": "completed", "method": "dpo", "hyperparameters": {}, "checkpoints": []}
    data.update(fields)
    data["checkpoints"] = [c.to_dict() if isinstance(c, Checkpoint) else c for c in data["checkpoints"]]
    return TrialRecord.from_dict(data)


def checkpoint(
    step: int, metrics: Mapping[str, float] | None = None, final: bool = False, **fields: Any
) -> Checkpoint:
    """A checkpoint entry at ``step`` with ``metrics`` (``fields``: the others, shaped as in ``trial.json``,
    e.g. ``selection={"metrics": {...}}``)."""
    return Checkpoint.from_dict({"step": step, "final": final, "metrics": dict(metrics or {}), **fields})


def train_context(world_overrides: list[str], trial_dir: Path, overrides: list[str]) -> TrainContext:
    """A prepared TrainContext (data, models loaded; reference not evaluated) for ``overrides``."""
    from harness.trial import TrialRun

    cfg = compose(world_overrides, overrides)
    return TrialRun(cfg, trial_dir).prepare(evaluate_reference=False)


def cli_error_line(tmp_path: Path, monkeypatch, capsys, args: list[str]) -> str:
    """The one stderr line of ``python -m harness args``, run in this process in ``tmp_path``: it must exit
    with status 2, print exactly one ``harness: error: ...`` line and run nothing (no ``outputs/``)."""
    import pytest

    from harness.cli.app import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("harness: error: "), lines[0]
    assert not (tmp_path / "outputs").exists(), "nothing may run before the input is valid"
    return lines[0]
