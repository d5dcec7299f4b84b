"""Log-probabilities of given completion tokens under a model, in length-sorted batches with little padding.

A *row* is one sequence's real tokens, prompt then completion (no padding), and the number of prompt tokens.
:func:`score_rows` sorts the rows by length, packs them ``batch_size`` at a time, each row left-padded so that
every completion ends at the batch's last column, and runs one forward pass per batch. Position ids count the
real tokens only (``cumsum(attention_mask) - 1``), as at generation time, so a row's values do not depend on
which rows share its batch or how much padding it gets, up to float rounding. Only the completion positions'
logits are computed when the model supports ``logits_to_keep`` (the longest completion of the batch, plus
one), so that a large vocabulary never holds the logits of the prompts.

:mod:`harness.evaluation.sampling` turns sampled and encoded completions into rows (``Samples.rows``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: One sequence to score: its real token ids (prompt then completion, shape [length]) and its prompt length.
Row = tuple[torch.Tensor, int]


@dataclass
class TokenLogprobs:
    """Per-token quantities of completion tokens, right-padded to the longest completion ([n, T]).

    ``logprobs[i, t]`` is log p(token t of completion i | everything before it); ``mask`` is 1 on real
    completion tokens (EOS included) and 0 on padding; ``entropy`` (when asked for) is the entropy in nats of
    the next-token distribution the token was drawn from. Padding positions hold 0.
    """

    logprobs: torch.Tensor
    mask: torch.Tensor
    entropy: torch.Tensor | None = None

    def sequence(self) -> torch.Tensor:
        """Sum of the completion tokens' log-probabilities, one per sample (shape [n])."""
        return (self.logprobs * self.mask).sum(dim=1)


def accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether ``model``'s forward takes ``logits_to_keep`` (the logits of the last N positions only)."""
    base = (
        model.get_base_model() if hasattr(model, "get_base_model") else model
    )  # peft wraps forward(**kwargs)
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return False


def last_tokens_log_softmax(
    model: torch.nn.Module,
    ids: torch.Tensor,
    attention: torch.Tensor,
    keep: int,
    temperature: float,
    keep_logits: bool,
) -> torch.Tensor:
    """Log-softmax of the next-token distributions that predict the last ``keep`` tokens of left-padded
    ``ids`` ([batch, keep, vocab]), with the position ids of generation (real tokens counted from 0) and
    ``temperature``; ``keep_logits``: ask the model for those positions' logits only (``logits_to_keep``)."""
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    extra = {"logits_to_keep": keep + 1} if keep_logits else {}
    logits = model(input_ids=ids, attention_mask=attention, position_ids=positions, **extra).logits
    # logits[:, j] predicts token j+1: the last `keep` tokens need the `keep` positions before the last one.
    logits = logits[:, -(keep + 1) : -1].float()
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1)


def _pack(rows: Sequence[Row], keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask of ``rows`` left-padded to a common width (at least ``keep + 1`` columns,
    so that the first completion token of every row has a position before it)."""
    lengths = torch.tensor([len(ids) for ids, _ in rows])
    width = max(int(lengths.max()), keep + 1)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    attention = torch.zeros_like(ids)
    # Row i's tokens go to its last lengths[i] columns.
    row = torch.repeat_interleave(torch.arange(len(rows)), lengths)
    column = torch.arange(int(lengths.sum())) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
    column += torch.repeat_interleave(width - lengths, lengths)
    ids[row, column] = torch.cat([r for r, _ in rows]).long()
    attention[row, column] = 1
    return ids, attention


def _score_batch(
    model: torch.nn.Module, rows: Sequence[Row], temperature: float, keep_logits: bool, with_entropy: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probabilities (and entropies) of ``rows``' completion tokens, each row's values first and
    zeros after them ([rows, longest completion], on the CPU)."""
    device = next(model.parameters()).device
    lengths = torch.tensor([len(ids) - start for ids, start in rows])
    keep = int(lengths.max())
    ids, attention = _pack(rows, keep)
    ids, attention = ids.to(device), attention.to(device)
    logp = last_tokens_log_softmax(model, ids, attention, keep, temperature, keep_logits)
    # Completions end at the last column: row i's t-th completion token is at column keep - length_i + t.
    columns = torch.arange(keep)
    index = (columns.unsqueeze(0) + (keep - lengths).unsqueeze(1)).clamp(max=keep - 1).to(device)
    mask = (columns.unsqueeze(0) < lengths.unsqueeze(1)).to(device)
    token = logp.gather(-1, ids[:, -keep:].unsqueeze(-1)).squeeze(-1)
    out = (token.gather(1, index) * mask).cpu()
    if not with_entropy:
        return out, None
    entropy = torch.special.entr(logp.exp()).sum(dim=-1)
    return out, (entropy.gather(1, index) * mask).cpu()


@torch.no_grad()
def score_rows(
    model: torch.nn.Module,
    rows: Sequence[Row],
    *,
    temperature: float = 1.0,
    batch_size: int = 64,
    with_entropy: bool = False,
) -> TokenLogprobs:
    """Log-probabilities of each row's completion tokens under ``model`` at ``temperature`` (and the entropy
    of each step's distribution), in length-sorted batches of ``batch_size`` rows.

    Returns :class:`TokenLogprobs` in the order of ``rows``, right-padded to the longest completion (float32,
    on the CPU). A row with an empty completion has no values.
    """
    lengths = [len(ids) - start for ids, start in rows]
    width = max(lengths, default=0)
    logprobs = torch.zeros(len(rows), width)
    entropy = torch.zeros(len(rows), width) if with_entropy else None
    was_training = model.training
    model.eval()
    keep_logits = accepts_logits_to_keep(model)
    order = sorted((i for i in range(len(rows)) if lengths[i] > 0), key=lambda i: len(rows[i][0]))
    step = max(int(batch_size), 1)
    for start in range(0, len(order), step):
        chosen = order[start : start + step]
        values, entropies = _score_batch(
            model, [rows[i] for i in chosen], temperature, keep_logits, with_entropy
        )
        logprobs[chosen, : values.shape[1]] = values
        if entropy is not None and entropies is not None:
            entropy[chosen, : entropies.shape[1]] = entropies
    model.train(was_training)
    mask = (torch.arange(width).unsqueeze(0) < torch.tensor(lengths, dtype=torch.long).view(-1, 1)).float()
    return TokenLogprobs(logprobs=logprobs, mask=mask, entropy=entropy)
