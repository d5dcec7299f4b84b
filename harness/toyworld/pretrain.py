"""The toy base model: a small Llama causal LM pretrained on reviews sampled from the toy grammar.

This module owns the model's architecture and its pretraining. Each training sequence is ``<s> review </s>``
(right-padded, loss on every real token including ``</s>``, so the model learns to stop after a finished
review); batches group reviews of similar length, which saves a third of the compute. The reviews follow the
spec's tone mix, balanced by default, so the base model is neither positive nor negative on average: there is
headroom for alignment. Training is deterministic given the spec (``torch.manual_seed``, a seeded text
sampler, fixed batch order) on a given machine.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from harness.toyworld.reviews import sample_reviews

if TYPE_CHECKING:
    from harness.toyworld.spec import ToyWorldSpec

MAX_POSITIONS = 128
BUCKET_POOL = 16  # batches sampled at once and grouped by review length


def model_config(spec: ToyWorldSpec, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    """The Llama configuration of the toy model."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def encode_batch(reviews: list[str], tokenizer: PreTrainedTokenizerFast) -> tuple[torch.Tensor, torch.Tensor]:
    """``<s> review </s>`` sequences, right-padded: input ids and labels (-100 on padding),
    shape [batch, len]."""
    vocab = tokenizer.get_vocab()
    rows = [[tokenizer.bos_token_id, *(vocab[w] for w in r.split()), tokenizer.eos_token_id] for r in reviews]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(row)] = ids[i, : len(row)]
    return ids, labels


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0.1."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _length_bucketed_batches(rng: random.Random, spec: ToyWorldSpec) -> list[list[str]]:
    """The next ``BUCKET_POOL`` batches of reviews, grouped by length so that little compute goes to padding
    (the batches come out in random order; within a batch, reviews have similar lengths)."""
    pool = sample_reviews(
        rng, spec.pretrain_batch_size * BUCKET_POOL, spec.mix, spec.min_words, spec.max_words
    )
    pool.sort(key=lambda review: review.count(" "))
    size = spec.pretrain_batch_size
    batches = [pool[i : i + size] for i in range(0, len(pool), size)]
    rng.shuffle(batches)
    return batches


def pretrain(
    spec: ToyWorldSpec, tokenizer: PreTrainedTokenizerFast, progress: bool = True
) -> LlamaForCausalLM:
    """A freshly initialised toy model trained for ``spec.pretrain_steps`` steps; returns it in eval mode.

    The caller is expected to isolate the global torch RNG (``torch.random.fork_rng``);
    this function seeds it.
    """
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(model_config(spec, tokenizer))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": spec.pretrain_weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=spec.pretrain_lr,
        betas=(0.9, 0.98),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, spec.pretrain_warmup_steps, spec.pretrain_steps)
    )
    rng = random.Random(f"pretrain-{spec.seed}")
    model.train()
    bar = tqdm(range(spec.pretrain_steps), desc="toy world: pretraining", disable=not progress, leave=False)
    batches: list[list[str]] = []
    for _ in bar:
        if not batches:
            batches = _length_bucketed_batches(rng, spec)
        ids, labels = encode_batch(batches.pop(), tokenizer)
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    return model
