"""A sweep directory belongs to one sweep: a grid and an Optuna study never replace each other's results,
never run in one directory at once, and a re-run of a job starts in a clean trial directory."""

from __future__ import annotations

import json

import pytest

from harness.errors import ConfigError
from harness.records import write_record
from harness.sweep import resume
from harness.sweep.ownership import claim_for_grid, claim_for_study, clean_trial_dir
from harness.sweep.study import SETTINGS_NAME
from tests.conftest import run_cli
from tests.helpers import make_record
from tests.test_optuna_sweep import sweep_args

CONFIG = {"method": {"name": "dpo", "beta": 0.1}, "seed": 1}


@pytest.fixture(autouse=True)
def _release_sweep_locks():
    """Sweep claims are held for the life of a process; a test releases its own."""
    held = len(resume._HELD)
    yield
    while len(resume._HELD) > held:
        resume._HELD.pop().close()


def _grid_dir(tmp_path):
    sweep = tmp_path / "multirun" / "x"
    for job in ("0", "1"):
        write_record(sweep / job / "trial.json", make_record(status="completed", config=CONFIG))
    return sweep


def _study_dir(tmp_path, name="x", storage="/s/optuna.journal"):
    sweep = tmp_path / "multirun" / "x"
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / SETTINGS_NAME).write_text(json.dumps({"study_name": name, "storage": storage}))
    return sweep


@pytest.mark.unit
def test_an_optuna_study_refuses_a_grid_s_completed_trials_unless_forced(tmp_path):
    sweep = _grid_dir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"holds 2 completed trials of a grid multirun \(jobs 0, 1\).*--force"
    ):
        claim_for_study(sweep, "x", "/s/optuna.journal", "missing")
    claim_for_study(sweep, "x", "/s/optuna.journal", "all")  # --force takes the directory over


@pytest.mark.unit
def test_a_grid_refuses_an_optuna_study_s_directory_and_a_study_refuses_another_study(tmp_path):
    sweep = _study_dir(tmp_path)
    with pytest.raises(ConfigError, match=r"belongs to the Optuna study 'x' \(storage /s/optuna.journal\)"):
        claim_for_grid(sweep, "missing")
    with pytest.raises(ConfigError, match=r"belongs to the Optuna study 'x'.*not 'y'"):
        claim_for_study(sweep, "y", "/s/optuna.journal", "missing")
    claim_for_study(sweep, "x", "/s/optuna.journal", "missing")  # a worker of the same study is welcome
    claim_for_study(sweep, "x", "/s/optuna.journal", "missing")  # and so is a second one


@pytest.mark.unit
def test_a_grid_and_a_study_never_run_in_one_directory_at_once(tmp_path):
    sweep = tmp_path / "multirun" / "x"
    claim_for_study(sweep, "x", "/s/optuna.journal", "missing")
    with pytest.raises(resume.Locked, match="being written by another harness process"):
        claim_for_grid(sweep, "missing")
    resume._HELD.pop().close()
    claim_for_grid(sweep, "missing")
    with pytest.raises(resume.Locked):
        claim_for_study(sweep, "x", "/s/optuna.journal", "missing")


@pytest.mark.unit
def test_a_re_run_of_a_job_starts_in_a_clean_trial_directory(tmp_path):
    trial = tmp_path / "0"
    for path in ("checkpoints/step-4/model.safetensors", "trainer/state.json", ".hydra/config.yaml"):
        (trial / path).parent.mkdir(parents=True, exist_ok=True)
        (trial / path).write_text("old")
    (trial / "trial.json").write_text("{}")
    (trial / "app.log").write_text("log")
    assert clean_trial_dir(trial) == ["checkpoints", "trainer"]
    assert sorted(p.name for p in trial.iterdir()) == [".hydra", "app.log", "trial.json"]
    assert clean_trial_dir(trial) == []


def test_an_optuna_sweep_over_a_grid_s_results_stops_in_one_line_and_changes_nothing(tiny_world, tmp_path):
    sweep = _grid_dir(tmp_path)
    before = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
    result = run_cli([*sweep_args(tiny_world, "method=dpo", "sweep_name=x")], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("harness: error: ")]
    assert len(errors) == 1 and "completed trials of a grid multirun" in errors[0] and "--force" in errors[0]
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == before
    assert not (sweep / SETTINGS_NAME).exists()
