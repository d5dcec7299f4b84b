"""The public plugin API: everything a method, evaluator or data plugin may use from the harness.

Built-in plugins (``plugins/``, installed as ``harness_plugins``) import only this module (a test reads their
imports), so they are examples a third party can copy. Names that pull in torch or transformers are imported
on first use, so a plugin module that only registers specs stays cheap to import.

Declaring: :data:`hookimpl`, :class:`MethodSpec` with :class:`Hyperparameter` and :class:`Profile`, :class:`EvaluatorSpec` with
:class:`Metric` and :class:`Option`, :func:`separate_reference`. Training: :class:`TrainContext`,
:func:`completion_logprobs`. Evaluating: :class:`EvalContext`, :class:`Samples`, :class:`TokenLogprobs`,
:func:`mean_and_se`, :func:`sample`, :func:`token_logprobs`, :func:`encode_completions`, models (:func:`load_causal_lm`, :func:`load_tokenizer`: the ``model.*`` loader), reward models
(:func:`load_reward_model`, :func:`score_texts`, :func:`check_reward_model`). Data: :class:`PreferenceData`,
:class:`DataFormat`, :class:`ValidationReport`, :func:`load_preference_data`, :func:`render_prompts` (message-list
prompts through the tokenizer's chat template, as every method and evaluator reads them). Resources: :func:`gold_reward`,
:func:`method_defaults`, :func:`cache_dir`, :func:`file_lock`, :class:`Stage` (a trial of another method
that a trial needs first: the reward stage, the SFT stage; trained once per settings and cached). Tracking: :func:`hyperparameters`
(a trial's, as its record and the leaderboard name them), :func:`tracking_report_to` and :class:`TrackingRun` (the run
a trial logs to in experiment trackers, ``tracking.*``). Errors: :class:`ConfigError` (a user's config
mistake: one line with the fix), :class:`DataError`, :class:`UnknownNameError`, :class:`TrialFailed`,
:class:`TrialPruned`, :class:`PluginError`, :class:`UserError`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from harness.cache import cache_dir, file_lock
from harness.config.model_settings import separate_reference
from harness.config.store import method_defaults
from harness.data import DataFormat, PreferenceData, ValidationReport, load_preference_data, render_prompts
from harness.errors import (
    ConfigError,
    DataError,
    PluginError,
    TrialFailed,
    TrialPruned,
    UnknownNameError,
    UserError,
)
from harness.evaluation.stats import mean_and_se
from harness.plugin.hookspecs import RewardFunction, hookimpl
from harness.plugin.manager import gold_reward
from harness.plugin.settings import Hyperparameter, Option, TrackingRun, tracking_report_to
from harness.plugin.specs import EvaluatorSpec, MethodSpec, Metric, Profile

# Trial records (:mod:`harness.records`): what ``harness_trial_end`` receives, and what a trial leaves behind.
from harness.records import Checkpoint, TrialRecord

if TYPE_CHECKING:
    from harness.evaluation.context import EvalContext
    from harness.evaluation.reward_models import check_reward_model, load_reward_model, score_texts
    from harness.evaluation.sampling import (
        Samples,
        TokenLogprobs,
        completion_logprobs,
        encode_completions,
        sample,
        token_logprobs,
    )
    from harness.trial.context import TrainContext
    from harness.trial.models import load_causal_lm, load_tokenizer
    from harness.trial.runner import hyperparameters
    from harness.trial.stages import Stage

# Imported on first use (torch, transformers): name -> module.
_LAZY = {
    "TrainContext": "harness.trial.context",
    "EvalContext": "harness.evaluation.context",
    "Samples": "harness.evaluation.sampling",
    "TokenLogprobs": "harness.evaluation.sampling",
    "sample": "harness.evaluation.sampling",
    "token_logprobs": "harness.evaluation.sampling",
    "encode_completions": "harness.evaluation.sampling",
    "completion_logprobs": "harness.evaluation.sampling",
    "load_reward_model": "harness.evaluation.reward_models",
    "score_texts": "harness.evaluation.reward_models",
    "check_reward_model": "harness.evaluation.reward_models",
    "Stage": "harness.trial.stages",
    "load_causal_lm": "harness.trial.models",
    "load_tokenizer": "harness.trial.models",
    "hyperparameters": "harness.trial.runner",
}

__all__ = [
    "ConfigError",
    "DataError",
    "DataFormat",
    "EvalContext",
    "EvaluatorSpec",
    "Hyperparameter",
    "MethodSpec",
    "Metric",
    "Option",
    "PluginError",
    "Profile",
    "PreferenceData",
    "RewardFunction",
    "Samples",
    "Stage",
    "TokenLogprobs",
    "TrackingRun",
    "TrainContext",
    "TrialFailed",
    "TrialPruned",
    "UnknownNameError",
    "UserError",
    "ValidationReport",
    "cache_dir",
    "check_reward_model",
    "completion_logprobs",
    "encode_completions",
    "file_lock",
    "gold_reward",
    "hookimpl",
    "hyperparameters",
    "load_causal_lm",
    "load_preference_data",
    "load_reward_model",
    "load_tokenizer",
    "mean_and_se",
    "method_defaults",
    "render_prompts",
    "sample",
    "score_texts",
    "separate_reference",
    "token_logprobs",
    "tracking_report_to",
]

__all__ += ["Checkpoint", "TrialRecord"]  # trial records (harness.records)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness.plugin' has no attribute {name!r}")
