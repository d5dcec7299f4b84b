"""Multi-process trials: ``torchrun --nproc_per_node 2 -m harness`` trains one trial with DDP (gloo, on CPU)
and leaves one directory, one record and one report, with the metrics of a single-process run; the settings
such a launch cannot honour are refused before any compute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
from omegaconf import OmegaConf

from harness.config.distributed import check_distributed
from harness.errors import ConfigError
from tests.conftest import run_cli

FAST = ["train.num_threads=1", "eval.evaluators=[gold_reward,kl]", "train.num_checkpoints=2"]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "harness",
        *args,
    ]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="torch without gloo")
def test_ddp_on_two_cpu_processes_gives_one_record_with_the_single_process_metrics(tiny_world, tmp_path):
    single = run_cli([*tiny_world, *FAST, f"hydra.run.dir={tmp_path / 'single'}"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp_cwd = tmp_path / "ddp"
    ddp_cwd.mkdir()
    result = _torchrun([*tiny_world, *FAST], cwd=ddp_cwd)  # the default, timestamped run directory
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    runs = list((ddp_cwd / "outputs").iterdir())
    assert len(runs) == 1, f"the processes wrote {len(runs)} run directories: {runs}"
    assert sorted(p.name for p in (runs[0] / ".hydra").iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]
    assert result.stdout.count("record: ") == 1, "only the main process reports"
    ddp = json.loads((runs[0] / "trial.json").read_text())
    ref = json.loads((tmp_path / "single" / "trial.json").read_text())
    assert ddp["status"] == "completed" and ddp["host"]["processes"] == 2
    assert ddp["train"]["steps"] == ref["train"]["steps"], (
        "the trial's batch is split over the processes, not doubled"
    )
    losses = [(e["step"], e["loss"]) for e in ddp["train"]["log_history"] if "loss" in e]
    expected = [(e["step"], e["loss"]) for e in ref["train"]["log_history"] if "loss" in e]
    assert [s for s, _ in losses] == [s for s, _ in expected] and losses
    for (_, a), (_, b) in zip(losses, expected, strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    assert [c["step"] for c in ddp["checkpoints"]] == [c["step"] for c in ref["checkpoints"]]
    final, ref_final = ddp["checkpoints"][-1]["metrics"], ref["checkpoints"][-1]["metrics"]
    assert final["kl"] > 0
    for metric in ("gold_reward", "kl"):
        assert final[metric] == pytest.approx(
            ref_final[metric], abs=max(1e-3, 0.05 * ref_final[f"{metric}_se"])
        )
    assert all(Path(c["path"]).is_dir() for c in ddp["checkpoints"] if c["path"])


@pytest.mark.unit
def test_a_sweep_under_torchrun_is_refused_in_one_line(tmp_path):
    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    result = run_cli(["-m", "method=dpo,simpo", "train.device=cpu"], cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("harness: error: -m (a sweep) under torchrun")


def _cfg(**method):
    return OmegaConf.create({"method": {"name": "dpo", "batch_size": 16, **method}})


@pytest.mark.unit
def test_multi_process_settings_are_checked_before_compute(monkeypatch, tmp_path):
    check_distributed(_cfg(), trains_with_trainer=False)  # one process: anything goes
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(
        ConfigError, match=r"batch_size=16 does not split over 3 processes; use a multiple of 3"
    ):
        check_distributed(_cfg(), trains_with_trainer=True)
    with pytest.raises(ConfigError, match="trains with its own loop, which runs in one process"):
        check_distributed(_cfg(batch_size=15), trains_with_trainer=False)
    check_distributed(_cfg(batch_size=15), trains_with_trainer=True)
    with pytest.raises(ConfigError, match="method.trl.fsdp='full_shard' is not supported.*FSDP shards it"):
        check_distributed(_cfg(batch_size=15, trl={"fsdp": "full_shard"}), trains_with_trainer=True)


@pytest.mark.unit
def test_deepspeed_needs_its_package_and_a_config_that_keeps_whole_weights(monkeypatch, tmp_path):
    import importlib.util

    cfg = _cfg(trl={"deepspeed": str(tmp_path / "ds.json")})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "deepspeed" else real_find_spec(name, *a),
    )
    with pytest.raises(ConfigError, match="the deepspeed package is not installed; pip install deepspeed"):
        check_distributed(cfg, trains_with_trainer=True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    with pytest.raises(ConfigError, match="ds.json'?: no such file"):
        check_distributed(cfg, trains_with_trainer=True)
    (tmp_path / "ds.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        check_distributed(cfg, trains_with_trainer=True)
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    with pytest.raises(ConfigError, match="ZeRO stage 3.*use stage 1 or 2"):
        check_distributed(cfg, trains_with_trainer=True)
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    check_distributed(cfg, trains_with_trainer=True)
