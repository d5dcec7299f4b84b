"""A trial whose models cannot fit the machine's memory is refused before it loads anything; one that might
not fit gets a warning line."""

from __future__ import annotations

import pytest

from harness.config import footprint
from harness.config.footprint import Footprint, check_machine_memory
from harness.errors import ConfigError

SEVEN_B = Footprint("dpo", 2, 7_000_000_000, gpu_gib=110.0, host_gib=60.0, resident_gib=84.0)


@pytest.mark.unit
def test_a_model_larger_than_the_machine_is_refused_in_one_line_with_the_fixes(monkeypatch):
    monkeypatch.setattr(footprint, "machine_memory", lambda device: (24.0, 20.0))
    with pytest.raises(ConfigError) as refused:
        check_machine_memory(SEVEN_B, "cpu")
    line = str(refused.value)
    assert "\n" not in line and "need ~84.0 GiB and the host has 24.0 GiB" in line
    assert "model=lora" in line and "model.quantization=4bit" in line
    monkeypatch.setattr(footprint, "machine_memory", lambda device: (80.0, 79.0))
    with pytest.raises(ConfigError, match="the GPU has 80.0 GiB"):
        check_machine_memory(SEVEN_B, "cuda:0")


@pytest.mark.unit
def test_a_trial_that_may_not_fit_what_is_free_now_is_warned_and_one_that_fits_is_not(monkeypatch):
    monkeypatch.setattr(footprint, "machine_memory", lambda device: (128.0, 90.0))
    assert "may run out of memory: ~108.0 GiB estimated" in check_machine_memory(SEVEN_B, "cpu")
    monkeypatch.setattr(footprint, "machine_memory", lambda device: (128.0, 120.0))
    assert check_machine_memory(SEVEN_B, "cpu") is None
    unknown = Footprint("dpo", 2, None, None, None)
    assert check_machine_memory(unknown, "cpu") is None


def test_the_trial_is_refused_on_the_machine_that_runs_it_before_loading_a_model(
    real_world, tmp_path, monkeypatch, capsys
):
    from harness.cli.app import main
    from tests.test_models import real

    monkeypatch.setattr(footprint, "machine_memory", lambda device: (0.0001, 0.0001))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(real(real_world))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness: error: ")]
    assert exited.value.code == 2 and len(errors) == 1
    assert "its weights and training state alone need ~" in errors[0] and "the host has 0.0 GiB" in errors[0]
    (record,) = tmp_path.rglob("trial.json")
    text = record.read_text()
    assert '"status": "failed"' in text and '"user_error": true' in text and '"log_history"' not in text
