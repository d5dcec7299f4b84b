"""The checkpoint evaluators: text statistics, win rate, held-out preference accuracy, reward-model score.

Most tests use two tiny models over the words a-d: a reference, and a policy that strongly prefers "c" (its
logit for "c" is raised at every position), so the direction of every metric is known in advance.
"""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from harness_plugins.evaluators import kl as eval_kl
from harness_plugins.evaluators import preference_accuracy as eval_preference
from harness_plugins.evaluators import reward_model as eval_reward_model
from harness_plugins.evaluators import text_stats as eval_text_stats
from harness_plugins.evaluators import win_rate as eval_win_rate
from omegaconf import OmegaConf, open_dict

from harness.config.validation import validate_trial_config
from harness.errors import ConfigError
from harness.evaluation import reward_models
from harness.evaluation.context import EvalContext
from harness.evaluation.reference import Reference
from harness.evaluation.sampling import Samples, encode_completions, sample, token_logprobs
from harness.plugin.manager import get_plugin_manager
from tests.helpers import compose
from tests.test_kl import EOS, VOCAB, one_thread, tiny_lm, tiny_tokenizer  # noqa: F401 (one_thread: autouse)

C = VOCAB["c"]
PROMPTS = ["a", "b a", "d", "a b d", "b"] * 4
CHAT_VOCAB = {**VOCAB, "user": 6, "assistant": 7}
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant {% endif %}"
)


def reference_and_policy(vocab_size: int = len(VOCAB)):
    """A reference model and a copy whose logit for "c" is about 4 higher at every position."""
    reference = tiny_lm(seed=3, scale=0.1, vocab_size=vocab_size)
    with torch.no_grad():
        # A large constant in hidden dimension 0 survives the final RMSNorm as h_0 ≈ 4 everywhere ...
        reference.model.embed_tokens.weight[:, 0] = 5.0
    policy = copy.deepcopy(reference)
    with torch.no_grad():  # ... so raising the "c" row of the output layer there raises the logit of "c".
        policy.lm_head.weight[C, 0] += 1.0
    return reference, policy


def count_c(prompts, completions):
    """A gold reward: how many times "c" occurs in the completion."""
    return [float(c.split().count("c")) for c in completions]


def make_ctx(policy, reference, tok, *, gold=None, pairs=None, is_reference=False, refcache=None, **settings):
    settings = {
        "samples_per_prompt": 2,
        "max_new_tokens": 4,
        "temperature": 1.0,
        "batch_size": 64,
        "seed": 7,
        **settings,
    }
    cfg = OmegaConf.create({"eval": settings})
    return EvalContext(
        cfg=cfg,
        step=1,
        policy=policy,
        reference=Reference(model=reference),
        tokenizer=tok,
        prompts=PROMPTS,
        gold_reward=gold,
        is_reference=is_reference,
        preference_pairs=pairs,
        refcache=refcache,
    )


@pytest.fixture(scope="module")
def models():
    return reference_and_policy()


@pytest.mark.unit
def test_the_new_evaluators_are_registered_through_entry_points():
    names = set(get_plugin_manager([]).evaluators)
    assert {"gold_reward", "kl", "text_stats", "win_rate", "preference_accuracy", "reward_model"} <= names


# --- text statistics --------------------------------------------------------------------------------------


@pytest.mark.unit
def test_distinct_n_counts_unique_ngrams_over_all_completions():
    seqs = [[1, 2, 1, 2], [1, 2], []]
    assert eval_text_stats.distinct_n(seqs, 1) == pytest.approx(2 / 6)
    assert eval_text_stats.distinct_n(seqs, 2) == pytest.approx(2 / 4)  # (1,2) three times, (2,1) once
    assert eval_text_stats.distinct_n([[1], []], 2) == 0.0


@pytest.mark.unit
def test_text_stats_measure_length_diversity_and_entropy(models):
    reference, policy = models
    tok = tiny_tokenizer()
    stats = {}
    for name, model in (("reference", reference), ("policy", policy)):
        ctx = make_ctx(model, reference, tok)
        stats[name] = eval_text_stats.evaluate(ctx)
        samples = ctx.policy_samples
        expected_length = (samples.completion_lengths - samples.finished.long()).double().mean()
        assert stats[name]["length"] == pytest.approx(float(expected_length))
        assert stats[name]["finished"] == pytest.approx(float(samples.finished.double().mean()))
        assert 0 < stats[name]["entropy"] < math.log(len(VOCAB))
    # The policy that piles onto "c" is less diverse and less uncertain than the reference.
    assert stats["policy"]["entropy"] < stats["reference"]["entropy"] - 0.3
    assert stats["policy"]["distinct_2"] < stats["reference"]["distinct_2"]


@pytest.mark.unit
def test_entropy_comes_from_the_forward_pass_the_kl_already_made(models):
    reference, policy = models
    ctx = make_ctx(policy, reference, tiny_tokenizer())
    calls = []
    handle = policy.register_forward_hook(lambda *args: calls.append(1))
    try:
        eval_kl.evaluate(ctx)
        before = len(calls)
        eval_text_stats.evaluate(ctx)
    finally:
        handle.remove()
    assert before > 0 and len(calls) == before


# --- win rate ---------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_win_rates_count_ties_half_and_compare_every_pair_within_a_prompt():
    one = eval_win_rate.win_rates(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 5.0]), 1)
    assert one.tolist() == [1.0, 0.5, 0.0]
    two = eval_win_rate.win_rates(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 3.0]), 2)
    assert two.tolist() == [pytest.approx((0 + 0 + 1 + 0.5) / 4)]


@pytest.mark.unit
def test_win_rate_of_a_better_policy_against_the_reference_samples(models):
    reference, policy = models
    tok = tiny_tokenizer()
    ctx = make_ctx(policy, reference, tok, gold=count_c)
    metrics = eval_win_rate.evaluate(ctx)
    # the reference's own samples, same prompts and seed
    expected = sample(reference, tok, PROMPTS, samples_per_prompt=2, max_new_tokens=4, batch_size=64, seed=7)
    assert ctx.reference_samples.completions == expected.completions
    direct = eval_win_rate.win_rates(ctx.gold_rewards, torch.tensor(count_c(None, expected.completions)), 2)
    assert metrics["win_rate"] == pytest.approx(float(direct.mean()))
    assert metrics["win_rate"] > 0.7 and 0 < metrics["win_rate_se"] < 0.1


@pytest.mark.unit
def test_win_rate_is_one_half_for_the_reference_and_absent_without_a_reward(models):
    reference, policy = models
    tok = tiny_tokenizer()
    assert eval_win_rate.evaluate(make_ctx(reference, reference, tok, gold=count_c, is_reference=True)) == {
        "win_rate": 0.5,
        "win_rate_se": 0.0,
    }
    assert eval_win_rate.evaluate(make_ctx(policy, reference, tok)) == {}


# --- held-out preference accuracy -------------------------------------------------------------------------


def pairs_for(prompt_of, good: str, bad: str, n: int, flip_every: int = 0):
    """``n`` pairs preferring ``good`` (or ``bad`` for every ``flip_every``-th pair)."""
    rows = []
    for i in range(n):
        flip = flip_every and i % flip_every == flip_every - 1
        chosen, rejected = (bad, good) if flip else (good, bad)
        rows.append({"prompt": prompt_of(i), "chosen": chosen, "rejected": rejected})
    return rows


@pytest.mark.unit
def test_encoded_pairs_are_scored_like_an_unpadded_forward_with_eos_appended(models):
    reference, _ = models
    tok = tiny_tokenizer()
    prompts, completions = ["a", "b a d"], [" c", " d d a"]
    encoded = encode_completions(tok, prompts, completions)
    scores = token_logprobs(reference, encoded).sequence()
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        ids = tok(p + c + tok.eos_token)["input_ids"]
        n = len(tok(c)["input_ids"]) + 1
        assert ids[-1] == EOS and encoded.completion_token_ids()[i] == ids[-n:]
        with torch.no_grad():
            logp = torch.log_softmax(reference(input_ids=torch.tensor([ids])).logits[0, :-1], dim=-1)
        expected = logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])][-n:].sum()
        assert float(scores[i]) == pytest.approx(float(expected), abs=1e-5)


@pytest.mark.unit
def test_length_sorted_scoring_keeps_the_order_and_gives_an_empty_completion_nothing(models):
    reference, _ = models
    tok = tiny_tokenizer()
    prompts, completions = ["a", "b a d a b", "d", "a b"], [" c d d a", " c", "", " d"]
    encoded = encode_completions(tok, prompts, completions, append_eos=False)
    scores = token_logprobs(reference, encoded, chunk_size=2)  # sorted by length: batches mix the rows
    assert scores.mask.sum(dim=1).tolist() == [4, 1, 0, 1] and scores.logprobs.shape == (4, 4)
    assert float(scores.sequence()[2]) == 0.0
    for i in (0, 1, 3):
        alone = token_logprobs(
            reference, encode_completions(tok, [prompts[i]], [completions[i]], append_eos=False)
        )
        assert torch.allclose(scores.logprobs[i, : int(scores.mask[i].sum())], alone.logprobs[0], atol=1e-6)


@pytest.mark.unit
@pytest.mark.parametrize("flip_every, accuracy", [(0, 1.0), (4, 0.75)])
def test_preference_accuracy_ranks_pairs_by_the_implicit_reward(models, flip_every, accuracy):
    reference, policy = models
    pairs = pairs_for(lambda i: PROMPTS[i % len(PROMPTS)], " c c", " d d", 8, flip_every)
    metrics = eval_preference.evaluate(make_ctx(policy, reference, tiny_tokenizer(), pairs=pairs))
    assert metrics["preference_accuracy"] == pytest.approx(accuracy)
    assert (metrics["preference_margin"] > 0) == (accuracy > 0.5)


@pytest.mark.unit
def test_preference_accuracy_on_conversational_pairs():
    reference, policy = reference_and_policy(vocab_size=len(CHAT_VOCAB))
    tok = tiny_tokenizer(CHAT_VOCAB, CHAT_TEMPLATE)
    pairs = [
        {
            "prompt": [{"role": "user", "content": "a b"}],
            "chosen": [{"role": "assistant", "content": "c c"}],
            "rejected": [{"role": "assistant", "content": "d d"}],
        }
    ] * 3
    pairs.append({**pairs[0], "chosen": pairs[0]["rejected"], "rejected": pairs[0]["chosen"]})
    metrics = eval_preference.evaluate(make_ctx(policy, reference, tok, pairs=pairs))
    assert metrics["preference_accuracy"] == pytest.approx(0.75)


@pytest.mark.unit
def test_preference_accuracy_limits_pairs_is_one_half_for_the_reference_and_absent_without_pairs(models):
    reference, policy = models
    tok = tiny_tokenizer()
    # only the first 4 pairs count: all correct; the flipped ones come after
    pairs = pairs_for(lambda i: "a", " c", " d", 4) + pairs_for(lambda i: "a", " d", " c", 4)
    assert (
        eval_preference.evaluate(make_ctx(policy, reference, tok, pairs=pairs, preference_pairs=4))[
            "preference_accuracy"
        ]
        == 1.0
    )
    assert eval_preference.evaluate(make_ctx(reference, reference, tok, pairs=pairs, is_reference=True)) == {
        "preference_accuracy": 0.5,
        "preference_accuracy_se": 0.0,
        "preference_margin": 0.0,
    }
    assert eval_preference.evaluate(make_ctx(policy, reference, tok, pairs=None)) == {}


@pytest.mark.unit
def test_reference_pair_logprobs_are_computed_once_and_reused(models):
    from harness.evaluation.refcache import RefCache

    reference, policy = models
    tok = tiny_tokenizer()
    loads = []

    def loader():
        loads.append(1)
        return reference

    cache = RefCache("test")
    pairs = pairs_for(lambda i: "a b", " c", " d", 6)
    results = []
    for _ in range(2):
        ctx = make_ctx(policy, reference, tok, pairs=pairs, refcache=cache)
        ctx.reference = Reference(loader=loader)
        results.append(eval_preference.evaluate(ctx))
    assert len(loads) == 1 and results[0] == results[1]


@pytest.mark.unit
def test_the_reference_pair_logprobs_are_computed_at_step_0_not_at_a_checkpoint(models):
    from harness.evaluation.refcache import RefCache

    reference, policy = models
    tok = tiny_tokenizer()
    pairs = pairs_for(lambda i: "a b", " c", " d d", 6)
    cache = RefCache("test")
    assert (
        eval_preference.evaluate(
            make_ctx(reference, reference, tok, pairs=pairs, refcache=cache, is_reference=True)
        )["preference_accuracy"]
        == 0.5
    )
    stored = cache.tensor("pair_logprobs")
    assert stored is not None and stored.shape == (2, 6)
    ctx = make_ctx(policy, reference, tok, pairs=pairs, refcache=cache)
    ctx.reference = Reference(loader=lambda: pytest.fail("a checkpoint loaded the reference"))
    assert eval_preference.evaluate(ctx) == eval_preference.evaluate(
        make_ctx(policy, reference, tok, pairs=pairs)
    )


@pytest.mark.unit
def test_held_out_pairs_are_encoded_once_per_trial_and_scored_in_one_pass(models, monkeypatch):
    from harness.evaluation.refcache import RefCache

    reference, policy = models
    tok = tiny_tokenizer()
    encodes, forwards = [], []
    real_encode = eval_preference.encode_pairs
    monkeypatch.setattr(
        eval_preference, "encode_pairs", lambda *a, **k: encodes.append(1) or real_encode(*a, **k)
    )

    @functools.wraps(policy.forward)
    def counted_forward(*args, **kwargs):
        forwards.append(kwargs["input_ids"].shape[0])
        return counted_forward.__wrapped__(*args, **kwargs)

    monkeypatch.setattr(policy, "forward", counted_forward)
    pairs = [
        {
            "prompt": PROMPTS[n % len(PROMPTS)],
            "chosen": " c c" if n % 4 else " d",
            "rejected": " d" * (1 + n % 3),
        }
        for n in range(12)
    ]  # completions of several lengths
    cache = RefCache("test")  # one trial's reference cache: the checkpoints share it
    results = [
        eval_preference.evaluate(
            make_ctx(policy, reference, tok, pairs=pairs, refcache=cache, logprob_batch_size=batch)
        )
        for batch in (64, 64, 5)
    ]
    assert encodes == [1]  # three checkpoints, one encoding
    # Chosen and rejected together: one forward pass of all 24 sequences per checkpoint, or 5 at a time.
    assert forwards == [24, 24, 5, 5, 5, 5, 4]
    assert results[0] == results[1]
    for key, value in results[0].items():  # the batching changes nothing but float rounding
        assert results[2][key] == pytest.approx(value, abs=1e-6)
    # The values are those of each pair scored alone, without padding.
    chosen, rejected = eval_preference.encode_pairs(tok, pairs, 64)
    alone = torch.tensor(
        [
            [
                float(
                    token_logprobs(
                        policy, encode_completions(tok, [row["prompt"]], [row[column]])
                    ).sequence()[0]
                )
                for row in pairs
            ]
            for column in ("chosen", "rejected")
        ]
    )
    both = Samples.concat(chosen, rejected)
    joined = eval_preference.pair_logprobs(make_ctx(policy, reference, tok), policy, both)
    assert torch.allclose(joined.float(), alone, atol=1e-5)
    implicit = joined - eval_preference.pair_logprobs(make_ctx(policy, reference, tok), reference, both)
    assert results[0]["preference_margin"] == pytest.approx(
        float((implicit[0] - implicit[1]).mean()), abs=1e-6
    )


def test_kto_trial_measures_preference_accuracy_on_the_pairs_before_unpairing(tiny_world, tmp_path):
    from harness.trial import TrialRun

    cfg = compose(tiny_world, ["method=kto", "eval.evaluators=[preference_accuracy]"])
    run = TrialRun(cfg, tmp_path)
    ctx = run.prepare()
    assert run.record["reference"]["metrics"]["preference_accuracy"] == 0.5
    policy = ctx.policy
    with torch.no_grad():
        for weight in policy.parameters():
            weight.add_(torch.randn_like(weight) * 0.05)
    metrics = run.checkpointer.evaluate(policy, 1).metrics
    assert 0.0 <= metrics["preference_accuracy"] <= 1.0 and metrics["preference_margin"] != 0.0


# --- reward model -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory, tiny_world):
    """A tiny random LlamaForSequenceClassification (one output) saved with the toy tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from harness.config.resources import resolve_model_path

    cfg = compose(tiny_world, [])
    toy_dir = resolve_model_path(get_plugin_manager([]), cfg)
    tok = AutoTokenizer.from_pretrained(toy_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=tok.pad_token_id,
    )
    path = tmp_path_factory.mktemp("rm")
    LlamaForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path, toy_dir


def test_reward_model_score_is_the_mean_score_of_each_text_scored_alone(reward_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, toy_dir = reward_model_dir
    tok = AutoTokenizer.from_pretrained(toy_dir)
    tok.padding_side = "left"
    policy = AutoModelForCausalLM.from_pretrained(toy_dir).eval()
    ctx = make_ctx(policy, policy, tok, reward_model={"name_or_path": str(path)}, max_new_tokens=8)
    ctx.source_prompts = ctx.prompts = ["that series is", "we felt these costumes were", "i did not"]
    metrics = eval_reward_model.evaluate(ctx)
    model, rm_tok = reward_models.load_reward_model(str(path), "cpu")
    texts = [
        p + c + rm_tok.eos_token  # scored with EOS appended, as TRL's RewardTrainer trains
        for p, c in zip(ctx.policy_samples.prompts, ctx.policy_samples.completions, strict=True)
    ]
    assert len({len(rm_tok(t)["input_ids"]) for t in texts}) > 1  # padding is exercised
    with torch.no_grad():
        alone = [float(model(**rm_tok(t, return_tensors="pt")).logits[0, 0]) for t in texts]
    assert metrics["reward_model_score"] == pytest.approx(sum(alone) / len(alone), abs=1e-5)
    assert metrics["reward_model_score_se"] > 0
    misses = reward_models.load_reward_model.cache_info().misses
    eval_reward_model.evaluate(make_ctx(policy, policy, tok, reward_model={"name_or_path": str(path)}))
    assert reward_models.load_reward_model.cache_info().misses == misses  # loaded once per process


def test_win_rate_falls_back_to_the_reward_model_without_a_gold_reward(reward_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, toy_dir = reward_model_dir
    tok = AutoTokenizer.from_pretrained(toy_dir)
    tok.padding_side = "left"
    reference = AutoModelForCausalLM.from_pretrained(toy_dir).eval()
    policy = copy.deepcopy(reference)
    with torch.no_grad():
        for weight in policy.parameters():
            weight.add_(torch.randn_like(weight) * 0.1)
    ctx = make_ctx(policy, reference, tok, reward_model={"name_or_path": str(path)})
    ctx.source_prompts = ctx.prompts = [
        "that series is",
        "we felt these costumes were",
        "i did not",
        "the plot",
    ]
    metrics = eval_win_rate.evaluate(ctx)
    direct = eval_win_rate.win_rates(ctx.reward_model_scores, ctx.reference_reward_model_scores, 2)
    assert metrics["win_rate"] == pytest.approx(float(direct.mean()))


@pytest.mark.unit
def test_reward_model_without_a_path_gives_no_metric(models):
    reference, policy = models
    assert eval_reward_model.evaluate(make_ctx(policy, reference, tiny_tokenizer())) == {}


def _validate_with_reward_model(tiny_world, path, evaluators):
    cfg = compose(tiny_world, [f"eval.evaluators=[{','.join(evaluators)}]"])
    with open_dict(cfg):
        cfg.eval.reward_model = {"name_or_path": str(path)}
    validate_trial_config(cfg, get_plugin_manager([]))


def test_an_unloadable_reward_model_is_a_one_line_config_error_before_any_compute(
    tiny_world, tmp_path, reward_model_dir
):
    path, toy_dir = reward_model_dir
    with pytest.raises(ConfigError) as missing:
        _validate_with_reward_model(tiny_world, tmp_path / "nowhere", ["gold_reward", "reward_model"])
    with pytest.raises(ConfigError, match="num_labels") as causal:
        _validate_with_reward_model(tiny_world, toy_dir, ["reward_model"])
    for exc in (missing, causal):
        message = str(exc.value)
        assert "\n" not in message and "eval.reward_model.name_or_path" in message
    _validate_with_reward_model(tiny_world, tmp_path / "nowhere", ["gold_reward", "kl"])  # not selected: fine
    _validate_with_reward_model(tiny_world, path, ["reward_model"])


def test_a_bad_number_of_preference_pairs_is_a_config_error(tiny_world):
    cfg = compose(tiny_world, [])
    with open_dict(cfg):
        cfg.eval.preference_pairs = 0
    with pytest.raises(ConfigError, match="eval.preference_pairs=0"):
        validate_trial_config(cfg, get_plugin_manager([]))


@pytest.mark.unit
def test_a_loaded_on_demand_reference_is_loaded_once_per_checkpoint_evaluation():
    from harness.evaluation.reference import Reference

    loads = []

    def loader():
        loads.append(1)
        return torch.nn.Linear(1, 1)

    reference = Reference(loader=loader)
    policy = torch.nn.Linear(1, 1)
    with reference.held():
        for _ in range(3):  # samples, token log-probabilities, pair log-probabilities
            with reference.use(policy) as ref:
                assert isinstance(ref, torch.nn.Linear)
    assert len(loads) == 1
    with reference.use(policy):  # outside an evaluation: loaded and released each time
        pass
    assert len(loads) == 2
