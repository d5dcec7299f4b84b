"""Evaluating a checkpoint: the context evaluators share, and the loop that runs them.

Every checkpoint of every trial is evaluated the same way: the evaluators named in ``eval.evaluators`` run
in order on one :class:`EvalContext`, which samples the policy once (fixed seed, held-out prompts) and
computes shared quantities (log-probabilities under the reference) at most once per checkpoint.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Any

import torch
from omegaconf import DictConfig

from harness.hookspecs import RewardFunction
from harness.sampling import Samples, sample, sequence_logprobs
from harness.specs import EvaluatorSpec


class Reference:
    """Access to the reference model for evaluation.

    Either a loaded model that stays in memory (methods that train against a reference hold it anyway), a
    loader called per evaluation and released afterwards (reference-free methods, so that the measured
    training memory is the method's own), or the policy itself with its LoRA adapter disabled.
    """

    def __init__(self, model: torch.nn.Module | None = None,
                 loader: Callable[[], torch.nn.Module] | None = None) -> None:
        self._model = model
        self._loader = loader

    @contextlib.contextmanager
    def use(self, policy: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """Yield a module computing the reference distribution for ``policy``'s evaluation."""
        if self._model is not None:
            yield self._model
        elif self._loader is not None:
            model = self._loader()
            try:
                yield model
            finally:
                del model
        elif hasattr(policy, "disable_adapter"):  # a peft model: the base weights are the reference
            with policy.disable_adapter():
                yield policy
        else:
            raise RuntimeError("no reference model available for evaluation")


class EvalContext:
    """What evaluators see for one checkpoint; expensive quantities are computed once and cached."""

    def __init__(self, *, cfg: DictConfig, step: int, policy: torch.nn.Module, reference: Reference,
                 tokenizer: Any, prompts: Sequence[str], gold_reward: RewardFunction | None,
                 is_reference: bool = False) -> None:
        self.cfg = cfg
        self.eval_cfg = cfg.eval
        self.step = step
        self.policy = policy
        self.reference = reference
        self.tokenizer = tokenizer
        self.prompts, self.chat = render_prompts(tokenizer, prompts)
        self.gold_reward = gold_reward
        self.is_reference = is_reference  # step 0: the policy is the reference model itself

    @cached_property
    def policy_samples(self) -> Samples:
        """Completions sampled from the policy on the held-out prompts (fixed seed)."""
        e = self.eval_cfg
        return sample(self.policy, self.tokenizer, self.prompts, samples_per_prompt=e.samples_per_prompt,
                      max_new_tokens=e.max_new_tokens, temperature=e.temperature, batch_size=e.batch_size,
                      seed=e.seed, add_special_tokens=not self.chat, desc=f"sampling step {self.step}")

    @cached_property
    def policy_logprobs(self) -> torch.Tensor:
        """Per-sequence log-probability of the policy samples under the policy."""
        return sequence_logprobs(self.policy, self.policy_samples, temperature=self.eval_cfg.temperature)

    @cached_property
    def reference_logprobs(self) -> torch.Tensor:
        """Per-sequence log-probability of the policy samples under the reference model."""
        if self.is_reference:
            return self.policy_logprobs
        with self.reference.use(self.policy) as ref:
            return sequence_logprobs(ref, self.policy_samples, temperature=self.eval_cfg.temperature)

    @cached_property
    def gold_rewards(self) -> torch.Tensor | None:
        """Gold reward of each policy sample, or None when the data source defines no gold reward."""
        if self.gold_reward is None:
            return None
        s = self.policy_samples
        return torch.tensor(list(self.gold_reward(s.prompts, s.completions)), dtype=torch.float64)


def render_prompts(tokenizer: Any, prompts: Sequence[Any]) -> tuple[list[str], bool]:
    """Prompts as text: strings as they are, message lists through the tokenizer's chat template.

    Returns the texts and whether a chat template rendered them (its output already holds special tokens).
    """
    if not prompts or isinstance(prompts[0], str):
        return [str(p) for p in prompts], False
    return [tokenizer.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False) for p in prompts], True


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the mean of a 1-D tensor."""
    values = values.double()
    n = values.numel()
    se = float(values.std(unbiased=True) / n**0.5) if n > 1 else float("nan")
    return float(values.mean()), se


def evaluate_checkpoint(
    evaluators: Sequence[EvaluatorSpec], ctx: EvalContext
) -> tuple[dict[str, float], dict[str, float]]:
    """Run ``evaluators`` on ``ctx``; returns (metrics, seconds per evaluator).

    Sampling is shared: its time is charged to the first evaluator that asks for samples.
    """
    metrics: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for spec in evaluators:
        start = time.perf_counter()
        for key, value in spec.evaluate(ctx).items():
            metrics[key] = float(value)
        seconds[spec.name] = time.perf_counter() - start
    return metrics, seconds
