"""Batched sampling from a causal LM and log-probabilities of completions under any model.

Evaluators share one set of samples per checkpoint (see :mod:`harness.evaluation.context`). Samples keep their
token ids and masks so that log-probabilities under any other model (the reference, for KL) are computed on
exactly the tokens that were sampled, with the position ids of generation time (:func:`token_logprobs`, in
length-sorted batches: :mod:`harness.evaluation.scoring`). The sampler's own log-probabilities (and entropies)
can be kept while sampling (``sample(..., keep_logprobs=True)``, from the distributions the tokens were drawn
from), so that the policy is not run over its samples a second time. Given completions (held-out preference
pairs) are laid out the same way by :func:`encode_completions`.

:class:`Samples` and :class:`SampleBatch` live in :mod:`harness.evaluation.samples`,
:func:`encode_completions` and :func:`completion_logprobs` in :mod:`harness.evaluation.completions`; this
module re-exports them (the plugin API names them here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from harness.evaluation.completions import completion_logprobs, encode_completions
from harness.evaluation.rendering import end_of_turn_id
from harness.evaluation.samples import SampleBatch, Samples
from harness.evaluation.scoring import TokenLogprobs, score_rows

if TYPE_CHECKING:
    from transformers import GenerationConfig

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


def end_of_sequence_ids(model: torch.nn.Module | None, tokenizer) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS, then each id the model's ``generation_config``
    (or, without one, its config) declares as ``eos_token_id`` (instruct models often declare several, e.g.
    ChatML's ``<|im_end|>`` and ``<|endoftext|>``), then the chat template's end-of-turn token when it is
    none of those (a Zephyr-style template ends turns with ``</s>`` while EOS is ``<|endoftext|>``;
    :func:`harness.evaluation.rendering.end_of_turn_id`), each once, in that order."""
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
    turn_end = end_of_turn_id(tokenizer)
    if turn_end is not None:
        found.append(turn_end)
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
    Generation stops at every end-of-sequence id the model declares and at its chat template's end-of-turn
    (:func:`end_of_sequence_ids`); a
    completion is finished, and masked after, at the first of them. ``keep_logprobs``: also keep, in
    ``sampler_tokens``, each completion token's log-probability under the distribution it was drawn from and
    that distribution's entropy (:class:`StepLogprobs`; what :func:`token_logprobs` of ``model`` gives, up to
    float rounding, without a second forward pass). Returns :class:`Samples` (prompts repeated
    ``samples_per_prompt`` times).
    """
    device = next(model.parameters()).device
    eos_ids = end_of_sequence_ids(model, tokenizer)  # read before the model's generation config is hidden
    config = _ancestral_sampling(temperature, max_new_tokens, tokenizer.pad_token_id, eos_ids)
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


def _ancestral_sampling(
    temperature: float, max_new_tokens: int, pad_token_id: int | None, eos_ids: Sequence[int]
) -> GenerationConfig:
    """Plain ancestral sampling at ``temperature`` (no top-k, no top-p), stopping at any of ``eos_ids``."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_token_id,
        eos_token_id=eos_ids or None,
    )


class StepLogprobs:
    """A logits processor that keeps, at each generation step, the log-probability of the token sampled at the
    step before and the entropy of the distribution it was drawn from (softmax of the logits at
    ``temperature``), holding one step's log-softmax at a time; :meth:`finish` adds the last token's. It
    returns the scores unchanged.

    ``generate`` runs a given processor after its own processors and before its sampling warpers, so it sees
    the raw logits and applies the temperature itself; :func:`sample` asks for no other warper (no top-k, no
    top-p), and hides the model's generation defaults that could add one, so softmax(logits / temperature) is
    the distribution sampled from."""

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self._last: torch.Tensor | None = None  # log-softmax of the latest step [batch, vocab]
        self.logprobs: list[torch.Tensor] = []
        self.entropy: list[torch.Tensor] = []

    def _take(self, tokens: torch.Tensor) -> None:
        if self._last is not None:
            self.logprobs.append(self._last.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).cpu())

    def __call__(  # noqa: D102 (processor)
        self, input_ids: torch.Tensor, scores: torch.Tensor
    ) -> torch.Tensor:
        self._take(input_ids[:, -1])
        logits = scores.float()
        self._last = torch.log_softmax(
            logits / self.temperature if self.temperature != 1.0 else logits, dim=-1
        )
        self.entropy.append(torch.special.entr(self._last.exp()).sum(dim=-1).cpu())
        return scores

    def finish(self, generated: torch.Tensor, completion_mask: torch.Tensor) -> TokenLogprobs:
        """The kept values of ``generated`` ([batch, steps]) as :class:`TokenLogprobs`
        (0 after each completion)."""
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
    """One seeded generation batch, its decoded completions and (with ``kept``)
    the sampler's log-probabilities."""
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
    length-sorted batches of ``chunk_size`` (:func:`harness.evaluation.scoring.score_rows`: little padding,
    and only the completion positions' logits when the model supports ``logits_to_keep``).
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
