"""A TRL trainer's prepared (tokenized) data is computed once per key and read by later trials, which train
bit-identically to a trainer that prepares it itself; a change that matters, or a damaged entry, prepares it
again."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.trial.prepared_data import CACHE_FOLDER, prepares_data
from harness.trial.trainer_cache import read_entry, rows_digest, write_entry
from tests.helpers import TRAIN_ONLY_EVAL, dpo_trial, logged_losses, train_context


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A harness cache of this test's own (the toy world stays where tiny_world built it)."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / CACHE_FOLDER


@pytest.fixture
def uncached(monkeypatch):
    """A switch: ``uncached()`` makes every later trainer prepare its data itself, as TRL does."""
    return lambda: monkeypatch.setattr("harness.trial.context.prepares_data", lambda trainer_class: False)


# --- unit ---------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_trainers_whose_preparation_is_cached():
    import trl
    from trl.experimental.cpo import CPOTrainer
    from trl.experimental.orpo import ORPOTrainer

    assert all(
        prepares_data(cls) for cls in (trl.DPOTrainer, trl.KTOTrainer, trl.SFTTrainer, trl.RewardTrainer)
    )
    assert not any(prepares_data(cls) for cls in (ORPOTrainer, CPOTrainer))

    class OwnPreparation(trl.DPOTrainer):  # code the key does not know: uncached
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    assert not prepares_data(OwnPreparation)
    assert prepares_data(type("Subclass", (trl.DPOTrainer,), {}))


@pytest.mark.unit
def test_a_damaged_or_partial_entry_is_not_read(tmp_path):
    from datasets import Dataset

    data = Dataset.from_dict({"prompt_ids": [[1, 2], [3]], "chosen_ids": [[4], [5, 6, 7]]})
    path = tmp_path / "entry.arrow"
    write_entry(path, data, seconds=0.1)
    assert rows_digest(read_entry(path)) == rows_digest(data)
    assert read_entry(path, rows=3) is None  # not the rows asked for

    stored = path.read_bytes()
    damaged = bytearray(stored)
    damaged[-16] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert read_entry(path) is None
    path.write_bytes(stored[: len(stored) // 2])  # a partial file
    assert read_entry(path) is None
    path.write_bytes(stored)
    path.with_suffix(".json").unlink()  # no sidecar: never completed
    assert read_entry(path) is None


# --- trainers built on the tiny world -----------------------------------------------------------------------


def build(ctx, method: str):
    """The trainer ``method``'s plugin builds (the reward model's on the policy's backbone)."""
    from harness_plugins.methods import kto, reward, sft

    if method == "reward":
        return ctx.trl_trainer(model=reward.load_reward_backbone(ctx))
    return {
        "dpo": lambda: ctx.trl_trainer(ref_model=ctx.reference),
        "kto": lambda: kto.build_trainer(ctx),
        "sft": lambda: sft.build_trainer(ctx),
    }[method]()


@pytest.mark.parametrize("method", ["dpo", "kto", "sft", "reward"])
def test_each_trainer_reads_the_data_it_prepared(tiny_world, tmp_path, private_cache, uncached, method):
    ctx = train_context(tiny_world, tmp_path / "t", [f"method={method}", *TRAIN_ONLY_EVAL])
    first = build(ctx, method)
    assert ctx.prepared_data["computed"] is True and ctx.prepared_data["cache"].startswith(str(private_cache))
    second = build(ctx, method)
    assert ctx.prepared_data["computed"] is False
    assert len(list(private_cache.glob("*.arrow"))) == 1
    uncached()
    own = build(ctx, method)
    assert ctx.prepared_data is None
    assert len(own.train_dataset) == len(second.train_dataset) > 0
    assert (
        rows_digest(second.train_dataset)
        == rows_digest(first.train_dataset)
        == rows_digest(own.train_dataset)
    )


def test_a_change_that_matters_prepares_the_data_again(tiny_world, tmp_path, private_cache):
    ctx = train_context(tiny_world, tmp_path / "t", ["method=dpo", *TRAIN_ONLY_EVAL])
    build(ctx, "dpo")
    assert ctx.prepared_data["computed"] is True
    ctx.tokenizer.eos_token = ctx.tokenizer.unk_token  # another EOS appended to every completion
    changed = build(ctx, "dpo")
    assert ctx.prepared_data["computed"] is True
    assert all(ids[-1] == ctx.tokenizer.unk_token_id for ids in changed.train_dataset["chosen_ids"])
    assert len(list(private_cache.glob("*.arrow"))) == 2


# --- trials -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_later_trial_reads_the_prepared_data_and_trains_bit_identically(
    tiny_world, tmp_path, private_cache, uncached
):
    first = dpo_trial(tiny_world, tmp_path / "a", "method.learning_rate=1e-3")
    read = dpo_trial(tiny_world, tmp_path / "b", "method.learning_rate=2e-3")
    assert first["train"]["prepared_data"]["computed"] is True
    assert read["train"]["prepared_data"]["computed"] is False
    assert read["train"]["prepared_data"]["cache"] == first["train"]["prepared_data"]["cache"]
    assert read["train"]["reference_logprobs"]["computed"] is False
    uncached()  # TRL prepares the data itself (and the reference pass is keyed on its rows: computed again)
    own = dpo_trial(tiny_world, tmp_path / "c", "method.learning_rate=2e-3")
    assert "prepared_data" not in own["train"] and own["train"]["reference_logprobs"]["computed"] is True
    assert logged_losses(read) == logged_losses(own) and len(logged_losses(read)) >= 1
    assert read["checkpoints"][-1]["metrics"] == own["checkpoints"][-1]["metrics"]


@pytest.mark.slow
def test_a_setting_of_the_preparation_or_a_damaged_entry_prepares_it_again(
    tiny_world, tmp_path, private_cache
):
    first = dpo_trial(tiny_world, tmp_path / "a")
    shorter = dpo_trial(
        tiny_world, tmp_path / "b", "method.trl.max_length=24"
    )  # drops rows whose prompt fills it
    assert shorter["train"]["prepared_data"]["computed"] is True
    assert shorter["train"]["prepared_data"]["cache"] != first["train"]["prepared_data"]["cache"]

    entry = Path(first["train"]["prepared_data"]["cache"])
    data = bytearray(entry.read_bytes())
    data[-64] ^= 0xFF  # one flipped byte in the stored token ids
    entry.write_bytes(bytes(data))
    again = dpo_trial(tiny_world, tmp_path / "c")
    assert again["train"]["prepared_data"]["computed"] is True
    assert again["train"]["reference_logprobs"]["computed"] is False  # the same rows: the same pass
    assert logged_losses(again) == logged_losses(first)
