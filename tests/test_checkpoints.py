"""Checkpoint scheduling (a fixed interval, or evenly spaced checkpoints over the planned steps), and which
checkpoints' weights are saved (train.save_checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.errors import TrialFailed
from harness.trial.checkpoints import Checkpointer

pytestmark = pytest.mark.unit


def taken(checkpointer: Checkpointer, total: int) -> list[int]:
    model = torch.nn.Linear(1, 1)
    for step in range(1, total + 1):
        checkpointer.step(step, model)
    return [e.step for e in checkpointer.entries]


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [(100, 4, [25, 50, 75]), (10, 3, [3, 7]), (2, 4, [1]), (1, 4, []), (50, 1, [])],
)
def test_planned_checkpoints_are_evenly_spaced_before_the_final_one(tmp_path: Path, total, count, expected):
    checkpointer = Checkpointer(every=0, num_checkpoints=count, directory=tmp_path, save=False)
    checkpointer.plan(total)
    assert taken(checkpointer, total) == expected


def test_a_fixed_interval_wins_over_the_planned_count(tmp_path: Path):
    checkpointer = Checkpointer(every=4, num_checkpoints=3, directory=tmp_path, save=False)
    checkpointer.plan(10)
    assert taken(checkpointer, 10) == [4, 8]


def test_a_non_finite_loss_fails_the_trial_naming_the_step(tmp_path: Path):
    checkpointer = Checkpointer(every=0, directory=tmp_path, save=False)
    with pytest.raises(TrialFailed, match="at step 7"):
        checkpointer.step(7, torch.nn.Linear(1, 1), loss=float("nan"))


class Weights(torch.nn.Linear):
    """A model whose save_pretrained writes one file (enough for the checkpointer)."""

    def __init__(self) -> None:
        super().__init__(1, 1)

    def save_pretrained(self, directory: Path) -> None:
        (Path(directory) / "weights.pt").write_text("w")


def saved_steps(tmp_path: Path, save, evaluate_intermediate: bool) -> tuple[list[int], list[int]]:
    """(steps whose weights were written, steps evaluated) of 10 steps with checkpoints at 4 and 8 and the
    final model at 10, for ``train.save_checkpoints=save`` and ``eval.checkpoints`` all (or final)."""
    from harness.evaluation.context import CheckpointEvaluation

    evaluated: list[int] = []

    def evaluate(model, step):
        evaluated.append(step)
        return CheckpointEvaluation({"m": 1.0}, {})

    checkpointer = Checkpointer(
        every=4,
        directory=tmp_path / str(save),
        save=save,
        evaluate=evaluate,
        evaluate_intermediate=evaluate_intermediate,
    )
    model = Weights()
    for step in range(1, 11):
        checkpointer.step(step, model)
    checkpointer.checkpoint(10, model, final=True)
    written = sorted(int(p.name.removeprefix("step-")) for p in (tmp_path / str(save)).glob("step-*"))
    assert written == [e.step for e in checkpointer.entries if e.path]  # the record names what was written
    return written, evaluated


@pytest.mark.parametrize(
    ("save", "intermediate", "expected"),
    [
        (True, True, [4, 8, 10]),
        (True, False, [10]),  # the evaluated ones: with eval.checkpoints=final, the final model
        ("all", False, [4, 8, 10]),
        ("all", True, [4, 8, 10]),
        (False, True, []),
        (False, False, []),
    ],
)
def test_only_evaluated_checkpoints_are_saved_unless_all_are_asked_for(
    tmp_path: Path, save, intermediate, expected
):
    written, evaluated = saved_steps(tmp_path, save, intermediate)
    assert written == expected
    assert evaluated == ([4, 8, 10] if intermediate else [10])


def test_an_intermediate_checkpoint_that_becomes_the_final_one_is_saved_then(tmp_path: Path):
    checkpointer = Checkpointer(every=5, directory=tmp_path, save=True, evaluate_intermediate=False)
    model = Weights()
    checkpointer.step(5, model)  # taken as an intermediate checkpoint: not evaluated, so not saved
    assert checkpointer.entries[0].path is None
    checkpointer.checkpoint(5, model, final=True)  # training ended there: the final model
    assert checkpointer.entries[0].path == str(tmp_path / "step-5") and (tmp_path / "step-5").is_dir()


@pytest.mark.parametrize("value", ["some", 1, None])
def test_a_bad_save_checkpoints_value_is_one_line(value):
    from omegaconf import OmegaConf

    from harness.config.validation import validate_train
    from harness.errors import ConfigError
    from harness.trial.checkpoints import save_policy

    cfg = OmegaConf.create(
        {
            "train": {
                "checkpoint_every": 0,
                "num_checkpoints": 4,
                "save_checkpoints": value,
                "device": "cpu",
                "precision": "fp32",
            },
            "seed": 0,
        }
    )
    with pytest.raises(ConfigError) as error:
        validate_train(cfg)
    message = str(error.value)
    assert message == (
        f"train.save_checkpoints={value!r} is invalid; use true (the evaluated checkpoints), all "
        "(every checkpoint) or false (none)."
    )
    with pytest.raises(ValueError, match="train.save_checkpoints"):
        save_policy(value)
    for good in (True, False, "all"):
        cfg.train.save_checkpoints = good
        validate_train(cfg)
