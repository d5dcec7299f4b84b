"""Checkpoint scheduling: a fixed interval, or evenly spaced checkpoints over the planned steps."""

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
    return [e["step"] for e in checkpointer.entries]


@pytest.mark.parametrize(("total", "count", "expected"), [(100, 4, [25, 50, 75]), (10, 3, [3, 7]), (2, 4, [1]),
                                                          (1, 4, []), (50, 1, [])])
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
