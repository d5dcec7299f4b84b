"""Evaluator ``judge``: pairwise LLM-as-judge win rate of the policy's completions over the reference model's.

Not in the default list; add it with ``eval.extra=[judge]``. For every evaluation prompt the judge compares
the policy's completion with the reference model's completion of the same prompt (same sampling seed, from the
reference-evaluation cache), in both orders: once with the policy's answer as A and once as B, which cancels
the judge's position bias. A comparison scores 1 when the policy's answer wins, 1/2 for a tie (``[[C]]``) and
0 when it loses; a sample scores the mean over the orders whose verdict could be read, and prompts average
their samples. ``judge_win_rate`` is the mean over prompts with its standard error over prompts
(``judge_win_rate_se``); ``judge_unparsed`` counts the unusable verdicts (unreadable, a local judge's labels
under ``min_label_prob``, a request the server refused: left out, never guessed). When more than
``max_unusable`` of a checkpoint's verdicts are unusable, the win rates are withheld
(:meth:`harness.plugin.EvalContext.withhold`, ``"unusable (31/32 verdicts unusable: ...)"``): a judge that
cannot judge reports that, never a tie of 1/2. At step 0 the policy is the reference: 1/2 with no judge call.

``judge_win_rate_lc`` (``length_controlled: true``) is the win rate at equal length, AlpacaEval-LC style: a
logistic regression of each comparison's outcome on ``tanh(length difference / its std)`` with an intercept,
read at zero difference (:mod:`harness_plugins.evaluators.judge.stats`), with a delta-method standard error
clustered by prompt. It is left out when the data cannot determine it (every comparison won, or every one
lost).

Backends: ``openai`` (any OpenAI-compatible chat endpoint; :mod:`harness_plugins.evaluators.judge.backends`)
and ``local`` (a causal LM in this process reading the label probabilities after ``[[``;
:mod:`harness_plugins.evaluators.judge.local`). Prompts are templates
(:mod:`harness_plugins.evaluators.judge.template`); the options (``eval.judge.*``) are declared and read in
:mod:`harness_plugins.evaluators.judge.settings`. Verdicts are cached on disk (``$HARNESS_CACHE_DIR/judge`` or
``~/.cache/harness/judge``) under the sha256 of the judge's identity (backend, model, template text, output
settings), the question and both answers, so identical comparisons are judged once across checkpoints, trials
and sweeps. The API key is only read from the environment variable that ``api_key_env`` names: the config,
records, cache and messages hold that name, never the key.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from harness_plugins.evaluators.judge.backends import OpenAIJudge, VerdictCache, cached_run, endpoint_problem
from harness_plugins.evaluators.judge.local import LocalJudge, model_problem, verdict_from_probs
from harness_plugins.evaluators.judge.settings import NAME, OPTIONS, Settings, read_settings
from harness_plugins.evaluators.judge.stats import (
    length_controlled_win_rate,
    outcome,
    parse_verdict,
    prompt_means,
    sample_outcomes,
    unusable_kind,
    unusable_reason,
)
from harness_plugins.evaluators.judge.template import question_text
from omegaconf import DictConfig

from harness.plugin import ConfigError, EvaluatorSpec, Metric, cache_dir, hookimpl, mean_and_se

if TYPE_CHECKING:
    from harness.plugin import EvalContext

logger = logging.getLogger(__name__)
WIN_RATES = ("judge_win_rate", "judge_win_rate_lc")  # withheld (with their standard errors) when unusable


def make_judge(settings: Settings, device: torch.device | str) -> OpenAIJudge | LocalJudge:
    """The judge ``settings`` describe (a local one on ``device``, the policy's)."""
    if settings.backend == "local":
        return LocalJudge(
            model=settings.model,
            model_kwargs=settings.model_kwargs,
            device=device,
            batch_size=int(settings.batch_size),
        )
    return OpenAIJudge(
        base_url=str(settings.base_url),
        model=settings.model,
        api_key_env=settings.api_key_env,
        max_tokens=int(settings.max_tokens),
        timeout=float(settings.timeout),
        retries=int(settings.retries),
        concurrency=int(settings.concurrency),
    )


def interpret(answer: dict[str, Any], min_label_prob: float) -> str | None:
    """The verdict in a raw judge answer: a local judge's label probabilities, or an endpoint's text."""
    if "probs" in answer:
        return verdict_from_probs(answer["probs"], min_label_prob)
    return parse_verdict(answer.get("output"))


def judge_pairs(
    settings: Settings,
    judge: OpenAIJudge | LocalJudge,
    questions: Sequence[str],
    policy: Sequence[str],
    reference: Sequence[str],
) -> tuple[list[str | None], list[str | None], Counter[str]]:
    """Verdicts with the policy's answer as A, and with it as B, for each (question, policy, reference), and
    the count of unusable ones by kind (:func:`~harness_plugins.evaluators.judge.stats.unusable_kind`)."""
    comparisons = [
        *zip(questions, policy, reference, strict=True),
        *zip(questions, reference, policy, strict=True),
    ]
    conversations = [settings.template.render(*c) for c in comparisons]
    cache = VerdictCache(cache_dir(NAME) if settings.cache else None)
    answers, asked = cached_run(
        judge, cache, comparisons, conversations, {"template": settings.template.text}
    )
    verdicts = [interpret(a, float(settings.min_label_prob)) for a in answers]
    kinds = Counter(k for a, v in zip(answers, verdicts, strict=True) if (k := unusable_kind(a, v)))
    logger.info(
        "judge: %d comparisons, %d asked (the rest cached), %d unusable %s",
        len(verdicts),
        asked,
        sum(kinds.values()),
        dict(kinds),
    )
    return verdicts[: len(questions)], verdicts[len(questions) :], kinds


def summarize(
    first: Sequence[str | None],
    second: Sequence[str | None],
    length_diff: Sequence[float],
    samples_per_prompt: int,
    length_controlled: bool,
) -> dict[str, float]:
    """The metrics from the verdicts with the policy as A (``first``) and as B (``second``), one per sample,
    ``samples_per_prompt`` consecutive samples per prompt, and each sample's policy-minus-reference length."""
    metrics: dict[str, float] = {}
    prompts = prompt_means(sample_outcomes(first, second), samples_per_prompt)
    if prompts.size:
        mean, se = mean_and_se(torch.from_numpy(prompts))
        metrics.update({"judge_win_rate": mean, "judge_win_rate_se": se})
    if length_controlled:
        outcomes = [*(outcome(v, True) for v in first), *(outcome(v, False) for v in second)]
        cluster = [i // samples_per_prompt for i in range(len(first))]
        lc = length_controlled_win_rate(outcomes, [*length_diff, *length_diff], [*cluster, *cluster])
        if lc is not None:
            metrics.update({"judge_win_rate_lc": lc[0], "judge_win_rate_lc_se": lc[1]})
    return {**metrics, "judge_unparsed": float(sum(v is None for v in [*first, *second]))}


def _length_diff(ctx: EvalContext, count: int, unit: str) -> list[float]:
    policy, reference = ctx.policy_samples, ctx.reference_samples
    if unit == "tokens":
        return (policy.completion_lengths[:count] - reference.completion_lengths[:count]).double().tolist()
    return [
        float(len(p) - len(r))
        for p, r in zip(policy.completions[:count], reference.completions[:count], strict=True)
    ]


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``judge_win_rate`` ± se, ``judge_unparsed`` and (``length_controlled``) ``judge_win_rate_lc`` ± se of
    the policy's samples against the reference's, judged in both orders; 1/2 at step 0 without asking the
    judge. The win rates are withheld (left out, their reason given to ``ctx.withhold``) when more than
    ``max_unusable`` of the verdicts are unusable."""
    settings = read_settings(ctx.cfg)
    if ctx.is_reference:  # the policy is the reference: every comparison is of a completion with itself
        lc = {"judge_win_rate_lc": 0.5, "judge_win_rate_lc_se": 0.0} if settings.length_controlled else {}
        return {"judge_win_rate": 0.5, "judge_win_rate_se": 0.0, **lc, "judge_unparsed": 0.0}
    policy, reference = ctx.policy_samples, ctx.reference_samples
    k = int(ctx.eval_cfg.samples_per_prompt)
    n = len(policy.completions)
    count = n if settings.num_prompts is None else min(n, int(settings.num_prompts) * k)
    questions = [question_text(ctx.source_prompts[i // k]) for i in range(count)]  # sample i: prompt i // k
    judge = make_judge(settings, next(ctx.policy.parameters()).device)
    first, second, kinds = judge_pairs(
        settings, judge, questions, policy.completions[:count], reference.completions[:count]
    )
    per_sample = sample_outcomes(first, second).tolist()
    ctx.add_sample_scores(NAME, [*per_sample, *[math.nan] * (n - count)])
    metrics = summarize(
        first,
        second,
        _length_diff(ctx, count, str(settings.length_unit)),
        k,
        bool(settings.length_controlled),
    )
    reason = unusable_reason(kinds, 2 * count, float(settings.max_unusable))
    if reason is None:
        return metrics
    for key in WIN_RATES[: 2 if settings.length_controlled else 1]:
        ctx.withhold(key, reason)
    return {key: value for key, value in metrics.items() if not key.startswith(WIN_RATES)}


def _listed(cfg: DictConfig) -> bool:
    e = cfg.get("eval")
    return e is not None and NAME in [str(n) for n in [*(e.get("evaluators") or []), *(e.get("extra") or [])]]


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """When ``judge`` is among the evaluators: the judge is configured, its template usable, and the endpoint
    reachable (``openai``: ``GET {base_url}/models``) or the judge model present (``local``)."""
    if not _listed(cfg):
        return
    settings = read_settings(cfg)
    if settings.backend == "openai":
        problem = endpoint_problem(str(settings.base_url), settings.api_key_env)
    else:
        problem = model_problem(settings.model, settings.model_kwargs.get("revision"))
    if problem:
        raise ConfigError(problem)


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The LLM-as-judge evaluator."""
    return [
        EvaluatorSpec(
            name=NAME,
            evaluate=evaluate,
            options=OPTIONS,
            description="pairwise LLM-as-judge win rate over the "
            "reference's samples (both orders; eval.judge.*)",
            metrics=[
                Metric(
                    "judge_win_rate",
                    "fraction of prompts where an LLM judge prefers the policy's completion to "
                    "the reference's (both orders, ties 1/2)",
                    "maximize",
                    column="judge_wr",
                    headline=True,
                    se="judge_win_rate_se",
                    objective_priority=20,
                ),
                Metric(
                    "judge_win_rate_se",
                    "standard error of judge_wr over prompts",
                    column="judge_wr_se",
                    headline=True,
                ),
                Metric(
                    "judge_win_rate_lc",
                    "length-controlled judge win rate: predicted at equal length by a "
                    "logistic regression on the length difference (AlpacaEval-LC style)",
                    "maximize",
                    column="judge_lc_wr",
                    headline=True,
                    se="judge_win_rate_lc_se",
                ),
                Metric(
                    "judge_win_rate_lc_se",
                    "standard error of judge_lc_wr (delta method, clustered by prompt)",
                    column="judge_lc_wr_se",
                ),
                Metric(
                    "judge_unparsed",
                    "unusable judge verdicts: unreadable, under min_label_prob or refused by the server "
                    "(left out of the win rate; past eval.judge.max_unusable the win rate is withheld)",
                    headline=True,
                ),
            ],
        )
    ]
