"""Batched sampling from a causal LM and per-sequence log-probabilities of those samples.

Evaluators share one set of samples per checkpoint (see :mod:`harness.evaluation`). Samples keep their
token ids and masks so that log-probabilities under any other model (the reference, for KL) are computed on
exactly the tokens that were sampled, with the same left padding and position ids as at generation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm


@dataclass
class SampleBatch:
    """One generation batch: left-padded prompt + completion ids and their masks (shape [batch, length])."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor  # 1 on real prompt tokens and on completion tokens up to and including EOS
    completion_mask: torch.Tensor  # 1 on completion tokens up to and including EOS
    finished: torch.Tensor  # [batch] bool: the completion ended with EOS before the token limit


@dataclass
class Samples:
    """Completions sampled for a list of prompts, with what is needed to score them again."""

    prompts: list[str]
    completions: list[str]
    batches: list[SampleBatch] = field(default_factory=list)

    @property
    def completion_lengths(self) -> torch.Tensor:
        """Completion length in tokens (EOS included), one per sample."""
        return torch.cat([b.completion_mask.sum(dim=1) for b in self.batches])

    @property
    def finished(self) -> torch.Tensor:
        """Whether each completion ended with EOS before the token limit."""
        return torch.cat([b.finished for b in self.batches])


def _completion_mask(generated: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask of generated tokens up to and including the first EOS, and whether an EOS occurred."""
    is_eos = generated == eos_id
    # Tokens strictly after the first EOS are padding: cumulative count of EOS before the position > 0.
    after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    return (~after_eos).long(), is_eos.any(dim=1)


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    tokenizer,
    prompts: Sequence[str],
    *,
    samples_per_prompt: int = 1,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    add_special_tokens: bool = True,
    desc: str = "sampling",
) -> Samples:
    """Sample completions for ``prompts`` with plain ancestral sampling (no top-k, no top-p).

    Each batch is seeded with ``seed + batch index``, so the same model, prompts and settings give the same
    samples in any process. ``add_special_tokens=False`` for prompts already rendered by a chat template.
    Returns :class:`Samples` (prompts repeated ``samples_per_prompt`` times).
    """
    device = next(model.parameters()).device
    expanded = [p for p in prompts for _ in range(samples_per_prompt)]
    eos_id = tokenizer.eos_token_id
    out = Samples(prompts=expanded, completions=[])
    was_training = model.training
    model.eval()
    starts = range(0, len(expanded), batch_size)
    for index, start in enumerate(tqdm(starts, desc=desc, leave=False, disable=len(starts) < 2)):
        chunk = expanded[start : start + batch_size]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens).to(device)
        torch.manual_seed(seed + index)  # seeds CUDA too; callers restore the RNG state (see checkpoints)
        sequences = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos_id,
        )
        width = enc["input_ids"].shape[1]
        generated = sequences[:, width:]
        completion_mask, finished = _completion_mask(generated, eos_id)
        completion_full = torch.cat([torch.zeros_like(enc["attention_mask"]), completion_mask], dim=1)
        attention = torch.cat([enc["attention_mask"], completion_mask], dim=1)
        out.batches.append(SampleBatch(sequences.cpu(), attention.cpu(), completion_full.cpu(), finished.cpu()))
        out.completions.extend(
            tokenizer.batch_decode(generated * completion_mask + tokenizer.pad_token_id * (1 - completion_mask),
                                   skip_special_tokens=True)
        )
    model.train(was_training)
    return out


@torch.no_grad()
def sequence_logprobs(
    model: torch.nn.Module, samples: Samples, *, temperature: float = 1.0, chunk_size: int = 16
) -> torch.Tensor:
    """Sum of log-probabilities of each sample's completion tokens under ``model`` (shape [n], float32).

    Uses the same left padding and position ids as generation, and the same temperature as sampling, so
    that ``sequence_logprobs(policy) - sequence_logprobs(reference)`` on policy samples is an unbiased
    per-sequence estimate of KL(policy || reference) for the sampling distributions.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results = []
    for batch in samples.batches:
        for start in range(0, batch.input_ids.shape[0], chunk_size):
            ids = batch.input_ids[start : start + chunk_size].to(device)
            attn = batch.attention_mask[start : start + chunk_size].to(device)
            comp = batch.completion_mask[start : start + chunk_size].to(device)
            positions = (attn.cumsum(dim=1) - 1).clamp(min=0)
            logits = model(input_ids=ids, attention_mask=attn, position_ids=positions).logits[:, :-1].float()
            if temperature != 1.0:
                logits = logits / temperature
            token_logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            results.append((token_logp * comp[:, 1:]).sum(dim=1).cpu())
    model.train(was_training)
    return torch.cat(results)
