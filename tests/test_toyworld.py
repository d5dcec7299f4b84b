"""The toy world: gold reward, grammar, tokenizer (alone and inside TRL's trainers),
cached deterministic build."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from harness.errors import ConfigError  # noqa: E402
from harness.toyworld import (  # noqa: E402
    ToyWorldSpec,
    build_tokenizer,
    build_toy_world,
    check,
    gold_reward,
    gold_reward_breakdown,
    gold_rewards,
)
from harness.toyworld import build as build_module  # noqa: E402
from harness.toyworld.reviews import TONES, sample_prompt, sample_review  # noqa: E402

# A world that builds in a couple of seconds (the default one takes about a minute).
TINY = ToyWorldSpec(
    hidden_size=32,
    intermediate_size=64,
    num_layers=1,
    num_heads=2,
    pretrain_steps=30,
    pretrain_batch_size=16,
    pretrain_warmup_steps=5,
    num_train_pairs=24,
    num_eval_pairs=8,
    num_eval_prompts=8,
    max_new_tokens=12,
    stats_samples_per_prompt=1,
    sample_batch_size=64,
)
MIX = {"positive": 0.25, "negative": 0.25, "neutral": 0.25, "mixed": 0.25}


# --- gold reward ------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_gold_reward_orders_sentiment() -> None:
    positive, neutral, negative = (
        "great . i loved the acting .",
        "long . i watched the film .",
        "dull . i hated the plot .",
    )
    assert gold_reward(positive) > gold_reward(neutral) > gold_reward(negative)
    assert gold_reward(neutral) == 0.0
    assert gold_reward(positive) == pytest.approx(-gold_reward(negative))
    assert gold_rewards([positive, negative]) == [gold_reward(positive), gold_reward(negative)]


@pytest.mark.unit
def test_negation_flips_the_next_adjective_or_verb() -> None:
    assert gold_reward("not bad .") == pytest.approx(gold_reward("good ."))
    assert gold_reward("not very good .") == pytest.approx(gold_reward("bad ."))
    assert gold_reward("did not like it .") < 0
    # "not" applies to the next adjective even when it is neutral: "great" keeps its polarity.
    assert gold_reward("not long and great .") == pytest.approx(gold_reward("great ."))
    # The scope of "not" ends at punctuation.
    assert gold_reward_breakdown("it was not , great .").sentiment > 0


@pytest.mark.unit
def test_each_penalty_lowers_the_reward() -> None:
    clean = gold_reward_breakdown("great . i loved the acting .")
    assert (clean.repeat_penalty, clean.unfinished_penalty, clean.grammar_penalty) == (0, 0, 0)
    repeated = gold_reward_breakdown("great . i loved the great acting .")
    unfinished = gold_reward_breakdown("great . i loved the acting")
    ungrammatical = gold_reward_breakdown("great . i loved acting the .")
    for broken, field in (
        (repeated, "repeat_penalty"),
        (unfinished, "unfinished_penalty"),
        (ungrammatical, "grammar_penalty"),
    ):
        assert getattr(broken, field) > 0
        assert broken.total < clean.total
    assert gold_reward("") < 0  # empty: unfinished
    salad = gold_reward_breakdown("great amazing superb wonderful brilliant fantastic")
    assert salad.sentiment > clean.sentiment and salad.total < 0  # word salad: high sentiment, low gold
    b = unfinished
    assert b.total == pytest.approx(b.sentiment - b.repeat_penalty - b.unfinished_penalty - b.grammar_penalty)


# --- grammar ----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_grammar_accepts_sampled_reviews_and_flags_shuffles() -> None:
    rng = random.Random(0)
    reviews = [sample_review(rng, TONES[i % 4]) for i in range(400)]
    for review in reviews:
        result = check(review, start="sentence")
        assert result.errors == 0 and result.finished and result.complete, review
        assert 8 <= result.n_tokens <= 30
    flagged = 0
    for review in reviews:
        words = review.split()
        rng.shuffle(words)
        flagged += check(words, start="sentence").errors > 0
    assert flagged >= 0.98 * len(reviews)


@pytest.mark.unit
def test_grammar_counts_transitions_and_judges_completions_mid_sentence() -> None:
    assert check("great . i loved it .").errors == 0  # continues e.g. "the movie was"
    assert check("the the movie was good .", start="sentence").errors == 1
    assert check("movie the was good .", start="sentence").errors >= 1
    assert check("those movie was good .", start="sentence").errors == 1  # number agreement
    assert check("i very loved it .", start="sentence").errors >= 1
    assert check("xyzzy .").errors == 1  # unknown word
    assert not check("i loved the").finished and check("i loved it .").finished


@pytest.mark.unit
def test_prompts_end_inside_a_clause() -> None:
    rng = random.Random(1)
    for _ in range(200):
        prompt = sample_prompt(rng, MIX)
        assert check(prompt, start="sentence").errors == 0
        assert prompt.split()[-1] not in (".", "not")
        assert check(prompt + " .", start="sentence").errors == 1  # the clause is unfinished


# --- tokenizer ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("toy-tokenizer")
    build_tokenizer().save_pretrained(str(directory))
    return AutoTokenizer.from_pretrained(str(directory))


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.unit
def test_tokenizer_round_trip(tokenizer) -> None:
    rng = random.Random(2)
    for _ in range(50):
        review = sample_review(rng, "mixed")
        ids = tokenizer(review)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
        assert tokenizer.unk_token_id not in ids and len(ids) == len(review.split()) + 1
        assert tokenizer.decode(ids, skip_special_tokens=True) == review
    assert tokenizer.padding_side == "left"
    # TRL appends the EOS string directly; prompt + " completion" splits at the space.
    assert _ids(tokenizer, "the movie was great .</s>")[-2:] == [
        _ids(tokenizer, ".")[0],
        tokenizer.eos_token_id,
    ]
    assert _ids(tokenizer, "the movie was" + " great .") == _ids(tokenizer, "the movie was") + _ids(
        tokenizer, "great ."
    )
    assert _ids(tokenizer, "flibbertigibbet") == [tokenizer.unk_token_id]
    batch = tokenizer(["it was", "the movie was great"], padding=True)["input_ids"]
    assert batch[0][0] == tokenizer.pad_token_id and batch[1][0] == tokenizer.bos_token_id


def _expected(tokenizer, prompt: str, completion: str) -> list[int]:
    return [
        tokenizer.bos_token_id,
        *_ids(tokenizer, prompt),
        *_ids(tokenizer, completion),
        tokenizer.eos_token_id,
    ]


@pytest.fixture(scope="module")
def tiny_model(tokenizer, tmp_path_factory: pytest.TempPathFactory):
    """A tiny untrained toy model, saved and loaded again (trainers load the reference from its path)."""
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    from harness.toyworld.pretrain import model_config

    directory = tmp_path_factory.mktemp("toy-model")
    LlamaForCausalLM(model_config(TINY, tokenizer)).save_pretrained(str(directory))
    return AutoModelForCausalLM.from_pretrained(str(directory))


ROW = {"prompt": "the movie was", "chosen": " great . i loved it .", "rejected": " dull ."}


def test_dpo_tokenization(tokenizer, tiny_model, tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    conversational = {
        "prompt": [{"role": "user", "content": ROW["prompt"]}],
        "chosen": [{"role": "assistant", "content": ROW["chosen"]}],
        "rejected": [{"role": "assistant", "content": ROW["rejected"]}],
    }
    args = DPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], save_strategy="no")
    for row in (ROW, conversational):
        trainer = DPOTrainer(
            model=tiny_model, args=args, train_dataset=Dataset.from_list([row]), processing_class=tokenizer
        )
        out = trainer.train_dataset[0]
        assert out["prompt_ids"] + out["chosen_ids"] == _expected(tokenizer, ROW["prompt"], ROW["chosen"])
        assert out["prompt_ids"] + out["rejected_ids"] == _expected(tokenizer, ROW["prompt"], ROW["rejected"])
        assert out["prompt_ids"] == [tokenizer.bos_token_id, *_ids(tokenizer, ROW["prompt"])]


def test_kto_tokenization(tokenizer, tiny_model, tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    rows = [
        {"prompt": ROW["prompt"], "completion": ROW["chosen"], "label": True},
        {"prompt": ROW["prompt"], "completion": ROW["rejected"], "label": False},
    ]
    args = KTOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        per_device_train_batch_size=2,
    )
    trainer = KTOTrainer(
        model=tiny_model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    for out, row in zip(trainer.train_dataset, rows, strict=True):
        assert out["prompt_ids"] + out["completion_ids"] == _expected(
            tokenizer, row["prompt"], row["completion"]
        )


@pytest.mark.parametrize("family", ["cpo", "orpo"])
def test_cpo_orpo_tokenization(tokenizer, tiny_model, tmp_path: Path, family: str) -> None:
    from datasets import Dataset

    if family == "cpo":
        from trl.experimental.cpo import CPOConfig as Config
        from trl.experimental.cpo import CPOTrainer as Trainer
    else:
        from trl.experimental.orpo import ORPOConfig as Config
        from trl.experimental.orpo import ORPOTrainer as Trainer
    args = Config(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], save_strategy="no")
    trainer = Trainer(
        model=tiny_model, args=args, train_dataset=Dataset.from_list([ROW]), processing_class=tokenizer
    )
    out = trainer.train_dataset[0]
    assert out["chosen_input_ids"] == _expected(tokenizer, ROW["prompt"], ROW["chosen"])
    assert out["rejected_input_ids"] == _expected(tokenizer, ROW["prompt"], ROW["rejected"])


# --- spec and build -----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_spec_from_dict_and_key() -> None:
    assert ToyWorldSpec.from_dict({}) == ToyWorldSpec()
    assert ToyWorldSpec.from_dict({"pretrain_lr": 1}).key() == ToyWorldSpec(pretrain_lr=1.0).key()
    assert ToyWorldSpec(seed=1).key() != ToyWorldSpec().key()
    with pytest.raises(ConfigError, match="hidden_size"):
        ToyWorldSpec.from_dict({"hiden_size": 64})
    with pytest.raises(ConfigError, match="integer"):
        ToyWorldSpec.from_dict({"num_layers": "two"})
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        ToyWorldSpec(hidden_size=30, num_heads=4)


def test_build_is_complete_cached_and_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    world = build_toy_world(TINY, cache_dir=tmp_path / "a", progress=False)
    assert world.root == tmp_path / "a" / TINY.key()
    model = AutoModelForCausalLM.from_pretrained(str(world.model_dir))
    assert AutoTokenizer.from_pretrained(str(world.model_dir)).vocab_size == model.config.vocab_size
    assert (world.model_dir / "model.safetensors").is_file()
    train = [json.loads(line) for line in world.train_pairs_path.read_text().splitlines()]
    eval_pairs = [json.loads(line) for line in world.eval_pairs_path.read_text().splitlines()]
    prompts = [json.loads(line)["prompt"] for line in world.eval_prompts_path.read_text().splitlines()]
    assert (len(train), len(eval_pairs), len(prompts)) == (24, 8, 8)
    assert set(train[0]) == {"prompt", "chosen", "rejected"} and train[0]["chosen"].startswith(" ")
    assert all(r["chosen"] != r["rejected"] for r in train)
    train_prompts = {r["prompt"] for r in train}
    assert not train_prompts & set(prompts) and not train_prompts & {r["prompt"] for r in eval_pairs}
    # Selection prompts and pairs (what checkpoints are chosen on): disjoint from every other prompt.
    selection = [json.loads(line)["prompt"] for line in world.selection_prompts_path.read_text().splitlines()]
    selection_pairs = [json.loads(line) for line in world.selection_pairs_path.read_text().splitlines()]
    assert (len(selection), len(set(selection)), len(selection_pairs)) == (64, 64, 128)
    others = train_prompts | set(prompts) | {r["prompt"] for r in eval_pairs}
    assert not set(selection) & others and not {r["prompt"] for r in selection_pairs} & (
        others | set(selection)
    )
    assert world.meta["num_selection_prompts"] == 64 and world.meta["selection_pairs"]["n"] == 128
    assert world.meta["spec"] == TINY.to_dict() and world.meta["parameters"] == model.num_parameters()
    assert world.gold_reward("great .") == gold_reward("great .")

    # Cached: a second call does not build (even in another cache object for the same directory).
    monkeypatch.setattr(build_module, "_build_into", lambda *a, **k: pytest.fail("rebuilt a cached world"))
    again = build_toy_world(TINY, cache_dir=tmp_path / "a", progress=False)
    assert again.root == world.root and again.meta == world.meta
    monkeypatch.undo()

    # Same spec elsewhere: identical data and weights; another spec: another key.
    other = build_toy_world(TINY, cache_dir=tmp_path / "b", progress=False)
    assert other.train_pairs_path.read_bytes() == world.train_pairs_path.read_bytes()
    assert (other.model_dir / "model.safetensors").read_bytes() == (
        world.model_dir / "model.safetensors"
    ).read_bytes()
    assert ToyWorldSpec(**{**TINY.to_dict(), "seed": 1}).key() != TINY.key()


def test_concurrent_builds_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = build_module._build_into

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(build_module, "_build_into", counting)
    spec = ToyWorldSpec(**{**TINY.to_dict(), "pretrain_steps": 5, "num_train_pairs": 4})
    roots: list[Path] = []
    threads = [
        threading.Thread(target=lambda: roots.append(build_toy_world(spec, tmp_path, progress=False).root))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(roots) == 2 and roots[0] == roots[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([spec.key(), f"{spec.key()}.lock"])
