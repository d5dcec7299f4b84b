"""One rendering rule per model (harness/evaluation/rendering.py), on every model family of the real-world
fixture (tests/realworld.py): ChatML (Qwen2), Zephyr-style (NeoX-like: end-of-turn ``</s>`` is not EOS, no pad
token), Llama-3-style (Phi3-like: BOS from the post-processor and from the template) and a cross-family pair
(a Phi3 policy scored by the NeoX reward model).

The reward model's recorded score of each sample equals its score on its own rendering of the same (source
prompt, completion), computed here with its tokenizer and chat template and one forward pass per text, as
TRL's RewardTrainer renders its training examples; no tokenized input starts with two BOS tokens; sampling
stops at the template's end-of-turn; the trial record says which template and which end tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from harness.data.chat import render_prompts
from harness.evaluation.context import EvalContext
from harness.evaluation.readable import prompt_text
from harness.evaluation.reference import Reference
from harness.evaluation.rendering import describe_tokenizer, end_of_turn, reward_input
from harness.evaluation.sampling import end_of_sequence_ids
from tests.conftest import run_cli
from tests.realworld import ultrafeedback_rows

#: family -> (policy, reward model), as attribute paths of the fixture.
FAMILIES = {
    "chatml": ("qwen2", "reward_model"),
    "zephyr": ("neox.policy", "neox.reward_model"),
    "llama3": ("phi3.policy", "phi3.reward_model"),
    "cross": ("phi3.policy", "neox.reward_model"),
}
SYSTEM = {"role": "system", "content": "You are a helpful, careful assistant."}
PROMPTS = [
    [{"role": "user", "content": "How do I fix a roof?"}],
    [SYSTEM, {"role": "user", "content": "How do I bake bread?"}],
    [{"role": "user", "content": "How do I paint a fence?"}],
]


def _path(real_world, dotted: str) -> Path:
    value = real_world
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def own_scores(rm_path: Path, prompts: list, completions: list[str]) -> list[float]:
    """The reward model's score of each (prompt, completion) on its own rendering, one text at a time: the
    chat template over the conversation for a message-list prompt, prompt + completion + EOS for a string.
    A tokenizer without a pad token pads with EOS, as TRL's RewardTrainer does."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rm_path)
    model = AutoModelForSequenceClassification.from_pretrained(rm_path, dtype=torch.float32).eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    scores = []
    for prompt, completion in zip(prompts, completions, strict=True):
        if isinstance(prompt, list):
            chat = [*prompt, {"role": "assistant", "content": completion}]
            ids = tok.apply_chat_template(chat, tokenize=True)["input_ids"]
        else:
            ids = tok(prompt + completion + tok.eos_token)["input_ids"]
        assert not _two_bos(ids, tok.bos_token_id)
        with torch.no_grad():
            scores.append(float(model(input_ids=torch.tensor([ids])).logits[0, 0]))
    return scores


def _two_bos(ids: list[int], bos_id: int | None) -> bool:
    return bos_id is not None and len(ids) > 1 and ids[0] == ids[1] == bos_id


def _context(policy_path: Path, rm_path: Path) -> EvalContext:
    from transformers import AutoModelForCausalLM

    from harness.trial.models import load_tokenizer

    tok = load_tokenizer(str(policy_path), OmegaConf.create({"trust_remote_code": False}))
    policy = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32).eval()
    settings = {
        "samples_per_prompt": 2,
        "max_new_tokens": 8,
        "temperature": 1.0,
        "batch_size": 4,
        "seed": 3,
        "reward_model": {"name_or_path": str(rm_path)},
    }
    cfg = OmegaConf.create({"eval": settings})
    return EvalContext(
        cfg=cfg,
        step=1,
        policy=policy,
        reference=Reference(model=policy),
        tokenizer=tok,
        prompts=PROMPTS,
        gold_reward=None,
    )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_reward_model_scores_its_own_rendering_of_each_sample(real_world, family):
    from harness_plugins.evaluators import reward_model as eval_reward_model

    policy_path, rm_path = (_path(real_world, p) for p in FAMILIES[family])
    ctx = _context(policy_path, rm_path)
    eval_reward_model.evaluate(ctx)
    recorded = ctx.sample_scores["reward_model_score"]
    sources = [p for p in PROMPTS for _ in range(2)]  # samples_per_prompt=2, laid out prompt by prompt
    for side, samples in (("policy", ctx.policy_samples), ("reference", ctx.reference_samples)):
        expected = own_scores(rm_path, sources, samples.completions)
        assert recorded[side] == pytest.approx(expected, abs=1e-5), side
    # The policy's generation prompts: one BOS at most (left padding before it).
    bos = ctx.tokenizer.bos_token_id
    for batch in ctx.policy_samples.batches:
        for ids, mask in zip(batch.input_ids, batch.attention_mask, strict=True):
            assert not _two_bos(ids[mask.bool()].tolist(), bos)


@pytest.mark.parametrize("family", ["chatml", "zephyr", "llama3"])
def test_no_input_starts_with_two_bos_tokens(real_world, family):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_path(real_world, FAMILIES[family][1]))
    texts, chat = render_prompts(tok, PROMPTS)
    for ids in tok(texts, add_special_tokens=not chat)["input_ids"]:
        assert not _two_bos(ids, tok.bos_token_id)
    bos_text = tok.bos_token or ""
    for prompt in [*PROMPTS, "How do I fix a roof?", f"{bos_text}How do I fix a roof?"]:
        ids = reward_input(tok, prompt, "Start small.")["input_ids"]
        assert not _two_bos(ids, tok.bos_token_id)


def test_each_family_is_described_by_its_template_and_end_tokens(real_world):
    from transformers import AutoTokenizer

    def described(family: str):
        return describe_tokenizer(AutoTokenizer.from_pretrained(_path(real_world, FAMILIES[family][0])))

    chatml, zephyr, llama3 = described("chatml"), described("zephyr"), described("llama3")
    assert (chatml.end_of_turn, chatml.eos, chatml.template_adds_bos) == ("<|im_end|>", "<|im_end|>", False)
    assert (zephyr.end_of_turn, zephyr.eos, zephyr.pad) == ("</s>", "<|endoftext|>", None)
    assert (llama3.end_of_turn, llama3.eos) == ("<|eot_id|>", "<|end_of_text|>")
    assert llama3.template_adds_bos and llama3.tokenizer_adds_bos
    assert len({chatml.template, zephyr.template, llama3.template}) == 3


def test_sampling_stops_at_the_templates_end_of_turn(real_world):
    """The NeoX-like model declares only <|endoftext|>; its template ends turns with </s>: both stop."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = real_world.neox.policy
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    turn_end = tok.convert_tokens_to_ids(end_of_turn(tok))
    assert model.generation_config.eos_token_id == tok.eos_token_id != turn_end
    assert end_of_sequence_ids(model, tok) == [tok.eos_token_id, turn_end]


def _held_out_sources() -> dict[str, list]:
    """The fixture's held-out prompts (UltraFeedback test_prefs: the chosen conversation less its answer),
    by the text the readable samples show."""
    rows = ultrafeedback_rows(16, seed=2)
    return {prompt_text(r["chosen"][:-1]): r["chosen"][:-1] for r in rows}


def test_a_trial_records_the_reward_models_score_of_its_own_rendering(real_world, tmp_path):
    """A Phi3-like policy (Llama-3 markup) scored by the NeoX-like reward model (Zephyr markup), through the
    CLI: each recorded per-sample score is the reward model's score on its own rendering of the sample; the
    record names both models' templates and end tokens."""
    result = run_cli(
        [
            "model=hf",
            f"model.name_or_path={real_world.phi3.policy}",
            "data=files",
            f"data.path={real_world.ultrafeedback}",
            "data.split=train_prefs",
            "data.eval_split=test_prefs",
            f"eval.reward_model.name_or_path={real_world.neox.reward_model}",
            "eval.evaluators=[reward_model]",
            "method=dpo",
            "method.max_steps=1",
            "method.batch_size=4",
            "method.grad_accum=1",
            "method.learning_rate=0.05",
            "train.num_checkpoints=1",
            "eval.num_prompts=6",
            "eval.selection.num_prompts=4",
            "eval.max_new_tokens=8",
            "eval.readable_samples=6",
            "train.num_threads=0",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "trial.json").read_text())
    rendering = record["rendering"]
    assert rendering["policy"]["end_of_turn"] == "<|eot_id|>" and rendering["policy"]["template_adds_bos"]
    assert rendering["reward_model"]["end_of_turn"] == "</s>"
    assert rendering["reward_model"]["eos"] == "<|endoftext|>"
    sources = _held_out_sources()
    samples = record["checkpoints"][-1]["samples"]
    assert len(samples) == 6
    prompts = [sources[s["prompt"]] for s in samples]
    for side in ("policy", "reference"):
        recorded = [s["scores"]["reward_model_score"][side] for s in samples]
        expected = own_scores(real_world.neox.reward_model, prompts, [s[side] for s in samples])
        assert recorded == pytest.approx(expected, abs=1e-5), side


@pytest.mark.unit
def test_the_records_rendering_part_round_trips_and_old_records_read_without_it():
    from harness.records import Rendering, TokenizerRendering, TrialRecord

    rendering = Rendering(
        rule=1,
        policy=TokenizerRendering(template="abc", template_adds_bos=True, end_of_turn="<|eot_id|>", eos="e"),
        stop_ids=[1, 4],
    )
    record = TrialRecord(trial_id="t", rendering=rendering)
    data = json.loads(json.dumps(record.to_dict()))
    assert data["rendering"]["policy"] == {
        "template": "abc",
        "template_adds_bos": True,
        "end_of_turn": "<|eot_id|>",
        "eos": "e",
    }
    assert "reward_model" not in data["rendering"]
    assert TrialRecord.from_dict(data).rendering == rendering
    del data["rendering"]
    assert TrialRecord.from_dict(data).rendering is None


def _word_tokenizer(chat_template: str | None = None):
    """A word-level tokenizer whose post-processor adds BOS ``<s>``; EOS ``</s>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<s>", "</s>", "[INST]", "[/INST]", "how", "fix", "start", "small"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="right"
    )
    tok.chat_template = chat_template
    return tok


@pytest.mark.unit
def test_a_reward_model_without_a_template_reads_plain_text_then_eos_with_one_bos():
    tok = _word_tokenizer()
    user = [{"role": "user", "content": "how fix"}]
    for prompt in (user, "how fix", "<s> how fix"):
        ids = reward_input(tok, prompt, " start small")["input_ids"]
        assert tok.convert_ids_to_tokens(ids) == ["<s>", "how", "fix", "start", "small", "</s>"], prompt


@pytest.mark.unit
def test_the_end_of_turn_is_the_special_token_after_an_answer_whitespace_aside():
    llama2 = (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + "
        "' [/INST]' }}{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}"
    )
    tok = _word_tokenizer(llama2)
    assert end_of_turn(tok) == "</s>" and describe_tokenizer(tok).template_adds_bos
    assert end_of_turn(_word_tokenizer()) is None
    chat = [{"role": "user", "content": "how fix"}]
    ids = reward_input(tok, chat, "start small")["input_ids"]  # the template's BOS only
    assert tok.convert_ids_to_tokens(ids) == [
        "<s>",
        "[INST]",
        "how",
        "fix",
        "[/INST]",
        "start",
        "small",
        "</s>",
    ]
