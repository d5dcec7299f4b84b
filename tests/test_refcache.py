"""The reference-evaluation cache: computed once per model, data and evaluation settings,
reused by every trial."""

from __future__ import annotations

import shutil

import pytest
import torch
from omegaconf import open_dict
from safetensors.torch import load_file, save_file

import harness.evaluation.context
from harness.evaluation.refcache import RefCache, default_cache_dir, model_fingerprint, open_reference_cache
from harness.evaluation.sampling import sample
from harness.trial import TrialRun
from tests.helpers import compose
from tests.test_kl import one_thread, tiny_lm, tiny_tokenizer  # noqa: F401 (one_thread: autouse)

EVALUATORS = "eval.evaluators=[gold_reward,kl,text_stats,win_rate,preference_accuracy]"


@pytest.fixture
def sample_calls(monkeypatch):
    """Counts calls to the sampler that evaluation uses."""
    calls = []
    real = harness.evaluation.context.sample

    def counting(*args, **kwargs):
        calls.append(kwargs.get("desc"))
        return real(*args, **kwargs)

    monkeypatch.setattr(harness.evaluation.context, "sample", counting)
    return calls


def prepared(tiny_world, trial_dir, cache_dir, overrides=(), cache=True):
    """A TrialRun after prepare() (reference evaluated), with its reference cache in ``cache_dir``."""
    cfg = compose(tiny_world, [EVALUATORS, *overrides])
    with open_dict(cfg):
        cfg.eval.cache_dir = str(cache_dir)
        cfg.eval.cache = cache
    run = TrialRun(cfg, trial_dir)
    ctx = run.prepare()
    return run, ctx


def test_a_second_trial_reuses_the_reference_evaluation(tiny_world, tmp_path, sample_calls):
    cache_dir = tmp_path / "refeval"
    first, _ = prepared(tiny_world, tmp_path / "a", cache_dir)
    rng_first = torch.rand(3)
    # The reported prompts and the selection prompts (harness.trial.selection) each have their own entry.
    assert (
        first.record["reference"]["cached"] is False
        and first.record["reference"]["selection"]["cached"] is False
    )
    assert sample_calls == ["sampling reference", "selection: sampling reference"]

    sample_calls.clear()
    second, ctx = prepared(
        tiny_world, tmp_path / "b", cache_dir, ["method.beta=0.3"]
    )  # another trial of a sweep
    rng_second = torch.rand(3)
    ref = second.record["reference"]
    assert ref["cached"] is True and ref["selection"]["cached"] is True and sample_calls == []
    assert ref["metrics"] == first.record["reference"]["metrics"]
    assert ref["selection"]["metrics"] == first.record["reference"]["selection"]["metrics"]
    assert ref["cache_key"] == first.record["reference"]["cache_key"] and ref["eval_s"] >= 0
    assert (
        ref["selection"]["cache_key"]
        == first.record["reference"]["selection"]["cache_key"]
        != ref["cache_key"]
    )
    assert torch.equal(rng_first, rng_second)  # training starts from the same RNG state, hit or miss

    # A checkpoint samples only the policy: the win rate's reference samples come from the cache.
    with torch.no_grad():
        for weight in ctx.policy.parameters():
            weight.add_(torch.randn_like(weight) * 0.05)
    result = second.checkpointer.evaluate(ctx.policy, 2)
    assert sample_calls == ["sampling step 2", "selection: sampling step 2"]
    assert {"win_rate", "preference_accuracy", "kl_k3", "entropy"} <= set(result.metrics)
    # The selection prompts measure what chooses the checkpoint: the objective (the gold reward) and the KL.
    assert set(result.selection.metrics) == {
        "gold_reward",
        "gold_reward_se",
        "kl",
        "kl_se",
        "kl_k3",
        "kl_k3_se",
    }


@pytest.mark.parametrize("override", ["eval.seed=99", "eval.num_prompts=4", "eval.max_new_tokens=6"])
def test_a_changed_evaluation_setting_misses_the_cache(tiny_world, tmp_path, sample_calls, override):
    cache_dir = tmp_path / "refeval"
    first, _ = prepared(tiny_world, tmp_path / "a", cache_dir)
    sample_calls.clear()
    second, _ = prepared(tiny_world, tmp_path / "b", cache_dir, [override])
    assert second.record["reference"]["cached"] is False
    assert [c for c in sample_calls if not c.startswith("selection")] == ["sampling reference"]
    assert second.record["reference"]["cache_key"] != first.record["reference"]["cache_key"]
    # The selection prompts do not depend on eval.num_prompts; their seed (eval.seed + 1)
    # and length settings do.
    selection_hit = override == "eval.num_prompts=4"
    assert second.record["reference"]["selection"]["cached"] is selection_hit
    assert ("selection: sampling reference" in sample_calls) is not selection_hit


def test_a_changed_selection_setting_misses_only_the_selection_entry(tiny_world, tmp_path, sample_calls):
    cache_dir = tmp_path / "refeval"
    first, _ = prepared(tiny_world, tmp_path / "a", cache_dir)
    sample_calls.clear()
    second, _ = prepared(tiny_world, tmp_path / "b", cache_dir, ["eval.selection.seed=7"])
    ref = second.record["reference"]
    assert ref["cached"] is True and ref["cache_key"] == first.record["reference"]["cache_key"]
    assert ref["selection"]["cached"] is False and sample_calls == ["selection: sampling reference"]
    assert ref["selection"]["cache_key"] != first.record["reference"]["selection"]["cache_key"]


def test_with_the_cache_off_nothing_is_written_or_reused(tiny_world, tmp_path, sample_calls):
    cache_dir = tmp_path / "refeval"
    for name in ("a", "b"):
        run, _ = prepared(tiny_world, tmp_path / name, cache_dir, cache=False)
        assert (
            run.record["reference"]["cached"] is False
            and run.record["reference"]["selection"]["cached"] is False
        )
    assert len(sample_calls) == 4 and not cache_dir.exists()  # reported and selection prompts, in each trial


def test_a_changed_model_changes_the_key(tiny_world, tmp_path):
    from transformers import AutoTokenizer

    from harness.config.resources import resolve_model_path
    from harness.plugin.manager import get_plugin_manager

    cfg = compose(tiny_world, [])
    with open_dict(cfg):
        cfg.eval.cache_dir = str(tmp_path / "refeval")
    source = resolve_model_path(get_plugin_manager([]), cfg)
    copy = tmp_path / "model"
    shutil.copytree(source, copy)
    tok = AutoTokenizer.from_pretrained(copy)

    def key(path):
        return open_reference_cache(cfg, model_path=str(path), tokenizer=tok, prompts=["a"]).key

    assert key(copy) == key(copy)
    before = model_fingerprint(str(copy))
    weights = load_file(copy / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    assert model_fingerprint(str(copy)) != before
    assert key(copy) != key(source)


def tiny_samples():
    tok = tiny_tokenizer()
    return sample(
        tiny_lm(scale=0.3), tok, ["a", "b c d"], samples_per_prompt=3, max_new_tokens=4, batch_size=4
    )


@pytest.mark.unit
def test_entries_round_trip_through_disk(tmp_path):
    samples = tiny_samples()
    writer = RefCache("k", tmp_path / "k", {"what": "test"})
    writer.store_samples(samples)
    writer.store_tensor("gold_rewards", torch.tensor([1.0, -0.5], dtype=torch.float64))
    writer.store_metrics("kl", {"kl": 0.0})
    writer.store_metrics("gold_reward", {"gold_reward": 0.25})

    reader = RefCache("k", tmp_path / "k")
    loaded = reader.samples()
    assert loaded.prompts == samples.prompts and loaded.completions == samples.completions
    for a, b in zip(loaded.batches, samples.batches, strict=True):
        assert all(
            torch.equal(getattr(a, f), getattr(b, f))
            for f in ("input_ids", "attention_mask", "completion_mask", "finished")
        )
    assert torch.equal(reader.tensor("gold_rewards"), torch.tensor([1.0, -0.5], dtype=torch.float64))
    assert reader.tensor("missing") is None
    assert reader.metrics() == {"kl": {"kl": 0.0}, "gold_reward": {"gold_reward": 0.25}}
    assert not list((tmp_path / "k").glob("*.tmp"))  # atomic writes leave no temporary files


@pytest.mark.unit
def test_a_damaged_entry_is_a_miss_not_an_error(tmp_path):
    writer = RefCache("k", tmp_path / "k")
    writer.store_samples(tiny_samples())
    path = tmp_path / "k" / "samples.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        assert RefCache("k", tmp_path / "k").samples() is None


@pytest.mark.unit
def test_the_in_memory_cache_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = RefCache("k")
    cache.store_samples(tiny_samples())
    cache.store_metrics("kl", {"kl": 0.0})
    assert cache.samples() is not None and cache.metrics() == {"kl": {"kl": 0.0}}
    assert not list(tmp_path.iterdir())


@pytest.mark.unit
def test_default_location_follows_harness_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "refeval"


@pytest.mark.unit
def test_the_entry_lock_makes_a_second_trial_wait_for_the_first(tmp_path):
    import threading
    import time

    holder = RefCache("k", tmp_path / "k")
    held, release = threading.Event(), threading.Event()

    def first_trial():
        with holder.locked():
            held.set()
            release.wait(5)

    thread = threading.Thread(target=first_trial)
    thread.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    start = time.perf_counter()
    with RefCache("k", tmp_path / "k").locked():
        waited = time.perf_counter() - start
    thread.join()
    assert waited >= 0.2


@pytest.mark.unit
def test_an_unwritable_cache_only_warns_and_keeps_the_entry_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = RefCache("k", blocker / "k")
    with pytest.warns(UserWarning, match="cannot write"):
        cache.store_samples(tiny_samples())
    with cache.locked():
        assert cache.samples() is not None
