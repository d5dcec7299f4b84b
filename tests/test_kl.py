"""KL(policy || reference) estimators against the exact KL of two tiny models,
enumerated completion by completion.

Also the per-token log-probabilities they rest on: left padding, position ids and temperature must give the
log-probabilities of the distribution that was actually sampled from.
"""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from harness_plugins.evaluators import kl as eval_kl
from omegaconf import OmegaConf

from harness.evaluation.context import EvalContext
from harness.evaluation.reference import Reference
from harness.evaluation.sampling import sample, sequence_logprobs, token_logprobs

pytestmark = pytest.mark.unit

VOCAB = {"<pad>": 0, "</s>": 1, "a": 2, "b": 3, "c": 4, "d": 5}
EOS = VOCAB["</s>"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and far faster than on several busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_tokenizer(vocab: dict[str, int] | None = None, chat_template: str | None = None):
    """A word-level tokenizer over ``vocab`` (pad 0, EOS 1), left padding, as the harness loads tokenizers."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab or VOCAB, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", padding_side="left"
    )
    if chat_template:
        tok.chat_template = chat_template
    return tok


def tiny_lm(seed: int = 0, scale: float = 0.1, vocab_size: int = len(VOCAB)):
    """A randomly initialised one-layer LlamaForCausalLM (weights ~ N(0, scale))."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
        eos_token_id=EOS,
        pad_token_id=0,
        bos_token_id=None,
        initializer_range=scale,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def perturbed(model, noise: float, seed: int = 1):
    """A copy of ``model`` with N(0, noise) added to every weight: a nearby reference."""
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in other.parameters():
            weight.add_(torch.randn(weight.shape, generator=gen) * noise)
    return other


def make_ctx(policy, reference, tokenizer, prompts, *, is_reference=False, **eval_settings):
    """An EvalContext on ``prompts`` with the given eval settings (defaults: 1 sample, 3 tokens, T=1)."""
    settings = {
        "samples_per_prompt": 1,
        "max_new_tokens": 3,
        "temperature": 1.0,
        "batch_size": 64,
        "seed": 0,
        **eval_settings,
    }
    cfg = OmegaConf.create({"eval": settings})
    return EvalContext(
        cfg=cfg,
        step=1,
        policy=policy,
        reference=Reference(model=reference),
        tokenizer=tokenizer,
        prompts=prompts,
        gold_reward=None,
        is_reference=is_reference,
    )


@torch.no_grad()
def exact_kl(p_model, q_model, prompt_ids: list[int], max_new_tokens: int, temperature: float) -> float:
    """Σ_y p(y) log p(y)/q(y) over every completion ``sample`` can produce.

    Completions stop at the first EOS (included) or after ``max_new_tokens`` tokens; any token (padding
    included) can be drawn before that.
    """
    others = [t for t in range(len(VOCAB)) if t != EOS]
    completions = [
        [*body, EOS] for n in range(max_new_tokens) for body in itertools.product(others, repeat=n)
    ]
    completions += [list(body) for body in itertools.product(others, repeat=max_new_tokens)]

    def logprob(model, completion: list[int]) -> float:
        ids = torch.tensor([prompt_ids + completion])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double() / temperature, dim=-1)
        targets = ids[0, 1:]
        return float(logp[torch.arange(len(targets)), targets][len(prompt_ids) - 1 :].sum())

    total, mass = 0.0, 0.0
    for completion in completions:
        lp, lq = logprob(p_model, completion), logprob(q_model, completion)
        total += math.exp(lp) * (lp - lq)
        mass += math.exp(lp)
    assert mass == pytest.approx(1.0, abs=1e-6)  # the enumeration covers every completion
    return total


def test_kl_is_zero_for_a_model_against_itself():
    """Zero up to float rounding: the policy's log-probs are the sampler's own (kept while generating, with a
    KV cache), the reference's come from one forward pass over the samples."""
    tok, model = tiny_tokenizer(), tiny_lm(scale=0.3)
    ctx = make_ctx(model, model, tok, ["a b", "c", "d d a"], samples_per_prompt=50)
    metrics = eval_kl.evaluate(ctx)
    assert abs(metrics["kl"]) < 1e-4 and metrics["kl_se"] < 1e-4
    assert 0.0 <= metrics["kl_k3"] < 1e-8


def test_the_policy_log_probs_are_the_samplers_own_and_match_a_forward_pass():
    tok, model = tiny_tokenizer(), tiny_lm(scale=0.3)
    for temperature in (1.0, 0.7):
        ctx = make_ctx(
            model, model, tok, ["a b", "c", "d d a"], samples_per_prompt=20, temperature=temperature
        )
        kept = ctx.policy_tokens
        assert kept is ctx.policy_samples.sampler_tokens  # no second pass over the samples
        scored = ctx.token_logprobs(model, ctx.policy_samples, with_entropy=True)
        assert torch.equal(kept.mask, scored.mask)
        assert torch.allclose(kept.logprobs, scored.logprobs, atol=1e-5)
        assert torch.allclose(kept.entropy, scored.entropy, atol=1e-5)
        assert float(kept.mask.sum()) > 20  # the samples have tokens to compare


@pytest.fixture(scope="module")
def estimates() -> dict[float, tuple[dict[str, float], float]]:
    """KL metrics from 3000 policy samples and the exact KL, at temperatures 1.0 and 0.7."""
    tok = tiny_tokenizer()
    policy = tiny_lm(scale=0.1)
    reference = perturbed(policy, noise=0.04)
    out = {}
    for temperature in (1.0, 0.7):
        ctx = make_ctx(
            policy, reference, tok, ["a b"], samples_per_prompt=3000, batch_size=3000, temperature=temperature
        )
        exact = exact_kl(policy, reference, tok("a b")["input_ids"], 3, temperature)
        out[temperature] = (eval_kl.evaluate(ctx), exact)
    return out


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_kl_estimators_agree_with_the_exact_kl(estimates, temperature):
    metrics, exact = estimates[temperature]
    assert exact > 0.02  # the models differ enough for the check to mean something
    for key in ("kl", "kl_k3"):
        assert abs(metrics[key] - exact) < 4 * metrics[f"{key}_se"], (key, metrics, exact)
        assert metrics[key] == pytest.approx(exact, rel=0.25), (key, metrics, exact)
    assert metrics["kl_k3"] == pytest.approx(exact, rel=0.1)


def test_k3_has_a_smaller_standard_error_than_the_log_ratio(estimates):
    for metrics, _ in estimates.values():
        assert 0 < metrics["kl_k3_se"] < metrics["kl_se"]


def test_kl_estimators_per_token():
    # r = log q - log p per token; log-ratio sums -r, k3 sums exp(r) - 1 - r, padding ignored.
    p = torch.tensor([[-1.0, -2.0, 0.0]])
    q = torch.tensor([[-1.5, -1.0, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    log_ratio, k3 = eval_kl.kl_estimates(p, q, mask)
    r = torch.tensor([-0.5, 1.0], dtype=torch.float64)
    assert float(log_ratio) == pytest.approx(float(-r.sum()))
    assert float(k3) == pytest.approx(float((r.exp() - 1 - r).sum()))


@torch.no_grad()
def test_token_logprobs_equal_an_unpadded_forward_at_the_sampling_temperature():
    tok, model = tiny_tokenizer(), tiny_lm(scale=0.3)
    prompts = ["a", "b c d a", "d d"]  # different lengths: left padding and position ids matter
    samples = sample(
        model, tok, prompts, samples_per_prompt=4, max_new_tokens=5, temperature=0.8, batch_size=5
    )
    scores = token_logprobs(model, samples, temperature=0.8, with_entropy=True)
    lengths = samples.completion_lengths
    assert torch.equal(scores.mask.sum(dim=1).long(), lengths)
    for i, (prompt, completion) in enumerate(
        zip(samples.prompts, samples.completion_token_ids(), strict=True)
    ):
        ids = torch.tensor([tok(prompt)["input_ids"] + completion])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1] / 0.8, dim=-1)[-len(completion) :]
        expected = logp[torch.arange(len(completion)), ids[0, -len(completion) :]]
        n = int(lengths[i])
        assert torch.allclose(scores.logprobs[i, :n], expected, atol=1e-5)
        assert torch.allclose(scores.entropy[i, :n], -(logp.exp() * logp).sum(-1), atol=1e-5)
        assert torch.all(scores.logprobs[i, n:] == 0)
    assert torch.allclose(sequence_logprobs(model, samples, temperature=0.8), scores.sequence())


def test_sampling_ignores_the_models_own_generation_defaults():
    # A generation_config.json with a repetition penalty or top-k would change the distribution sampled from,
    # and the KL would then be measured on the wrong distribution.
    tok, model = tiny_tokenizer(), tiny_lm(scale=0.3)
    plain = sample(model, tok, ["a", "b c"], samples_per_prompt=20, max_new_tokens=4)
    model.generation_config.repetition_penalty = 50.0
    model.generation_config.top_k = 2
    model.generation_config.min_new_tokens = 3
    again = sample(model, tok, ["a", "b c"], samples_per_prompt=20, max_new_tokens=4)
    assert again.completions == plain.completions
    assert model.generation_config.repetition_penalty == 50.0  # the model's own config is left as it was
