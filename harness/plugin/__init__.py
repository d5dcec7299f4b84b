"""The public plugin API: everything a method, evaluator or data plugin may use from the harness.

Built-in plugins (``plugins/``, installed as ``harness_plugins``) import only this module and their own
package's modules (a test reads their imports), so they are examples a third party can copy. Names that pull
in torch or transformers are imported on first use, so a plugin module that only registers specs stays cheap
to import. The API has a version, :data:`API_VERSION`; a plugin declares the one it targets as
``HARNESS_API_VERSION = 3`` in its module, read at registration (:mod:`harness.plugin.versions`: a newer one
is refused, a removed name gets a migration message).

- **Declaring**: :data:`hookimpl`, :class:`MethodSpec` with :class:`Hyperparameter` and :class:`Profile`,
  :class:`EvaluatorSpec` with :class:`Metric` and :class:`Option`, :func:`separate_reference`.
- **A DPO-family method as a loss function**: :class:`PairwiseBatch`, :data:`PairwiseLoss`,
  :func:`pairwise_loss_method` (trained on TRL's DPOTrainer with only the loss replaced) and
  :func:`check_pairwise_loss` (the trainer's loss against a plain forward pass, for a plugin's tests).
- **Training**: :class:`TrainContext`, :func:`completion_logprobs`.
- **Evaluating**: :class:`EvalContext`, :class:`Samples`, :class:`TokenLogprobs`, :func:`mean_and_se`,
  :func:`sample`, :func:`token_logprobs`, :func:`encode_completions`; models (:func:`load_causal_lm`,
  :func:`load_tokenizer`: the ``model.*`` loader); reward models (:func:`load_reward_model`,
  :func:`score_pairs`: each (source prompt, completion) in the reward model's own rendering,
  :func:`reward_input`: that rendering, :func:`score_texts`: texts as given, :func:`check_reward_model`);
  :func:`describe_tokenizer` (a tokenizer's template, BOS and end-of-turn, as the trial record keeps
  them). :class:`TrainContext` and :class:`EvalContext` are
  protocols of the API (:mod:`harness.plugin.contexts`) that the runtime's contexts satisfy: annotate a
  plugin's functions with them.
- **Data**: :class:`PreferenceData`, :class:`DataFormat`, :class:`ValidationReport`,
  :func:`load_preference_data`, :func:`render_prompts` (message-list prompts through the tokenizer's chat
  template, as every method and evaluator reads them).
- **Resources**: :func:`gold_reward`, :func:`method_defaults`, :func:`cache_dir`, :func:`file_lock`,
  :func:`read_checked_json` / :func:`write_checked_json` (a cache entry that verifies itself),
  :func:`content_sha256` (a file's hash, remembered: keys that name contents, not paths), :class:`Stage`
  (a trial of another method that a trial needs first: the reward stage, the SFT stage; trained once per
  settings and cached).
- **Following a trial**: :class:`TrialObserver` (returned by the ``harness_trial_observer`` hook: a plugin's
  state for one trial); :class:`TrialRecord` with its :class:`Checkpoint` entries (what a trial leaves behind,
  and what ``harness_trial_end`` receives); :func:`hyperparameters` (a trial's, as its record and the
  leaderboard name them); :func:`tracking_report_to` and :class:`TrackingRun` (the run a trial logs to in
  experiment trackers, ``tracking.*``).
- **Errors**: :class:`ConfigError` (a user's config mistake: one line with the fix), :class:`DataError`,
  :class:`UnknownNameError`, :class:`TrialFailed`, :class:`TrialPruned`, :class:`PluginError`,
  :class:`UserError`; :func:`redact` (a message with URL credentials, keys and tokens masked, for a plugin
  that puts user input into one).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from harness.cache import cache_dir, content_sha256, file_lock, read_checked_json, write_checked_json
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
from harness.plugin.contexts import EvalContext, TrainContext
from harness.plugin.hookspecs import RewardFunction, hookimpl
from harness.plugin.manager import gold_reward
from harness.plugin.metrics import Metric
from harness.plugin.observers import TrialObserver
from harness.plugin.pairwise import PairwiseBatch, PairwiseLoss, pairwise_loss_method
from harness.plugin.settings import Hyperparameter, Option, TrackingRun, tracking_report_to
from harness.plugin.specs import EvaluatorSpec, MethodSpec, Profile
from harness.plugin.stats import mean_and_se
from harness.plugin.versions import API_VERSION, removed_name
from harness.records import Checkpoint, TrialRecord
from harness.records.redaction import redact

if TYPE_CHECKING:
    from harness.evaluation.rendering import describe_tokenizer, reward_input, score_pairs
    from harness.evaluation.reward_models import check_reward_model, load_reward_model, score_texts
    from harness.evaluation.sampling import (
        Samples,
        TokenLogprobs,
        completion_logprobs,
        encode_completions,
        sample,
        token_logprobs,
    )
    from harness.trial.models import load_causal_lm, load_tokenizer
    from harness.trial.pairwise_check import check_pairwise_loss
    from harness.trial.runner import hyperparameters
    from harness.trial.stages import Stage

# Imported on first use (torch, transformers): name -> module.
_LAZY = {
    "Samples": "harness.evaluation.sampling",
    "TokenLogprobs": "harness.evaluation.sampling",
    "sample": "harness.evaluation.sampling",
    "token_logprobs": "harness.evaluation.sampling",
    "encode_completions": "harness.evaluation.sampling",
    "completion_logprobs": "harness.evaluation.sampling",
    "load_reward_model": "harness.evaluation.reward_models",
    "score_texts": "harness.evaluation.reward_models",
    "check_reward_model": "harness.evaluation.reward_models",
    "score_pairs": "harness.evaluation.rendering",
    "reward_input": "harness.evaluation.rendering",
    "describe_tokenizer": "harness.evaluation.rendering",
    "Stage": "harness.trial.stages",
    "load_causal_lm": "harness.trial.models",
    "load_tokenizer": "harness.trial.models",
    "hyperparameters": "harness.trial.runner",
    "check_pairwise_loss": "harness.trial.pairwise_check",
}

__all__ = [
    "redact",
    "API_VERSION",
    "Checkpoint",
    "ConfigError",
    "DataError",
    "DataFormat",
    "EvalContext",
    "EvaluatorSpec",
    "Hyperparameter",
    "MethodSpec",
    "Metric",
    "Option",
    "PairwiseBatch",
    "PairwiseLoss",
    "PluginError",
    "PreferenceData",
    "Profile",
    "RewardFunction",
    "Samples",
    "Stage",
    "TokenLogprobs",
    "TrackingRun",
    "TrainContext",
    "TrialFailed",
    "TrialObserver",
    "TrialPruned",
    "TrialRecord",
    "UnknownNameError",
    "UserError",
    "ValidationReport",
    "cache_dir",
    "check_pairwise_loss",
    "check_reward_model",
    "completion_logprobs",
    "content_sha256",
    "describe_tokenizer",
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
    "pairwise_loss_method",
    "read_checked_json",
    "render_prompts",
    "reward_input",
    "sample",
    "score_pairs",
    "score_texts",
    "separate_reference",
    "token_logprobs",
    "tracking_report_to",
    "write_checked_json",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    removed = removed_name(name)  # a name an earlier API had: say what replaced it
    if removed is not None:
        raise removed
    raise AttributeError(f"module 'harness.plugin' has no attribute {name!r}")
