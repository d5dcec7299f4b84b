"""Evaluating a checkpoint: the context evaluators share, and the loop that runs them.

Every checkpoint of every trial is evaluated the same way: the evaluators named in ``eval.evaluators`` run in
order on one :class:`EvalContext`, which samples the policy once (fixed seed, held-out prompts) and computes
shared quantities (per-token log-probabilities under the policy and the reference, rewards) at most once per
checkpoint; quantities of the reference model alone come from the reference-evaluation cache. An evaluator
that raises loses only its own metrics (:mod:`harness.evaluation.failures`). Afterwards the first few prompts'
completions are kept as text (:mod:`harness.evaluation.readable`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from omegaconf import DictConfig

from harness.data.chat import render_prompts
from harness.evaluation import reward_models
from harness.evaluation.failures import Outcomes, stops_the_trial, warn_withheld
from harness.evaluation.readable import prompt_scores, readable_samples
from harness.evaluation.refcache import RefCache
from harness.evaluation.reference import Reference
from harness.evaluation.rendering import score_pairs
from harness.evaluation.sampling import Samples, TokenLogprobs, sample, token_logprobs
from harness.plugin.hookspecs import RewardFunction
from harness.plugin.specs import EvaluatorSpec
from harness.records import Checkpoint, ReferenceEvaluation, SelectionResult

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

T = TypeVar("T")


class EvalContext:
    """What evaluators see for one checkpoint; expensive quantities are computed once and cached.

    Quantities of the reference model alone (its samples, their rewards, its log-probabilities of the held-out
    pairs) come from ``refcache`` (:mod:`harness.evaluation.refcache`), shared by every checkpoint and every
    trial with the same model, data and evaluation settings. At step 0 (``is_reference``) the policy *is* the
    reference, so its samples and rewards are the reference's and are stored there.
    """

    def __init__(
        self,
        *,
        cfg: DictConfig,
        step: int,
        policy: torch.nn.Module,
        reference: Reference,
        tokenizer: PreTrainedTokenizerBase,
        prompts: Sequence[str],
        gold_reward: RewardFunction | None,
        is_reference: bool = False,
        preference_pairs: Sequence[Mapping[str, Any]] | None = None,
        refcache: RefCache | None = None,
        label: str = "",
    ) -> None:
        self.cfg = cfg
        self.eval_cfg = cfg.eval
        self.step = step
        self.policy = policy
        self.reference = reference
        self.tokenizer = tokenizer
        self.source_prompts = list(prompts)  # as given (strings or message lists), for readable samples
        self.prompts, self.chat = render_prompts(tokenizer, prompts)
        self.gold_reward = gold_reward
        self.is_reference = is_reference  # step 0: the policy is the reference model itself
        self.preference_pairs = preference_pairs  # held-out pairwise rows (prompt/chosen/rejected), or None
        self.refcache = refcache if refcache is not None else RefCache("in-memory")
        self.label = label  # prefixes progress descriptions, e.g. "selection: " for the selection prompts
        self.evaluator: EvaluatorSpec | None = None  # the evaluator running now (set by evaluate_checkpoint)
        self.sample_scores: dict[str, dict[str, list[float]]] = {}  # see add_sample_scores
        self.withheld: dict[str, str] = {}  # see withhold
        self._memo: dict[str, Any] = {}

    @property
    def options(self) -> DictConfig:
        """The running evaluator's options, ``eval.<evaluator name>``
        (its declared defaults, as overridden)."""
        if self.evaluator is None or self.eval_cfg.get(self.evaluator.name) is None:
            return DictConfig({})
        return self.eval_cfg[self.evaluator.name]

    def memo(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, run at most once per checkpoint under ``name`` (for quantities evaluators share)."""
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]

    def trial_memo(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, run at most once per trial and prompt set under ``name``: for quantities of the
        held-out data alone that every checkpoint uses (the encoded preference pairs). Kept in memory with the
        reference cache (:meth:`harness.evaluation.refcache.RefCache.shared`), so the selection prompts have
        their own."""
        return self.refcache.shared(name, compute)

    def add_sample_scores(
        self, name: str, policy: Sequence[float], reference: Sequence[float] | None = None
    ) -> None:
        """Keep a per-sample score under ``name`` for the readable samples of this checkpoint's record.

        ``policy`` holds one value per policy sample (``policy_samples``, in order); ``reference`` one per
        reference sample (same prompts and order), when the score has a reference side. A pairwise score (the
        judge's verdict on policy vs reference) gives ``policy`` only. NaN marks a sample with no score.
        """
        n = len(self.policy_samples.completions)
        if len(policy) != n or (reference is not None and len(reference) != n):
            raise ValueError(f"add_sample_scores({name!r}): expected {n} values per side, one per sample")
        self.sample_scores[name] = {
            "policy": [float(v) for v in policy],
            **({"reference": [float(v) for v in reference]} if reference is not None else {}),
        }

    def withhold(self, metric: str, reason: str) -> None:
        """``metric`` has no value here, and why: kept as ``withheld_metrics``; one warning per reason."""
        if reason not in self.withheld.values():
            warn_withheld(self.evaluator, self.step, bool(self.label), metric, reason)
        self.withheld[metric] = reason

    def reference_tensor(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """A quantity of the reference model alone: from the reference cache,
        else ``compute()`` and stored."""
        cached = self.refcache.tensor(name)
        if cached is None:
            cached = compute()
            self.refcache.store_tensor(name, cached)
        return cached

    def _sample(self, model: torch.nn.Module, desc: str, keep_logprobs: bool = False) -> Samples:
        e = self.eval_cfg
        return sample(
            model,
            self.tokenizer,
            self.prompts,
            samples_per_prompt=e.samples_per_prompt,
            max_new_tokens=e.max_new_tokens,
            temperature=e.temperature,
            batch_size=e.batch_size,
            seed=e.seed,
            add_special_tokens=not self.chat,
            desc=f"{self.label}{desc}",
            keep_logprobs=keep_logprobs,
        )

    def token_logprobs(
        self, model: torch.nn.Module, samples: Samples, with_entropy: bool = False
    ) -> TokenLogprobs:
        """Per-token log-probabilities of ``samples``' completions under ``model`` at the
        sampling temperature."""
        chunk = (
            self.eval_cfg.get("logprob_batch_size") or self.eval_cfg.batch_size
        )  # few large passes: faster on CPU
        return token_logprobs(
            model,
            samples,
            temperature=self.eval_cfg.temperature,
            with_entropy=with_entropy,
            chunk_size=int(chunk),
        )

    @cached_property
    def reference_samples(self) -> Samples:
        """Completions sampled from the reference model on the same prompts with the same seed (cached)."""
        cached = self.refcache.samples()
        if cached is None:
            if self.is_reference:
                cached = self._sample(self.policy, "sampling reference")
            else:
                with self.reference.use(self.policy) as ref:
                    cached = self._sample(ref, "sampling reference")
            self.refcache.store_samples(cached)
        return cached

    @cached_property
    def policy_samples(self) -> Samples:
        """Completions sampled from the policy on the held-out prompts (fixed seed), with the sampler's own
        log-probabilities (:attr:`policy_tokens`)."""
        if self.is_reference:
            return self.reference_samples
        return self._sample(self.policy, f"sampling step {self.step}", keep_logprobs=True)

    @cached_property
    def policy_tokens(self) -> TokenLogprobs:
        """Per-token log-probabilities and sampling entropies of the policy samples under the policy: those
        kept while sampling them (no second pass over the samples), else computed."""
        kept = self.policy_samples.sampler_tokens
        if kept is not None:
            return kept
        return self.token_logprobs(self.policy, self.policy_samples, with_entropy=True)

    @cached_property
    def reference_tokens(self) -> TokenLogprobs:
        """Per-token log-probabilities of the policy samples under the reference model."""
        if self.is_reference:
            return self.policy_tokens
        with self.reference.use(self.policy) as ref:
            return self.token_logprobs(ref, self.policy_samples)

    @cached_property
    def policy_logprobs(self) -> torch.Tensor:
        """Per-sequence log-probability of the policy samples under the policy."""
        return self.policy_tokens.sequence()

    @cached_property
    def reference_logprobs(self) -> torch.Tensor:
        """Per-sequence log-probability of the policy samples under the reference model."""
        return self.reference_tokens.sequence()

    def _gold(self, samples: Samples) -> torch.Tensor:
        assert self.gold_reward is not None
        return torch.tensor(list(self.gold_reward(samples.prompts, samples.completions)), dtype=torch.float64)

    @cached_property
    def reference_gold_rewards(self) -> torch.Tensor | None:
        """Gold reward of each reference sample (cached), or None without a gold reward."""
        if self.gold_reward is None:
            return None
        return self.reference_tensor("gold_rewards", lambda: self._gold(self.reference_samples))

    @cached_property
    def gold_rewards(self) -> torch.Tensor | None:
        """Gold reward of each policy sample, or None when the data source defines no gold reward."""
        if self.gold_reward is None:
            return None
        if self.is_reference:
            return self.reference_gold_rewards
        return self._gold(self.policy_samples)

    @property
    def reward_model_path(self) -> str | None:
        """The configured reward model (``eval.reward_model.name_or_path``), or None."""
        return reward_models.configured_path(self.eval_cfg)

    def _reward_model_scores(self, samples: Samples) -> torch.Tensor:
        assert self.reward_model_path is not None
        model, tokenizer = reward_models.load_reward_model(
            self.reward_model_path, str(next(self.policy.parameters()).device)
        )
        # Its own rendering of each (source prompt, completion) (harness.evaluation.rendering); samples are
        # laid out prompt by prompt, samples_per_prompt each.
        k = int(self.eval_cfg.get("samples_per_prompt", 1))
        sources = [p for p in self.source_prompts for _ in range(k)]
        return score_pairs(model, tokenizer, sources, samples.completions, int(self.eval_cfg.batch_size))

    @cached_property
    def reference_reward_model_scores(self) -> torch.Tensor | None:
        """The reward model's score of each reference sample (cached), or None without a reward model."""
        if self.reward_model_path is None:
            return None
        return self.reference_tensor(
            "reward_model_scores", lambda: self._reward_model_scores(self.reference_samples)
        )

    @cached_property
    def reward_model_scores(self) -> torch.Tensor | None:
        """The reward model's score of each policy sample, or None when no reward model is configured."""
        if self.reward_model_path is None:
            return None
        if self.is_reference:
            return self.reference_reward_model_scores
        return self._reward_model_scores(self.policy_samples)


@dataclass
class CheckpointEvaluation:
    """What evaluating one checkpoint yields (see :func:`evaluate_checkpoint`)."""

    metrics: dict[str, float]
    seconds: dict[str, float]  # per evaluator, and "readable_samples" when they are kept
    samples: list[dict[str, Any]] = field(default_factory=list)  # see harness.evaluation.readable
    # The policy's per-sample scores on every held-out prompt, by score name (readable.prompt_scores).
    prompt_scores: dict[str, list[float | None]] = field(default_factory=dict)
    # The same checkpoint on the selection prompts (metrics, seconds in all and per evaluator), if any.
    selection: SelectionResult | None = None
    # What went wrong (harness.evaluation.failures): evaluators that raised or returned a key another had
    # ({evaluator, plugin, type, message}), non-finite values (key -> evaluator), withheld metrics (-> why).
    errors: list[dict[str, Any]] = field(default_factory=list)
    nonfinite: dict[str, str] = field(default_factory=dict)
    withheld: dict[str, str] = field(default_factory=dict)

    def note_problems(self, entry: Checkpoint | ReferenceEvaluation | SelectionResult) -> None:
        """Set the record entry's ``evaluator_errors``, ``nonfinite_metrics`` and ``withheld_metrics``, each
        only when there is one."""
        entry.evaluator_errors = self.errors or None
        entry.nonfinite_metrics = self.nonfinite or None
        entry.withheld_metrics = self.withheld or None


def _run_evaluator(
    spec: EvaluatorSpec, ctx: EvalContext, cached: Mapping[str, dict[str, float]], outcomes: Outcomes
) -> None:
    """One evaluator's metrics into ``outcomes``. At step 0 (``ctx.is_reference``) from the reference cache
    when it holds them (with the per-sample scores the evaluator reported, when cached), else computed and
    stored there. An evaluator that raises is recorded in ``outcomes`` (its metrics are missing) unless the
    failure must stop the trial (:func:`harness.evaluation.failures.stops_the_trial`)."""
    if spec.name in cached:
        ctx.sample_scores.update(ctx.refcache.sample_scores(spec.name))
        outcomes.add(spec, cached[spec.name])
        return
    before = dict(ctx.sample_scores)
    try:
        result = {key: float(value) for key, value in spec.evaluate(ctx).items()}
    except Exception as exc:  # a plugin's failure costs its own metrics, never the trial
        if stops_the_trial(exc):
            raise
        outcomes.failed(spec, exc)
        return
    if ctx.is_reference:
        ctx.refcache.store_metrics(spec.name, result)
        added = {k: v for k, v in ctx.sample_scores.items() if before.get(k) is not v}
        if added:
            ctx.refcache.store_sample_scores(spec.name, added)
    outcomes.add(spec, result)


def evaluate_checkpoint(
    evaluators: Sequence[EvaluatorSpec], ctx: EvalContext, readable: int = 0
) -> CheckpointEvaluation:
    """Run ``evaluators`` on ``ctx``; returns their metrics,
    the seconds per evaluator and the readable samples.

    Sampling is shared: its time is charged to the first evaluator that asks for samples. For the reference
    model (``ctx.is_reference``), an evaluator whose metrics are in ``ctx.refcache`` is not run (0 seconds),
    and the metrics of those that run are stored there (with the per-sample scores they report). Then the
    policy's per-sample scores on every prompt it was evaluated on are kept (the held-out prompts', or the
    selection prompts' for a selection evaluation: :func:`harness.evaluation.readable.prompt_scores`), and
    the texts and per-sample scores of the first
    ``readable`` prompts (the runner passes
    ``eval.readable_samples`` for a policy, 0 otherwise; see
    :func:`harness.evaluation.readable.readable_samples`); their seconds, sampling included when no evaluator
    sampled, are under ``readable_samples``.

    An evaluator that raises loses only its own metrics; a key already returned by another evaluator is not
    kept; non-finite values are kept and listed (:class:`harness.evaluation.failures.Outcomes`, one warning
    line each).
    """
    where = f"step {ctx.step}{' (reference)' if ctx.is_reference else ''}"
    outcomes = Outcomes(f"{where}{', selection prompts' if ctx.label else ''}")
    seconds: dict[str, float] = {}
    cached = ctx.refcache.metrics() if ctx.is_reference else {}
    for spec in evaluators:
        ctx.evaluator = spec
        start = time.perf_counter()
        _run_evaluator(spec, ctx, cached, outcomes)
        seconds[spec.name] = time.perf_counter() - start
    ctx.evaluator = None
    result = CheckpointEvaluation(
        outcomes.metrics, seconds, errors=outcomes.errors, nonfinite=outcomes.nonfinite, withheld=ctx.withheld
    )
    if not ctx.is_reference:  # every prompt's score for the paired tests (a race's: on selection prompts)
        result.prompt_scores = prompt_scores(ctx)
    if readable <= 0:
        return result
    start = time.perf_counter()
    result.samples = readable_samples(ctx, readable)
    seconds["readable_samples"] = time.perf_counter() - start
    return result
