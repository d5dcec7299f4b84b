"""Cluster launch: a SLURM sweep asks for what its trials need (from the methods' models in memory), the
user's own settings win, and the same sweep runs through submitit's local executor
(``hydra/launcher=submitit_local``)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from transformers import AutoModelForCausalLM

from harness.cli.app import with_slurm_resources
from harness.config.compose import compose_job
from harness.config.footprint import GIB, Footprint, slurm_resources, trial_footprint
from harness.plugin.manager import get_plugin_manager
from tests.conftest import run_cli
from tests.test_models import real


def _footprint(real_world, *extra: str) -> Footprint:
    cfg = compose_job(real(real_world, "qwen2", extra=extra), {})
    return trial_footprint(cfg, get_plugin_manager([]))


def test_a_trial_footprint_counts_the_method_s_models_and_its_training_state(real_world):
    parameters = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(real_world.qwen2).parameters())
    dpo, simpo = _footprint(real_world, "method=dpo"), _footprint(real_world, "method=simpo")
    assert (dpo.models, simpo.models) == (2, 1)  # DPO holds a frozen reference, SimPO none
    assert dpo.parameters == simpo.parameters == parameters  # counted on the meta-device skeleton
    # fp32 weights of each model, plus gradients and AdamW's two moments of the trained one;
    # 30% and 2 GiB margin
    assert dpo.gpu_gib == pytest.approx((2 + 3) * 4 * parameters * 1.3 / GIB + 2)
    assert simpo.gpu_gib == pytest.approx((1 + 3) * 4 * parameters * 1.3 / GIB + 2)
    lora = _footprint(real_world, "method=dpo", "model.lora.r=8")
    assert lora.models == 1 and lora.gpu_gib < simpo.gpu_gib  # the reference is the adapter-disabled policy
    assert "dpo: 2 model(s) of" in dpo.text()


@pytest.mark.unit
def test_slurm_resources_fill_only_what_the_user_left_unset():
    big = Footprint("dpo", 2, 7_000_000_000, 170.0, 30.4)
    small = Footprint("simpo", 1, 7_000_000_000, 120.0, 30.4)
    unknown = Footprint("orpo", 1, None, None, None)
    assert slurm_resources([big, small, unknown], {}) == {
        "gpus_per_node": 1,
        "tasks_per_node": 1,
        "cpus_per_task": 8,
        "mem_gb": 31,
    }
    assert slurm_resources([unknown], {"cpus_per_task": 32, "gpus_per_node": 4}) == {"tasks_per_node": 1}


def test_a_slurm_sweep_command_gets_the_largest_trial_s_resources(real_world, capsys):
    overrides = [
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.cpus_per_task=4",
        *real(real_world, "qwen2"),
    ]
    configs = [compose_job([*overrides, f"method={m}"], {}) for m in ("dpo", "simpo")]
    from omegaconf import OmegaConf

    args = with_slurm_resources(["-m", *overrides], overrides, [OmegaConf.to_container(c) for c in configs])
    added = [a for a in args if a not in overrides and a != "-m"]
    assert added == [
        "hydra.launcher.gpus_per_node=1",
        "hydra.launcher.tasks_per_node=1",
        "hydra.launcher.mem_gb=16",
    ]
    line = capsys.readouterr().out.strip()
    assert line.startswith("harness: SLURM: each trial asks for gpus_per_node=1, tasks_per_node=1, mem_gb=16")
    assert "dpo: 2 model(s)" in line and "simpo: 1 model(s)" in line
    assert with_slurm_resources(["-m"], ["hydra/launcher=joblib"], []) == ["-m"]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="hydra-submitit-launcher is not installed (pip install 'harness[slurm]')",
)
def test_a_sweep_runs_through_submitit_s_local_executor(tiny_world, tmp_path):
    result = run_cli(
        [
            "-m",
            "hydra/launcher=submitit_local",
            "method=dpo,simpo",
            *tiny_world,
            "train.num_threads=1",
            "eval.evaluators=[gold_reward,kl]",
            "sweep_name=local",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [
        json.loads((tmp_path / "multirun" / "local" / str(i) / "trial.json").read_text()) for i in (0, 1)
    ]
    assert sorted(r["method"] for r in records) == ["dpo", "simpo"]
    assert all(r["status"] == "completed" for r in records)
    assert (tmp_path / "leaderboards" / "local" / "leaderboard.md").is_file()
