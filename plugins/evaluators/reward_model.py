"""Evaluator ``reward_model``: mean score of a learned reward model on the policy's samples.

The reward model is a sequence-classification model with one output (``AutoModelForSequenceClassification``,
``num_labels=1``), a local directory or a Hub id in ``eval.reward_model.name_or_path``; it scores the text
prompt + completion (:mod:`harness.evaluation.reward_models`). It is loaded once per process and kept. With no
path configured the evaluator yields no metric, so the same evaluator list works for every model and data; a
path that cannot be loaded as such a model stops the run before any compute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from harness.plugin import EvaluatorSpec, Metric, Option, check_reward_model, hookimpl, mean_and_se

if TYPE_CHECKING:
    from harness.plugin import EvalContext

NAME = "reward_model"


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``reward_model_score`` and ``reward_model_score_se``, or {} when no reward model is configured."""
    values = ctx.reward_model_scores
    if values is None:
        return {}
    ctx.add_sample_scores("reward_model_score", values.tolist(), ctx.reference_reward_model_scores.tolist())
    mean, se = mean_and_se(values)
    return {"reward_model_score": mean, "reward_model_score_se": se}


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """Check the configured reward model (config, tokenizer, weights present) when an evaluator uses it."""
    path = (cfg.eval.get(NAME) or {}).get("name_or_path")
    evaluators = {str(n) for n in [*(cfg.eval.get("evaluators") or []), *(cfg.eval.get("extra") or [])]}
    if path and {NAME, "win_rate"} & evaluators:
        check_reward_model(str(path))


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The reward-model evaluator."""
    return [
        EvaluatorSpec(
            name=NAME,
            evaluate=evaluate,
            description="mean score of eval.reward_model on policy samples",
            active=lambda cfg: bool((cfg.eval.get(NAME) or {}).get("name_or_path")),
            options=[
                Option(
                    "name_or_path",
                    None,
                    "a sequence-classification reward model (local directory or Hub id, "
                    "num_labels=1), or null: no metric",
                    types=(str,),
                    nullable=True,
                )
            ],
            metrics=[
                Metric(
                    "reward_model_score",
                    "mean score of the reward model on sampled completions",
                    "maximize",
                    column="rm_score",
                    headline=True,
                    se="reward_model_score_se",
                    objective_priority=10,
                ),
                Metric("reward_model_score_se", "standard error of rm_score", column="rm_se", headline=True),
            ],
        )
    ]
