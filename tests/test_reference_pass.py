"""The reference pass (TRL's precomputed reference log-probs) is computed once per key and shared by later
trials, bit-identically; a changed setting that matters, or a damaged entry, computes it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.trial.reference_pass import CACHE_FOLDER
from tests.helpers import TRAIN_ONLY_EVAL, dpo_trial, logged_losses, train_context


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A harness cache of this test's own (the toy world stays where tiny_world built it)."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / CACHE_FOLDER


def test_a_three_trial_sweep_computes_the_reference_pass_once(tiny_world, tmp_path, private_cache):
    records = [
        dpo_trial(tiny_world, tmp_path / str(n), f"method.beta={beta}", f"seed={n}")
        for n, beta in enumerate([0.05, 0.1, 0.3])
    ]
    passes = [r["train"]["reference_logprobs"] for r in records]
    assert [p["computed"] for p in passes] == [True, False, False]
    assert len({p["cache"] for p in passes}) == 1
    assert len(list(private_cache.glob("*.arrow"))) == 1  # one pass stored, nothing else left there


@pytest.mark.slow
def test_a_cached_pass_trains_bit_identically(tiny_world, tmp_path, private_cache):
    computed = dpo_trial(tiny_world, tmp_path / "a", "method.beta=0.3")
    read = dpo_trial(tiny_world, tmp_path / "b", "method.beta=0.3")
    assert computed["train"]["reference_logprobs"]["computed"] is True
    assert read["train"]["reference_logprobs"]["computed"] is False
    assert logged_losses(read) == logged_losses(computed) and len(logged_losses(read)) >= 1
    assert read["checkpoints"][-1]["metrics"] == computed["checkpoints"][-1]["metrics"]


@pytest.mark.slow
def test_a_setting_of_the_pass_or_a_damaged_entry_computes_it_again(tiny_world, tmp_path, private_cache):
    first = dpo_trial(tiny_world, tmp_path / "a")
    shorter = dpo_trial(
        tiny_world, tmp_path / "b", "method.trl.max_length=24"
    )  # truncation changes the log-probs
    assert shorter["train"]["reference_logprobs"]["computed"] is True
    assert shorter["train"]["reference_logprobs"]["cache"] != first["train"]["reference_logprobs"]["cache"]

    entry = Path(first["train"]["reference_logprobs"]["cache"])
    data = bytearray(entry.read_bytes())
    data[-64] ^= 0xFF  # one flipped byte in the stored log-probs
    entry.write_bytes(bytes(data))
    again = dpo_trial(tiny_world, tmp_path / "c")
    assert again["train"]["reference_logprobs"]["computed"] is True
    assert logged_losses(again) == logged_losses(first)


@pytest.mark.parametrize("method", ["dpo", "simpo"])
def test_building_a_trainer_leaves_no_files_beside_the_data(tiny_world, tmp_path, private_cache, method):
    ctx = train_context(tiny_world, tmp_path / "t", [f"method={method}", *TRAIN_ONLY_EVAL])
    files = ctx.train_data.cache_files
    assert files, "the toy world's pairs are read from a file"
    beside = Path(files[0]["filename"]).parent
    before = set(beside.glob("cache-*.arrow"))
    trainer = ctx.trl_trainer(ref_model=ctx.reference) if method == "dpo" else ctx.trl_trainer()
    assert len(trainer.train_dataset) == len(ctx.train_data)
    assert set(beside.glob("cache-*.arrow")) == before
