"""Every built-in method trains a few steps on the tiny toy world through the real trial runner."""

from __future__ import annotations

import json
import math

import pytest
from safetensors.torch import load_file

from harness.trial import run_trial
from tests.conftest import TINY_SPEC
from tests.helpers import compose


def tiny_model_dir(cache_dir):
    from harness.toyworld import ToyWorldSpec, build_toy_world

    return build_toy_world(
        ToyWorldSpec(**TINY_SPEC), cache_dir=str(cache_dir / "toyworld"), progress=False
    ).model_dir


@pytest.mark.parametrize("method", ["dpo", "ipo", "kto", "orpo", "simpo", "cpo"])
def test_each_method_trains_checkpoints_and_is_evaluated(tiny_world, cache_dir, tmp_path, method):
    cfg = compose(tiny_world, [f"method={method}", "train.checkpoint_every=2"])
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    assert [c["step"] for c in record["checkpoints"]] == [2, 4]
    assert record["checkpoints"][-1]["final"] and not record["checkpoints"][0]["final"]
    for checkpoint in record["checkpoints"]:  # every checkpoint is evaluated the same way
        assert set(checkpoint["metrics"]) >= {"gold_reward", "kl"}
        assert all(math.isfinite(v) for v in checkpoint["metrics"].values())
    # TRL's own test convention: every parameter tensor of the policy changed.
    base = load_file(tiny_model_dir(cache_dir) / "model.safetensors")
    final = load_file(tmp_path / "checkpoints" / "step-4" / "model.safetensors")
    unchanged = [name for name in base if name in final and (base[name] == final[name]).all()]
    assert not unchanged, f"{method} left parameters untouched: {unchanged}"
    on_disk = json.loads((tmp_path / "trial.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["method"] == method
    assert on_disk["data_kind"] == ("unpaired" if method == "kto" else "pairwise")


def test_lora_trains_only_the_adapter_against_the_implicit_reference(tiny_world, cache_dir, tmp_path):
    cfg = compose(tiny_world, ["model=lora", "model.lora.r=4", "method.learning_rate=1e-2"])
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    final_dir = tmp_path / "checkpoints" / "step-4"
    assert (final_dir / "adapter_model.safetensors").exists() and not (
        final_dir / "model.safetensors"
    ).exists()
    kl = record["checkpoints"][-1]["metrics"]["kl"]
    assert math.isfinite(kl) and kl != 0.0  # measured against the adapter-disabled base


def test_conversational_file_data_on_a_local_model_directory(tiny_world, cache_dir, tmp_path):
    rows = []
    for i, (good, bad) in enumerate(
        [("great .", "awful ."), ("i loved it .", "i hated it ."), ("a wonderful film .", "a boring film .")]
        * 8
    ):
        prompt = [{"role": "user", "content": f"review {i % 5} : the movie was"}]
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": good}],
                "rejected": [{"role": "assistant", "content": bad}],
            }
        )
    path = tmp_path / "conv.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = compose(
        tiny_world,
        [
            "model=hf",
            f"model.name_or_path={tiny_model_dir(cache_dir)}",
            "data=files",
            f"data.path={path}",
            "data.eval_fraction=0.2",
        ],
    )
    record = run_trial(cfg, tmp_path / "trial")
    assert record["status"] == "completed", record["error"]
    metrics = record["checkpoints"][-1]["metrics"]
    assert "kl" in metrics and "gold_reward" not in metrics  # file data defines no gold reward
    assert record["data"]["format"].startswith("pairwise conversational")


def test_checkpoints_are_spaced_evenly_over_the_planned_steps(tiny_world, tmp_path):
    cfg = compose(tiny_world, ["method=dpo", "method.max_steps=9", "train.num_checkpoints=3"])
    record = run_trial(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    assert [c["step"] for c in record["checkpoints"]] == [3, 6, 9]
    assert all(c["metrics"] for c in record["checkpoints"])
    assert [c["final"] for c in record["checkpoints"]] == [False, False, True]
