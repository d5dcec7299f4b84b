"""Sampled or given completions laid out for scoring: :class:`Samples`, in batches of :class:`SampleBatch`.

A batch keeps the token ids (prompts left-padded, completions after them) and the masks, so that any model
can score exactly the tokens that were sampled, with the position ids of generation time; :meth:`Samples.rows`
gives each sample's real tokens for :func:`harness.evaluation.scoring.score_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.evaluation.scoring import Row, TokenLogprobs


@dataclass
class SampleBatch:
    """One generation batch: left-padded prompt + completion ids and their masks (shape [batch, length])."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor  # 1 on real prompt tokens and on completion tokens up to and including EOS
    completion_mask: torch.Tensor  # 1 on completion tokens up to and including EOS
    finished: torch.Tensor  # [batch] bool: the completion ended with EOS before the token limit

    @property
    def prompt_width(self) -> int:
        """Column where every row's completion starts (prompts are left-padded to this width)."""
        columns = self.completion_mask.any(dim=0).nonzero()
        return int(columns[0]) if len(columns) else self.input_ids.shape[1]

    @property
    def completion_ids(self) -> torch.Tensor:
        """Completion token ids [batch, completion width]; positions after EOS hold whatever
        follows (masked)."""
        return self.input_ids[:, self.prompt_width :]


@dataclass
class Samples:
    """Completions sampled for a list of prompts, with what is needed to score them again."""

    prompts: list[str]
    completions: list[str]
    batches: list[SampleBatch] = field(default_factory=list)
    # The sampler's log-probabilities and entropies of these completions,
    # when kept (``sample(keep_logprobs=True)``).
    sampler_tokens: TokenLogprobs | None = field(default=None, repr=False, compare=False)
    _rows: list[Row] | None = field(default=None, repr=False, compare=False)

    @property
    def completion_lengths(self) -> torch.Tensor:
        """Completion length in tokens (EOS included), one per sample."""
        return torch.cat([b.completion_mask.sum(dim=1) for b in self.batches])

    @property
    def finished(self) -> torch.Tensor:
        """Whether each completion ended with EOS before the token limit."""
        return torch.cat([b.finished for b in self.batches])

    def completion_token_ids(self) -> list[list[int]]:
        """Each completion's token ids, up to and including EOS (one list per sample)."""
        out: list[list[int]] = []
        for b in self.batches:
            width = b.prompt_width
            for ids, mask in zip(b.input_ids[:, width:], b.completion_mask[:, width:], strict=True):
                out.append(ids[mask.bool()].tolist())
        return out

    def rows(self) -> list[Row]:
        """Each sample's real tokens, prompt then completion, and its prompt length (for
        :func:`harness.evaluation.scoring.score_rows`); computed once per :class:`Samples`."""
        if self._rows is None:
            rows: list[Row] = []
            for b in self.batches:  # attention covers exactly the real prompt and completion tokens, in order
                real = b.attention_mask.bool()
                tokens = torch.split(b.input_ids[real], real.sum(dim=1).tolist())
                rows.extend(zip(tokens, real[:, : b.prompt_width].sum(dim=1).tolist(), strict=True))
            self._rows = rows
        return self._rows

    @classmethod
    def concat(cls, *parts: Samples) -> Samples:
        """One :class:`Samples` holding ``parts``' samples in order
        (to score them in one length-sorted pass)."""
        return cls(
            prompts=[p for part in parts for p in part.prompts],
            completions=[c for part in parts for c in part.completions],
            batches=[b for part in parts for b in part.batches],
        )
