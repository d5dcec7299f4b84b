"""Every built-in method on what users bring: a Qwen2-architecture model with a trained BPE tokenizer and a
ChatML template, trained with and without LoRA, on UltraFeedback-binarized conversational data (save_to_disk
splits) and on HH-RLHF transcripts (tests/realworld.py): 44 two-step trials, run in-process (about a minute on
2 cores); the default tier runs each method in one of the four combinations, the slow tier the rest."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from harness.config.compose import compose_job
from harness.trial.runner import TrialRun

METHODS = ("dpo", "ipo", "kto", "orpo", "simpo", "cpo", "ppo", "grpo", "rloo", "reward", "sft")
SHORT = [
    "method.max_steps=2",
    "method.batch_size=4",
    "method.grad_accum=1",
    "train.num_checkpoints=1",
    "eval.num_prompts=4",
    "eval.selection.num_prompts=4",
    "eval.max_new_tokens=8",
    "eval.evaluators=[kl,text_stats]",
    "train.num_threads=0",
]


def method_overrides(method: str, reward_model: str) -> list[str]:
    """What each method needs to run in two tiny steps: online methods score with the
    fixture's reward model."""
    online = {
        "grpo": ["method.trl.num_generations=2", "method.trl.max_completion_length=8"],
        "rloo": ["method.trl.num_generations=2", "method.trl.max_completion_length=8"],
        "ppo": ["method.response_length=8", "method.mini_batch_size=4"],
    }
    extra = online.get(method, [])
    return [f"method={method}", *extra, *([f"method.reward={reward_model}"] if extra else [])]


def data_overrides(real_world, data: str) -> list[str]:
    if data == "ultrafeedback":
        return [
            "data=files",
            f"data.path={real_world.ultrafeedback}",
            "data.split=train_prefs",
            "data.eval_split=test_prefs",
        ]
    return ["data=files", f"data.path={real_world.hh_jsonl}", "data.eval_fraction=0.25"]


def _cases() -> list:
    """Every method x data x LoRA: the default tier runs one combination per method (rotating through the
    four), the slow tier the other three."""
    combos = [(data, lora) for data in ("ultrafeedback", "hh") for lora in (False, True)]
    cases = []
    for i, method in enumerate(METHODS):
        for j, (data, lora) in enumerate(combos):
            marks = [] if j == i % len(combos) else [pytest.mark.slow]
            cases.append(
                pytest.param(
                    method, data, lora, marks=marks, id=f"{method}-{data}-{'lora' if lora else 'full'}"
                )
            )
    return cases


@pytest.mark.parametrize(("method", "data", "lora"), _cases())
def test_every_method_trains_on_a_real_architecture_model_and_real_data(
    real_world, tmp_path, method, data, lora
):
    cfg = compose_job(
        [
            "model=hf",
            f"model.name_or_path={real_world.qwen2}",
            *data_overrides(real_world, data),
            *method_overrides(method, str(real_world.reward_model)),
            *SHORT,
            *(["model.lora.r=4"] if lora else []),
        ],
        {},
    )
    record = TrialRun(cfg, tmp_path / "trial").run()
    assert record["status"] == "completed", (record.get("error") or {}).get("traceback", "")[-3000:]
    assert record["train"]["steps"] == 2 and record["data"]["train_examples"] > 0
    final = next(c for c in record["checkpoints"] if c["final"])
    expected = "reward_accuracy" if method == "reward" else "kl"
    assert expected in final["metrics"], final["metrics"]
    assert (
        record["models_in_memory"] >= 1 and record["config"]["model"]["profile"] is None
    )  # real-model defaults


# Where each method's length limit lives, for real models and on the toy world.
LENGTHS = {
    "grpo": ("trl.max_completion_length", 256, 24),
    "rloo": ("trl.max_completion_length", 256, 24),
    "ppo": ("response_length", 256, 24),
}


@pytest.mark.unit
@pytest.mark.parametrize("method", METHODS)
def test_a_real_model_gets_real_defaults_and_the_toy_world_its_tuning(method):
    """No toy-world value reaches a real model: learning rate within the method's range, 1,024-token
    sequences, 256 new tokens, no toy lm-eval task; the toy world keeps its tuned values (its profile)."""
    from harness.plugin.manager import get_plugin_manager

    spec = get_plugin_manager().method(method)
    real = compose_job(
        ["model=hf", "model.name_or_path=/models/any-llm", f"method={method}"], {}
    )  # composed only
    toy = compose_job([f"method={method}"], {})
    low, high = spec.lr_range
    assert low <= real.method.learning_rate <= high, (real.method.learning_rate, spec.lr_range)
    assert real.eval.max_new_tokens == 256 and list(real.eval.lm_eval.tasks) == []
    assert toy.eval.max_new_tokens == 24 and list(toy.eval.lm_eval.tasks) == ["toy_grammar"]
    key, real_length, toy_length = LENGTHS.get(method, ("trl.max_length", 1024, 64))
    assert (OmegaConf.select(real.method, key), OmegaConf.select(toy.method, key)) == (
        real_length,
        toy_length,
    )
    assert toy.method.learning_rate > real.method.learning_rate  # the toy world is tuned for its tiny model
