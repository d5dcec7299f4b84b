"""A miniature of what users bring, built at test time: real-architecture models and real dataset formats.

* a byte-level BPE tokenizer trained on the spot (the ``tokenizers`` library) with a ChatML chat template,
  ``<|im_end|>`` as end of turn and ``<|endoftext|>`` as padding, both declared end-of-sequence ids of the
  model's generation config (as Qwen2 and Llama-3 instruct models declare several);
* tiny randomly initialised models of real architectures: Qwen2 (``q_proj``... module names) and GPT-2
  (``c_attn``, ``c_fc``: what LoRA's Llama defaults miss), and a one-output Qwen2 reward model;
* a NeoX-like and a Phi3-like family (a causal LM and a reward model each) whose chat templates differ from
  ChatML where it matters: end-of-turn other than EOS, no pad token, BOS written twice
  (tests/realworld_families.py);
* preference data in the formats people download:
  - UltraFeedback-binarized: ``prompt`` (a string), ``prompt_id``, ``chosen``/``rejected``/``messages`` as
    message lists that repeat the prompt (some with a system turn), ``score_chosen``/``score_rejected``; saved
    as jsonl, parquet and a ``save_to_disk`` DatasetDict with ``train_prefs``/``test_prefs`` splits;
  - Anthropic HH-RLHF: ``chosen``/``rejected`` transcripts (``\\n\\nHuman: ... \\n\\nAssistant: ...``), some
    of whose two answers start alike;
  - KTO unpaired: ``prompt``/``completion``/``label`` message lists.

Everything is seeded, so a session builds the same files every time.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from tests.realworld_families import Family, build_neox, build_phi3

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_VERBS = [
    "bake",
    "fix",
    "paint",
    "clean",
    "plant",
    "write",
    "build",
    "sort",
    "cook",
    "repair",
    "tune",
    "pack",
]
_NOUNS = [
    "bread",
    "bicycle",
    "fence",
    "kitchen",
    "garden",
    "letter",
    "shelf",
    "closet",
    "soup",
    "roof",
    "guitar",
    "suitcase",
]
_GOOD = [
    "First gather what you need, then work slowly and check each step.",
    "Start small, measure twice and ask for help if you get stuck.",
    "Read the instructions, prepare the space and take short breaks.",
    "Use the right tools, keep things tidy and test the result at the end.",
]
_BAD = ["No idea.", "Just do it somehow.", "That is not possible.", "Why would you want that?"]
_SYSTEM = "You are a helpful, careful assistant."


@dataclass(frozen=True)
class RealWorld:
    """Paths of the built fixture."""

    qwen2: Path  # causal LM directory (Qwen2 architecture, ChatML tokenizer)
    gpt2: Path  # causal LM directory (GPT-2 architecture, same tokenizer)
    reward_model: Path  # one-output sequence classifier (Qwen2)
    ultrafeedback: Path  # save_to_disk DatasetDict with train_prefs / test_prefs
    ultrafeedback_jsonl: Path
    ultrafeedback_parquet: Path
    hh_jsonl: Path  # HH-RLHF transcripts
    kto_jsonl: Path  # unpaired, conversational
    neox: Family  # NeoX-like: no pad token, Zephyr-style template ending turns in </s>, EOS <|endoftext|>
    phi3: Family  # Phi3-like: BOS from the post-processor and from a Llama-3-style template, <|eot_id|>


def _question(rng: random.Random) -> str:
    return f"How do I {rng.choice(_VERBS)} a {rng.choice(_NOUNS)}?"


def ultrafeedback_rows(n: int, seed: int) -> list[dict]:
    """UltraFeedback-binarized-like rows: a string prompt, message-list chosen/rejected that repeat it."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        prompt = f"{_question(rng)} (case {i})"
        head = [{"role": "system", "content": _SYSTEM}] if i % 3 == 0 else []
        user = {"role": "user", "content": prompt}
        chosen = [*head, user, {"role": "assistant", "content": rng.choice(_GOOD)}]
        rejected = [*head, user, {"role": "assistant", "content": rng.choice(_BAD)}]
        rows.append(
            {
                "prompt": prompt,
                "prompt_id": f"{i:08x}",
                "chosen": chosen,
                "rejected": rejected,
                "messages": chosen,
                "score_chosen": 8.0,
                "score_rejected": 3.0,
            }
        )
    return rows


def hh_rows(n: int, seed: int) -> list[dict]:
    """HH-RLHF-like transcripts; every fourth pair's answers share their first words (the prompt must still
    end at the last "Assistant:" marker, not run into the answer)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        turns = (
            f"\n\nHuman: {_question(rng)}\n\nAssistant: "
            f"Sure.\n\nHuman: Can you say more? (case {i})\n\nAssistant:"
        )
        good, bad = rng.choice(_GOOD), rng.choice(_BAD)
        if i % 4 == 0:
            good, bad = f"Well, {good}", f"Well, {bad}"
        rows.append({"chosen": f"{turns} {good}", "rejected": f"{turns} {bad}"})
    return rows


def kto_rows(n: int, seed: int) -> list[dict]:
    """Unpaired conversational rows (thumbs up/down)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        good = i % 2 == 0
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"{_question(rng)} (case {i})"}],
                "completion": [{"role": "assistant", "content": rng.choice(_GOOD if good else _BAD)}],
                "label": good,
            }
        )
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build_tokenizer(directory: Path, corpus: list[str]):
    """A byte-level BPE tokenizer trained on ``corpus``, with ChatML's special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML
    fast.save_pretrained(directory)
    return fast


def _save_model(model, tokenizer, directory: Path) -> Path:
    from transformers import GenerationConfig

    end_ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = end_ids[0]
    if model.can_generate():
        model.generation_config = GenerationConfig(eos_token_id=end_ids, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_models(root: Path, tokenizer) -> tuple[Path, Path, Path]:
    """Tiny random Qwen2 and GPT-2 causal LMs and a Qwen2 reward model, saved with the tokenizer."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen2ForSequenceClassification,
    )

    torch.manual_seed(0)
    ids = {
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    qwen = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        **ids,
    )
    gpt2 = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=512, **ids)
    return (
        _save_model(Qwen2ForCausalLM(Qwen2Config(**qwen)), tokenizer, root / "qwen2"),
        _save_model(GPT2LMHeadModel(gpt2), tokenizer, root / "gpt2"),
        _save_model(
            Qwen2ForSequenceClassification(Qwen2Config(**qwen, num_labels=1)),
            tokenizer,
            root / "reward-model",
        ),
    )


def build_real_world(root: Path) -> RealWorld:
    """Build every model and dataset of the fixture under ``root`` (a few seconds)."""
    from datasets import Dataset, DatasetDict

    uf_train, uf_test = ultrafeedback_rows(48, seed=1), ultrafeedback_rows(16, seed=2)
    hh, kto = hh_rows(48, seed=3), kto_rows(48, seed=4)
    corpus = (
        [m["content"] for r in uf_train for m in r["chosen"] + r["rejected"]]
        + [r["chosen"] + r["rejected"] for r in hh]
        + _GOOD
        + _BAD
    )
    tokenizer = build_tokenizer(root / "tokenizer", corpus)
    qwen2, gpt2, reward_model = build_models(root, tokenizer)
    neox, phi3 = build_neox(root, corpus), build_phi3(root, corpus)
    DatasetDict(
        {"train_prefs": Dataset.from_list(uf_train), "test_prefs": Dataset.from_list(uf_test)}
    ).save_to_disk(str(root / "ultrafeedback"))
    parquet = root / "ultrafeedback.parquet"
    Dataset.from_list(uf_train).to_parquet(str(parquet))
    return RealWorld(
        qwen2=qwen2,
        gpt2=gpt2,
        reward_model=reward_model,
        ultrafeedback=root / "ultrafeedback",
        ultrafeedback_jsonl=_write_jsonl(root / "ultrafeedback.jsonl", uf_train),
        ultrafeedback_parquet=parquet,
        hh_jsonl=_write_jsonl(root / "hh.jsonl", hh),
        kto_jsonl=_write_jsonl(root / "kto.jsonl", kto),
        neox=neox,
        phi3=phi3,
    )
