"""Batched sampling from a causal LM and log-probabilities of completions under any model.

Evaluators share one set of samples per checkpoint (see :mod:`harness.evaluation.context`). Samples keep their
token ids and masks so that log-probabilities under any other model (the reference, for KL) are computed on
exactly the tokens that were sampled, with the position ids of generation time (:func:`token_logprobs`, in
length-sorted batches: :mod:`harness.evaluation.scoring`). The sampler's own log-probabilities (and entropies) can
be kept while sampling (``sample(..., keep_logprobs=True)``, from the distributions the tokens were drawn from), so
that the policy is not run over its samples a second time. Given completions (held-out preference pairs) are laid
out the same way by :func:`encode_completions`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from harness.evaluation.scoring import (
    Row,
    TokenLogprobs,
    accepts_logits_to_keep,
    last_tokens_log_softmax,
    score_rows,
)

__all__ = [
    "SampleBatch",
    "Samples",
    "TokenLogprobs",
    "completion_logprobs",
    "encode_completions",
    "end_of_sequence_ids",
    "sample",
    "sequence_logprobs",
    "token_logprobs",
]


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
        """Completion token ids [batch, completion width]; positions after EOS hold whatever follows (masked)."""
        return self.input_ids[:, self.prompt_width :]


@dataclass
class Samples:
    """Completions sampled for a list of prompts, with what is needed to score them again."""

    prompts: list[str]
    completions: list[str]
    batches: list[SampleBatch] = field(default_factory=list)
    # The sampler's log-probabilities and entropies of these completions, when kept (``sample(keep_logprobs=True)``).
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
        """One :class:`Samples` holding ``parts``' samples in order (to score them in one length-sorted pass)."""
        return cls(
            prompts=[p for part in parts for p in part.prompts],
            completions=[c for part in parts for c in part.completions],
            batches=[b for part in parts for b in part.batches],
        )


def end_of_sequence_ids(model: torch.nn.Module | None, tokenizer) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS, then each id the model's ``generation_config`` (or,
    without one, its config) declares as ``eos_token_id`` (instruct models often declare several, e.g. ChatML's
    ``<|im_end|>`` and ``<|endoftext|>``), each once, in that order."""
    found: list[int] = []
    if getattr(tokenizer, "eos_token_id", None) is not None:
        found.append(int(tokenizer.eos_token_id))
    target = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: the wrapped model
    for source in (getattr(target, "generation_config", None), getattr(target, "config", None)):
        declared = getattr(source, "eos_token_id", None)
        if declared is None:
            continue
        found.extend(int(i) for i in (declared if isinstance(declared, (list, tuple)) else [declared]))
        break
    return list(dict.fromkeys(found))


def _completion_mask(
    generated: torch.Tensor, eos_id: int | Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask of generated tokens up to and including the first end-of-sequence token (any of ``eos_id``), and
    whether one occurred."""
    ids = torch.as_tensor(
        [eos_id] if isinstance(eos_id, int) else list(eos_id), dtype=generated.dtype, device=generated.device
    )
    is_eos = torch.isin(generated, ids)
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
    keep_logprobs: bool = False,
) -> Samples:
    """Sample completions for ``prompts`` with plain ancestral sampling (no top-k, no top-p).

    Each batch is seeded with ``seed + batch index``, so the same model, prompts and settings give the same
    samples in any process. ``add_special_tokens=False`` for prompts already rendered by a chat template.
    Generation stops at every end-of-sequence id the model declares (:func:`end_of_sequence_ids`); a completion
    is finished, and masked after, at the first of them. ``keep_logprobs``: also keep, in ``sampler_tokens``, each
    completion token's log-probability under the distribution it was drawn from and that distribution's entropy
    (:class:`StepLogprobs`; what :func:`token_logprobs` of ``model`` gives, up to float rounding, without a second
    forward pass). Returns :class:`Samples` (prompts repeated ``samples_per_prompt`` times).
    """
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    eos_ids = end_of_sequence_ids(model, tokenizer)  # read before the model's generation config is hidden
    config = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos_ids or None,
    )
    expanded = [p for p in prompts for _ in range(samples_per_prompt)]
    out = Samples(prompts=expanded, completions=[])
    was_training = model.training
    model.eval()
    starts = range(0, len(expanded), batch_size)
    with _without_model_generation_defaults(model):
        batches = [
            _sample_batch(
                model,
                tokenizer,
                expanded[start : start + batch_size],
                config,
                seed + index,
                add_special_tokens,
                device,
                eos_ids,
                StepLogprobs(temperature) if keep_logprobs else None,
            )
            for index, start in enumerate(tqdm(starts, desc=desc, leave=False, disable=len(starts) < 2))
        ]
    kept = []
    for batch, completions, tokens in batches:
        out.batches.append(batch)
        out.completions.extend(completions)
        kept.append(tokens)
    if keep_logprobs:
        out.sampler_tokens = _concat_tokens(kept)
    model.train(was_training)
    return out


class StepLogprobs:
    """A logits processor that keeps, at each generation step, the log-probability of the token sampled at the
    step before and the entropy of the distribution it was drawn from (softmax of the logits at ``temperature``),
    holding one step's log-softmax at a time; :meth:`finish` adds the last token's. It returns the scores unchanged.

    ``generate`` runs a given processor after its own processors and before its sampling warpers, so it sees the raw
    logits and applies the temperature itself; :func:`sample` asks for no other warper (no top-k, no top-p), and
    hides the model's generation defaults that could add one, so softmax(logits / temperature) is the distribution
    sampled from."""

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self._last: torch.Tensor | None = None  # log-softmax of the latest step [batch, vocab]
        self.logprobs: list[torch.Tensor] = []
        self.entropy: list[torch.Tensor] = []

    def _take(self, tokens: torch.Tensor) -> None:
        if self._last is not None:
            self.logprobs.append(self._last.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).cpu())

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:  # noqa: D102 (processor)
        self._take(input_ids[:, -1])
        logits = scores.float()
        self._last = torch.log_softmax(
            logits / self.temperature if self.temperature != 1.0 else logits, dim=-1
        )
        self.entropy.append(torch.special.entr(self._last.exp()).sum(dim=-1).cpu())
        return scores

    def finish(self, generated: torch.Tensor, completion_mask: torch.Tensor) -> TokenLogprobs:
        """The kept values of ``generated`` ([batch, steps]) as :class:`TokenLogprobs` (0 after each completion)."""
        if generated.shape[1] > len(self.logprobs):
            self._take(generated[:, len(self.logprobs)])
        self._last = None
        width = generated.shape[1]
        empty = torch.zeros(generated.shape[0], 0)
        mask = completion_mask.float().cpu()
        logprobs = torch.stack(self.logprobs[:width], dim=1) if width else empty
        entropy = torch.stack(self.entropy[:width], dim=1) if width else empty
        return TokenLogprobs(logprobs=logprobs * mask, mask=mask, entropy=entropy * mask)


def _concat_tokens(parts: Sequence[TokenLogprobs]) -> TokenLogprobs:
    """The batches' :class:`TokenLogprobs` as one, right-padded to the longest completion."""
    width = max((p.logprobs.shape[1] for p in parts), default=0)

    def pad(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]))

    return TokenLogprobs(
        logprobs=torch.cat([pad(p.logprobs) for p in parts]) if parts else torch.zeros(0, 0),
        mask=torch.cat([pad(p.mask) for p in parts]) if parts else torch.zeros(0, 0),
        entropy=torch.cat([pad(p.entropy) for p in parts]) if parts else torch.zeros(0, 0),
    )


@contextlib.contextmanager
def _without_model_generation_defaults(model: torch.nn.Module) -> Iterator[None]:
    """Hide the model's generation_config.json while sampling.

    ``generate`` fills every setting left unset with the model's own defaults, and those may add processors
    (repetition penalty, minimum length, top-k, ...) that change the distribution sampled from, which the
    log-probabilities must match.
    """
    from transformers import GenerationConfig

    target = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: the wrapped model
    saved = getattr(target, "generation_config", None)
    target.generation_config = GenerationConfig()
    try:
        yield
    finally:
        target.generation_config = saved


def _sample_batch(
    model: torch.nn.Module,
    tokenizer,
    chunk: list[str],
    config,
    seed: int,
    add_special_tokens: bool,
    device: torch.device,
    eos_ids: Sequence[int],
    kept: StepLogprobs | None = None,
) -> tuple[SampleBatch, list[str], TokenLogprobs | None]:
    """One seeded generation batch, its decoded completions and (with ``kept``) the sampler's log-probabilities."""
    from transformers import LogitsProcessorList

    enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens).to(
        device
    )
    torch.manual_seed(seed)  # seeds CUDA too; callers restore the RNG state (see checkpoints)
    processors = LogitsProcessorList([kept] if kept is not None else [])
    sequences = model.generate(**enc, generation_config=config, logits_processor=processors)
    width = enc["input_ids"].shape[1]
    generated = sequences[:, width:]
    completion_mask, finished = _completion_mask(generated, eos_ids)
    completion_full = torch.cat([torch.zeros_like(enc["attention_mask"]), completion_mask], dim=1)
    attention = torch.cat([enc["attention_mask"], completion_mask], dim=1)
    completions = tokenizer.batch_decode(
        generated * completion_mask + tokenizer.pad_token_id * (1 - completion_mask), skip_special_tokens=True
    )
    tokens = kept.finish(generated, completion_mask) if kept is not None else None
    return (
        SampleBatch(sequences.cpu(), attention.cpu(), completion_full.cpu(), finished.cpu()),
        completions,
        tokens,
    )


def token_logprobs(
    model: torch.nn.Module,
    samples: Samples,
    *,
    temperature: float = 1.0,
    chunk_size: int = 32,
    with_entropy: bool = False,
) -> TokenLogprobs:
    """Log-probabilities of each completion token under ``model`` (and optionally the entropy of each step).

    Uses the position ids of generation and the same temperature as sampling, so that the values are those of
    the distribution the samples were drawn from (when ``model`` is the sampler). The samples are scored in
    length-sorted batches of ``chunk_size`` (:func:`harness.evaluation.scoring.score_rows`: little padding, and
    only the completion positions' logits when the model supports ``logits_to_keep``).
    Returns :class:`TokenLogprobs` with tensors of shape [n, longest completion] (float32, on the CPU).
    """
    return score_rows(
        model, samples.rows(), temperature=temperature, batch_size=chunk_size, with_entropy=with_entropy
    )


def sequence_logprobs(
    model: torch.nn.Module, samples: Samples, *, temperature: float = 1.0, chunk_size: int = 32
) -> torch.Tensor:
    """Sum of log-probabilities of each sample's completion tokens under ``model`` (shape [n], float32).

    ``sequence_logprobs(policy) - sequence_logprobs(reference)`` on policy samples is an unbiased per-sequence
    estimate of KL(policy || reference) for the sampling distributions (see :func:`token_logprobs`).
    """
    return token_logprobs(model, samples, temperature=temperature, chunk_size=chunk_size).sequence()


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
    """Given prompt and completion texts laid out like :func:`sample`'s output, to score them with any model.

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
