"""Given completions (held-out preference pairs, a method's own loss): laid out like sampled ones
(:func:`encode_completions`, tokenized as TRL's trainers do) and their summed log-probabilities under a model
(:func:`completion_logprobs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harness.evaluation.samples import SampleBatch, Samples
from harness.evaluation.scoring import accepts_logits_to_keep, last_tokens_log_softmax


def completion_logprobs(
    model: torch.nn.Module,
    tokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    add_special_tokens: bool = True,
) -> torch.Tensor:
    """Summed log-probability of each completion given its prompt under ``model`` (shape [n], on the model's
    device), differentiable: the building block of a method's own preference loss.

    The texts are laid out as :func:`encode_completions` does (as TRL's trainers tokenize them, EOS appended);
    wrap the call in ``torch.no_grad()`` for a frozen reference model.
    """
    encoded = encode_completions(
        tokenizer,
        prompts,
        completions,
        batch_size=max(len(prompts), 1),
        add_special_tokens=add_special_tokens,
    )
    device = next(model.parameters()).device
    keep_logits = accepts_logits_to_keep(model)
    sums = []
    for batch in encoded.batches:
        ids, width = batch.input_ids.to(device), batch.prompt_width
        logp = last_tokens_log_softmax(
            model, ids, batch.attention_mask.to(device), ids.shape[1] - width, 1.0, keep_logits
        )
        token = logp.gather(-1, ids[:, width:].unsqueeze(-1)).squeeze(-1)
        sums.append((token * batch.completion_mask[:, width:].to(device)).sum(dim=1))
    return torch.cat(sums) if sums else torch.zeros(0, device=device)


def encode_completions(
    tokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    batch_size: int = 64,
    add_special_tokens: bool = True,
    append_eos: bool = True,
) -> Samples:
    """Given prompt and completion texts laid out like the output of
    :func:`harness.evaluation.sampling.sample`, to score them with any model.

    As TRL's DPO trainer does, prompt and prompt + completion are tokenized whole and the completion is what
    follows their common prefix; ``append_eos`` ends each completion with EOS unless its text already does.
    Prompts are left-padded, completions right-padded. Returns :class:`Samples` (``finished`` is True where
    the completion ends with EOS).
    """
    eos = tokenizer.eos_token or ""
    pad_id = tokenizer.pad_token_id
    out = Samples(prompts=list(prompts), completions=list(completions))
    for start in range(0, len(prompts), batch_size):
        chunk = list(
            zip(prompts[start : start + batch_size], completions[start : start + batch_size], strict=True)
        )
        fulls = [p + c + (eos if append_eos and not c.endswith(eos) else "") for p, c in chunk]
        prompt_ids = tokenizer([p for p, _ in chunk], add_special_tokens=add_special_tokens)["input_ids"]
        full_ids = tokenizer(fulls, add_special_tokens=add_special_tokens)["input_ids"]
        cut = [_common_prefix(p, f) for p, f in zip(prompt_ids, full_ids, strict=True)]
        heads = [f[:k] for f, k in zip(full_ids, cut, strict=True)]
        tails = [f[k:] for f, k in zip(full_ids, cut, strict=True)]
        width = max(len(h) for h in heads)
        tail_width = max(max(len(t) for t in tails), 1)
        ids = torch.full((len(chunk), width + tail_width), pad_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        completion = torch.zeros_like(ids)
        for row, (head, tail) in enumerate(zip(heads, tails, strict=True)):
            ids[row, width - len(head) : width] = torch.tensor(head, dtype=torch.long)
            ids[row, width : width + len(tail)] = torch.tensor(tail, dtype=torch.long)
            attention[row, width - len(head) : width + len(tail)] = 1
            completion[row, width : width + len(tail)] = 1
        finished = torch.tensor([bool(t) and t[-1] == tokenizer.eos_token_id for t in tails])
        out.batches.append(SampleBatch(ids, attention, completion, finished))
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
