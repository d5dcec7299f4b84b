"""Trials a launcher runs side by side split the machine: threads per trial = cores / concurrent trials, GPUs
round-robin."""

from __future__ import annotations

import json

import pytest
import torch

from harness.cli.task import SWEEP_JOBS_ENV, concurrent_trials
from harness.config import resources
from tests.conftest import run_cli
from tests.helpers import FAST

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


@pytest.mark.unit
def test_a_pool_launcher_runs_at_most_its_jobs_and_the_sweeps_trials_at_once(monkeypatch):
    monkeypatch.setattr(resources, "cpu_cores", lambda: 8)
    monkeypatch.setenv(SWEEP_JOBS_ENV, "3")
    assert concurrent_trials({"_target_": JOBLIB, "n_jobs": 2}) == 2
    assert concurrent_trials({"_target_": JOBLIB, "n_jobs": -1}) == 3  # one per core, but only 3 trials
    monkeypatch.setenv(SWEEP_JOBS_ENV, "20")
    assert concurrent_trials({"_target_": JOBLIB, "n_jobs": -1}) == 8
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert concurrent_trials({"_target_": basic}) == 1
    assert concurrent_trials(None) == 1


@pytest.mark.unit
def test_threads_split_the_cores_only_when_trials_share_the_machine(monkeypatch):
    monkeypatch.setattr(resources, "cpu_cores", lambda: 8)
    assert resources.trial_threads(0, 1) is None  # alone: torch's default
    assert resources.trial_threads(0, 2) == 4
    assert resources.trial_threads(0, 16) == 1
    assert resources.trial_threads(3, 2) == 3  # an explicit train.num_threads wins


@pytest.mark.unit
def test_trials_are_spread_over_the_gpus_round_robin(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert resources.trial_device(torch.device("cuda"), 3) == torch.device("cuda", 1)
    assert resources.trial_device(torch.device("cuda"), 4) == torch.device("cuda", 0)
    assert resources.trial_device(torch.device("cpu"), 3) == torch.device("cpu")
    assert chosen == [1, 0]


@pytest.mark.slow
def test_two_trials_side_by_side_get_one_core_each(tiny_world, tmp_path):
    result = run_cli(
        [
            "-m",
            *tiny_world,
            *FAST,
            "method=dpo",
            "seed=1,2",
            "sweep_name=side",
            "eval.evaluators=[kl]",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [
        json.loads((tmp_path / "multirun" / "side" / str(n) / "trial.json").read_text()) for n in (0, 1)
    ]
    assert [r["status"] for r in records] == ["completed", "completed"]
    expected = max(1, resources.cpu_cores() // 2)
    assert [r["host"]["torch_threads"] for r in records] == [expected, expected]
    assert sorted(r["sweep"]["parallel"]["slot"] for r in records) == [0, 1]
