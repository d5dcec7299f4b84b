"""The reference pass (TRL's precomputed reference log-probs) is computed once per key and shared by later
trials, bit-identically; a changed setting that matters, or a damaged entry, computes it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.trial.reference_pass import CACHE_FOLDER, bounded_rows, rows_read
from tests.helpers import TRAIN_ONLY_EVAL, dpo_trial, logged_losses, train_context


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A harness cache of this test's own (the toy world stays where tiny_world built it)."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / CACHE_FOLDER


def test_a_three_trial_sweep_computes_the_reference_pass_once(tiny_world, tmp_path, private_cache):
    # 16 steps of 4 rows read all 64 pairs: every seed's pass covers the same rows
    # (fewer steps read a subset drawn with the trial's seed: see the tests of the bound below).
    records = [
        dpo_trial(tiny_world, tmp_path / str(n), f"method.beta={beta}", f"seed={n}", "method.max_steps=16")
        for n, beta in enumerate([0.05, 0.1, 0.3])
    ]
    passes = [r["train"]["reference_logprobs"] for r in records]
    assert [p["computed"] for p in passes] == [True, False, False]
    assert len({p["cache"] for p in passes}) == 1
    assert len(list(private_cache.glob("*.arrow"))) == 1  # one pass stored, nothing else left there
    assert {(p["rows"], p["training_rows"]) for p in passes} == {(64, 64)}


def test_max_steps_bounds_the_reference_pass_to_the_rows_training_reads(tiny_world, tmp_path, private_cache):
    # FAST: 4 steps of 4 rows (no accumulation) read 16 of the 64 pairs.
    first = dpo_trial(tiny_world, tmp_path / "a", "method.grad_accum=1")
    same_seed = dpo_trial(tiny_world, tmp_path / "b", "method.grad_accum=1", "method.beta=0.3")
    other_seed = dpo_trial(tiny_world, tmp_path / "c", "method.grad_accum=1", "seed=7")
    passes = [r["train"]["reference_logprobs"] for r in (first, same_seed, other_seed)]
    assert [(p["rows"], p["training_rows"]) for p in passes] == [(16, 64)] * 3
    assert first["train"]["steps"] == 4 and first["data"]["train_examples"] == 64
    # The rows are drawn with the trial's seed: one pass per seed, shared by the trials of that seed.
    assert [p["computed"] for p in passes] == [True, False, True]
    assert passes[0]["cache"] == passes[1]["cache"] != passes[2]["cache"]


@pytest.mark.unit
def test_the_rows_training_reads():
    from types import SimpleNamespace

    from datasets import Dataset

    def args(max_steps, batch=4, accum=2, world=1):
        return SimpleNamespace(
            max_steps=max_steps,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accum,
            world_size=world,
        )

    assert rows_read(args(-1), 100) == 100  # epochs: every row
    assert rows_read(args(3), 100) == 24 and rows_read(args(3, world=2), 100) == 48
    assert rows_read(args(50), 100) == 100  # more steps than one epoch: every row
    data = Dataset.from_dict({"prompt": [str(i) for i in range(100)]})
    assert bounded_rows(data, args(-1), 0) is data
    drawn = bounded_rows(data, args(3), seed=1)
    assert len(drawn) == 24 == len(set(drawn["prompt"]))
    assert drawn["prompt"] == bounded_rows(data, args(3), seed=1)["prompt"]  # the seed decides
    assert drawn["prompt"] != bounded_rows(data, args(3), seed=2)["prompt"]
    assert drawn["prompt"] == sorted(drawn["prompt"], key=int)  # in the data's order


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
    # DPO precomputes the reference: it keeps the rows its 4 steps read (and writes no index file either).
    read = rows_read(trainer.args, len(ctx.train_data)) if method == "dpo" else len(ctx.train_data)
    assert len(trainer.train_dataset) == read and (method == "simpo" or read < len(ctx.train_data))
    assert set(beside.glob("cache-*.arrow")) == before
