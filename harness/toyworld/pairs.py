"""Preference data of the toy world: prompts, base-model completions, gold labels with Bradley-Terry noise.

This module owns how the toy world's datasets are made from the pretrained base model:

- Prompts are review beginnings cut from grammar samples (:func:`harness.toyworld.reviews.sample_prompt`).
  Held-out eval prompts, eval-pair prompts and train-pair prompts are drawn from the same distribution and
  are pairwise disjoint as strings.
- Two completions per prompt are sampled from the base model (plain ancestral sampling: temperature
  ``spec.temperature``, no top-k / top-p, at most ``spec.max_new_tokens`` tokens, left-padded batches).
- Each pair is labelled by the gold reward with a little noise: ``a`` is preferred to ``b`` with probability
  ``sigmoid((r_a - r_b) / spec.bt_tau)`` (Bradley-Terry). Pairs with equal rewards or identical texts are
  dropped (ties), as are pairs with an empty completion.

Rows are in TRL's standard format:
``{"prompt": "the movie was", "chosen": " great .", "rejected": " dull ."}`` (completions start with a space,
so ``prompt + chosen`` is the review text).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from harness.toyworld.grammar import check
from harness.toyworld.reviews import sample_prompt
from harness.toyworld.reward import gold_reward

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from harness.toyworld.spec import ToyWorldSpec


@torch.no_grad()
def sample_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
    desc: str = "sampling",
) -> list[str]:
    """One sampled completion per prompt (text after the prompt, special tokens removed, no leading space).

    Batch ``i`` is sampled after ``torch.manual_seed(seed + i)``, so results depend only on the arguments.
    """
    completions: list[str] = []
    starts = range(0, len(prompts), batch_size)
    for index, start in enumerate(tqdm(starts, desc=desc, disable=not progress, leave=False)):
        enc = tokenizer(list(prompts[start : start + batch_size]), return_tensors="pt", padding=True)
        torch.manual_seed(seed + index)
        out = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        completions += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [c.strip() for c in completions]


def draw_prompts(
    rng: random.Random, n: int, spec: ToyWorldSpec, exclude: set[str], distinct: bool
) -> list[str]:
    """``n`` prompts not in ``exclude`` (and all different when ``distinct``); adds them to ``exclude``."""
    out: list[str] = []
    chosen: set[str] = set()
    while len(out) < n:
        prompt = sample_prompt(rng, spec.mix, spec.min_words, spec.max_words)
        if prompt in exclude or (distinct and prompt in chosen):
            continue
        out.append(prompt)
        chosen.add(prompt)
    exclude |= chosen
    return out


def label_pair(prompt: str, a: str, b: str, rng: random.Random, tau: float) -> dict[str, Any] | None:
    """A preference row for completions ``a`` and ``b`` (Bradley-Terry-noisy gold label),
    or None for a tie."""
    if not a or not b or a == b:
        return None
    r_a, r_b = gold_reward(a), gold_reward(b)
    if math.isclose(r_a, r_b, abs_tol=1e-9):
        return None
    p_a = 1.0 / (1.0 + math.exp(-max(min((r_a - r_b) / tau, 50.0), -50.0)))
    (chosen, r_c), (rejected, r_r) = ((a, r_a), (b, r_b)) if rng.random() < p_a else ((b, r_b), (a, r_a))
    return {
        "prompt": prompt,
        "chosen": " " + chosen,
        "rejected": " " + rejected,
        "chosen_gold": r_c,
        "rejected_gold": r_r,
    }


def make_pairs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    spec: ToyWorldSpec,
    n: int,
    rng: random.Random,
    exclude: set[str],
    seed: int,
    progress: bool,
    desc: str,
) -> list[dict[str, Any]]:
    """``n`` labelled pairs on fresh prompts (not in ``exclude``),
    sampling more rounds until enough survive."""
    rows: list[dict[str, Any]] = []
    round_ = 0
    while len(rows) < n:
        need = n - len(rows)
        prompts = draw_prompts(rng, math.ceil(need * 1.3) + 8, spec, exclude, distinct=False)
        doubled = [p for p in prompts for _ in range(2)]
        texts = sample_completions(
            model,
            tokenizer,
            doubled,
            max_new_tokens=spec.max_new_tokens,
            temperature=spec.temperature,
            batch_size=spec.sample_batch_size,
            seed=seed + 10_000 * round_,
            progress=progress,
            desc=desc,
        )
        for i, prompt in enumerate(prompts):
            row = label_pair(prompt, texts[2 * i], texts[2 * i + 1], rng, spec.bt_tau)
            if row is not None and len(rows) < n:
                rows.append(row)
        round_ += 1
    return rows


def pair_stats(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Gold margin of chosen over rejected: mean, and the fraction of pairs whose label agrees with gold."""
    margins = [r["chosen_gold"] - r["rejected_gold"] for r in rows]
    return {
        "n": len(rows),
        "mean_gold_margin": sum(margins) / max(1, len(margins)),
        "label_agrees_with_gold": sum(m > 0 for m in margins) / max(1, len(margins)),
        "chosen_mean_gold": sum(r["chosen_gold"] for r in rows) / max(1, len(rows)),
        "rejected_mean_gold": sum(r["rejected_gold"] for r in rows) / max(1, len(rows)),
    }


def completion_stats(completions: Sequence[str]) -> dict[str, float]:
    """Mean gold reward and text health of completions (what meta.json records for the base model)."""
    n = max(1, len(completions))
    checks = [check(c, start="any") for c in completions]
    rewards = [gold_reward(c) for c in completions]
    return {
        "n": len(completions),
        "mean_gold_reward": sum(rewards) / n,
        "frac_grammatical": sum(c.grammatical for c in checks) / n,
        "frac_finished": sum(c.finished for c in checks) / n,
        "frac_grammatical_and_finished": sum(c.grammatical and c.finished for c in checks) / n,
        "mean_length_words": sum(c.n_tokens for c in checks) / n,
    }
