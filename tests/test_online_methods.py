"""The online methods (PPO, GRPO, RLOO) train a few steps on the tiny toy world through the
real trial runner."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.config.validation import validate_trial_config
from harness.errors import ConfigError
from harness.plugin.manager import get_plugin_manager
from harness.trial import run_trial
from tests.helpers import compose

# Small online settings: a few prompts per step, short responses.
ONLINE = ["method.batch_size=8", "method.trl.max_completion_length=8"]


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("grpo", [*ONLINE, "method.trl.num_generations=4"]),
        ("rloo", [*ONLINE, "method.trl.num_generations=4"]),
        (
            "ppo",
            [
                "method.batch_size=8",
                "method.mini_batch_size=4",
                "method.response_length=8",
                "method.ppo_epochs=2",
            ],
        ),
    ],
)
def test_each_online_method_trains_on_prompts_and_moves_away_from_the_reference(
    tiny_world, tmp_path, method, extra
):
    cfg = compose(
        tiny_world, [f"method={method}", "train.checkpoint_every=2", "method.learning_rate=1e-3", *extra]
    )
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    assert record["data_kind"] == "prompts"
    assert record["data"]["train_examples"] <= 64  # distinct prompts of the 64 training pairs
    assert [c["step"] for c in record["checkpoints"]] == [2, 4]
    final = record["checkpoints"][-1]["metrics"]
    assert math.isfinite(final["gold_reward"]) and final["kl_k3"] > 0  # the policy moved


def test_ppo_logs_the_recipes_diagnostics_and_adapts_its_kl_coefficient(tiny_world, tmp_path):
    cfg = compose(
        tiny_world,
        [
            "method=ppo",
            "method.batch_size=8",
            "method.mini_batch_size=4",
            "method.response_length=8",
            "method.learning_rate=3e-3",
            "method.target_kl=0.01",
            "method.horizon=100",
            "method.kl_penalty=full",
        ],
    )
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    logs = [e for e in record["train"]["log_history"] if "kl_coef" in e]
    assert [e["step"] for e in logs] == [1, 2, 3, 4]
    for entry in logs:
        assert {
            "reward",
            "kl",
            "kl_coef",
            "entropy",
            "clipfrac",
            "vf_clipfrac",
            "value_loss",
            "policy_loss",
        } <= set(entry)
    # The KL soon exceeds a 0.01-nat target, so the adaptive controller raises the coefficient.
    assert logs[-1]["kl_coef"] > logs[0]["kl_coef"]
    assert record["models_in_memory"] == 3  # policy, reference, value model: the gold reward is no model


def test_ppo_trains_a_lora_policy_against_its_adapter_disabled_base(tiny_world, tmp_path):
    cfg = compose(
        tiny_world,
        [
            "method=ppo",
            "model=lora",
            "model.lora.r=4",
            "method.batch_size=8",
            "method.mini_batch_size=8",
            "method.response_length=8",
            "method.learning_rate=1e-2",
        ],
    )
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    assert (tmp_path / "checkpoints" / "step-4" / "adapter_model.safetensors").exists()
    assert record["checkpoints"][-1]["metrics"]["kl_k3"] > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method=ppo", "method.kl_penalty=l2"], "method.kl_penalty='l2' is invalid"),
        (["method=ppo", "method.mini_batch_size=5"], "must divide method.batch_size"),
        (["method=ppo", "method.reward_norm=batch"], "method.reward_norm='batch' is invalid"),
        (["method=grpo", "method.batch_size=6"], "must be a multiple of method.trl.num_generations"),
        (["method=rloo", "method.beta=-0.1"], "method.beta=-0.1 is invalid for method rloo"),
        (
            ["method=grpo", "data=files", "data.path=x.jsonl", "method.reward=gold", "method.batch_size=8"],
            "defines no gold reward",
        ),
    ],
)
def test_bad_online_settings_are_refused_before_any_compute(tiny_world, tmp_path, overrides, message):
    if "data=files" in overrides:
        (tmp_path / "x.jsonl").write_text('{"prompt": "a", "chosen": " b", "rejected": " c"}\n' * 4)
        overrides = [o.replace("x.jsonl", str(tmp_path / "x.jsonl")) for o in overrides]
    cfg = compose(tiny_world, overrides)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate_trial_config(cfg, get_plugin_manager())


def test_the_reward_stage_trains_a_reward_model_scored_on_held_out_pairs(tiny_world, tmp_path):
    from harness_plugins.evaluators.reward_model import check_reward_model

    cfg = compose(tiny_world, ["method=reward", "method.learning_rate=1e-3"])
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    assert record["reference"] is None  # no reference baseline for a reward model
    final = record["checkpoints"][-1]
    assert set(final["metrics"]) == {"reward_accuracy", "reward_accuracy_se", "reward_margin"}
    assert 0.0 <= final["metrics"]["reward_accuracy"] <= 1.0
    check_reward_model(final["path"])  # the checkpoint is a loadable one-output reward model
    with pytest.warns(UserWarning, match="the seed advises one epoch"):
        validate_trial_config(
            compose(tiny_world, ["method=reward", "method.epochs=3", "method.max_steps=-1"]),
            get_plugin_manager(),
        )


def test_online_methods_train_on_the_cached_reward_stage_and_report_its_score(tiny_world, tmp_path):
    overrides = [
        "method=grpo",
        *ONLINE,
        "method.trl.num_generations=4",
        "method.reward=trained",
        "+method.reward_stage.max_steps=4",
        "+method.reward_stage.batch_size=4",
    ]
    first = run_trial(compose(tiny_world, overrides), tmp_path / "a")
    assert first["status"] == "completed", first["error"]
    stage_dir = first["eval_reward_model"]
    assert "reward_models" in stage_dir
    assert "reward_model_score" in first["checkpoints"][-1]["metrics"]  # its score beside the gold reward
    assert "reward_model_score" in first["reference"]["metrics"]
    record_file = next(p for p in Path(stage_dir).parents if (p / "trial.json").is_file()) / "trial.json"
    mtime = record_file.stat().st_mtime
    second = run_trial(
        compose(tiny_world, [*overrides, "seed=1"]), tmp_path / "b"
    )  # another trial, same stage
    assert second["status"] == "completed" and second["eval_reward_model"] == stage_dir
    assert record_file.stat().st_mtime == mtime  # trained once, then reused
