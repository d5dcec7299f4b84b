"""The evaluation's settings, declared: ``eval.*`` and ``eval.selection.*``.

Hydra gets their defaults as the ``eval/default`` node (:func:`harness.config.store.register_configs`), which
the presets ``conf/eval/fast.yaml`` and ``full.yaml`` extend; a model config's ``profile`` adds its evaluation
values on top (``conf/eval_profile/<profile>.yaml``: the toy world's shorter completions). Each evaluator's
own options live under ``eval.<evaluator>``, declared by its plugin. See :mod:`harness.config.setting` for
what a declaration holds.
"""

from __future__ import annotations

from typing import Any

from harness.config.setting import Setting, SettingsGroup

DEFAULT_EVALUATORS = [
    "gold_reward",
    "reward_model",
    "kl",
    "win_rate",
    "preference_accuracy",
    "text_stats",
    "lm_eval",
]


def _names(value: Any) -> str | None:
    bad = next((v for v in value if not isinstance(v, str) or not v), None)
    return None if bad is None else f"{bad!r} is not an evaluator name"


SELECTION = SettingsGroup(
    "eval.selection",
    "Choosing each trial's checkpoint (and Optuna's values) on other prompts than the reported ones. Only "
    "the evaluators whose metrics choose the checkpoint run on them: the one measuring "
    "leaderboard.objective, those measuring the Optuna study's objectives, and kl (the KL budget).",
    (
        Setting(
            "num_prompts",
            64,
            "selection prompts, disjoint from the reported ones: the data source's own (toy world), else "
            "the last N held-out prompts after the eval.num_prompts reported ones (fewer when too few are "
            "left, with a warning); 0: off, checkpoints are chosen on the reported prompts (optimistic)",
            bounds="[0, inf)",
            fix="use a number of prompts >= 0 (0: choose checkpoints on the reported prompts)",
        ),
        Setting(
            "seed",
            None,
            "their sampling seed (null: eval.seed + 1)",
            types=(int,),
            nullable=True,
            fix="use an integer, or null (eval.seed + 1)",
        ),
        Setting(
            "exclude",
            ["lm_eval"],
            "evaluators kept off the selection prompts even then (lm-eval scores its own documents)",
            types=(list,),
            check=_names,
            fix="use a list of evaluator names, e.g. [lm_eval]",
        ),
    ),
)

EVAL = SettingsGroup(
    "eval",
    "Evaluation of checkpoints: every checkpoint of every trial is evaluated the same way, "
    "with fixed sampling seeds; the reference model's side is computed once per model, "
    "data and eval settings and cached on disk. eval=fast for quick looks, eval=full for "
    "all; each evaluator's options under eval.<evaluator>.",
    (
        Setting(
            "evaluators",
            DEFAULT_EVALUATORS,
            "registered evaluator names, run in this order (plugins can add their "
            "own): gold reward, reward-model score, KL to the reference, win rate, "
            "preference accuracy, text statistics, lm-eval tasks",
            types=(list,),
            check=_names,
            fix="use a list of evaluator names, e.g. [gold_reward, kl]",
        ),
        Setting(
            "extra",
            [],
            "evaluators run after the list above, e.g. [repetition]: add one without retyping the defaults",
            types=(list,),
            check=_names,
            fix="use a list of evaluator names, e.g. [repetition]",
        ),
        Setting(
            "checkpoints",
            "all",
            "all: every saved checkpoint and the final model | final: the final model only",
            choices=("all", "final"),
            fix="use all or final",
        ),
        Setting(
            "num_prompts",
            128,
            "held-out prompts sampled per checkpoint (null: all the data provides)",
            bounds="[1, inf)",
            nullable=True,
            fix="use a positive integer or null (all)",
        ),
        Setting(
            "samples_per_prompt",
            1,
            "completions sampled per prompt",
            bounds="[1, inf)",
            fix="it must be a positive integer",
        ),
        Setting(
            "max_new_tokens",
            256,
            "completion length cap, in tokens (the toy world's profile: 24)",
            bounds="[1, inf)",
            fix="it must be a positive integer",
        ),
        Setting(
            "temperature",
            1.0,
            "sampling temperature (1.0 with no top-k/top-p keeps the KL estimate unbiased)",
            bounds="(0, inf)",
            fix="it must be > 0 (1.0 is unbiased)",
        ),
        Setting(
            "batch_size",
            64,
            "prompts per generation batch",
            bounds="[1, inf)",
            fix="it must be a positive integer",
        ),
        Setting(
            "logprob_batch_size",
            None,
            "sequences per log-probability forward pass, length-sorted (null: batch_size)",
            types=(int,),
            bounds="[1, inf)",
            nullable=True,
            fix="use a positive integer or null (eval.batch_size)",
        ),
        Setting(
            "seed",
            1234,
            "sampling seed, identical for every trial so that samples are comparable",
            fix="use an integer (the same for every trial)",
        ),
        Setting(
            "preference_pairs",
            256,
            "held-out pairs scored by preference_accuracy (at most)",
            bounds="[1, inf)",
            fix="use a positive number of held-out pairs",
        ),
        Setting(
            "readable_samples",
            8,
            "first N held-out prompts kept as text in trial.json per checkpoint (reference and policy "
            "completions, per-sample scores) for samples.csv and the report's Samples section; 0: none",
            bounds="[0, inf)",
            fix="use a number of prompts >= 0 (0: none)",
        ),
        Setting("cache", True, "reuse the reference model's evaluation across trials (on disk)"),
        Setting(
            "cache_dir",
            None,
            "null: $HARNESS_CACHE_DIR/refeval or ~/.cache/harness/refeval",
            types=(str,),
            nullable=True,
        ),
    ),
    groups=(SELECTION,),
)
