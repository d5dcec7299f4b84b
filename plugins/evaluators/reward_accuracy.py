"""Evaluator ``reward_accuracy``, for reward models: how often the checkpoint scores the chosen completion of
a held-out pair above the rejected one (ties count one half), and the mean score margin. Runs on every
checkpoint of a method that produces a reward model (``method=reward``).

Each (prompt, completion) is read as TRL's RewardTrainer trained on it (:func:`harness.plugin.score_pairs`):
a conversational pair through the tokenizer's chat template, a plain-text one as prompt + completion + EOS.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from harness.plugin import EvaluatorSpec, Metric, hookimpl, mean_and_se, score_pairs

if TYPE_CHECKING:
    from harness.plugin import EvalContext


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """``reward_accuracy`` (with ``_se``) and ``reward_margin`` on the held-out pairs;
    {} when there are none."""
    pairs = ctx.preference_pairs or []
    if not pairs:
        return {}
    tokenizer = copy.copy(ctx.tokenizer)
    tokenizer.padding_side = "right"  # the score is read at the last real token
    model = ctx.policy
    was_training = model.training
    model.eval()
    prompts = [p["prompt"] for p in pairs]
    chosen = score_pairs(model, tokenizer, prompts, [p["chosen"] for p in pairs])
    rejected = score_pairs(model, tokenizer, prompts, [p["rejected"] for p in pairs])
    model.train(was_training)
    correct = (chosen > rejected).double() + 0.5 * (chosen == rejected).double()
    accuracy, se = mean_and_se(correct)
    return {
        "reward_accuracy": accuracy,
        "reward_accuracy_se": se,
        "reward_margin": float((chosen - rejected).mean()),
    }


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The reward model's held-out pairwise accuracy."""
    return [
        EvaluatorSpec(
            name="reward_accuracy",
            evaluate=evaluate,
            applies_to="reward_model",
            description="held-out pairwise accuracy of a reward model",
            metrics=[
                Metric(
                    "reward_accuracy",
                    "fraction of held-out pairs the reward model scores chosen above rejected (ties 1/2)",
                    "maximize",
                    column="rm_acc",
                    headline=True,
                    se="reward_accuracy_se",
                    objective_priority=40,
                ),
                Metric("reward_accuracy_se", "standard error of rm_acc"),
                Metric("reward_margin", "mean score margin chosen − rejected on held-out pairs"),
            ],
        )
    ]
