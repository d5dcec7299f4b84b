"""Every hook a harness plugin can implement, in one place, with when it runs, where,
and what a failure costs.

Plugins are modules (or objects) with functions named after these hooks, marked with
``harness.plugin.hookimpl``. Built-in methods and evaluators are plugins of exactly this kind, registered
through the ``harness.plugins`` entry-point group that third-party packages use too.

The policy every hook follows (each hook's docstring says which rules apply to it):

- **Arguments.** An implementation may accept any subset of a hook's arguments, so adding an argument here is
  backwards compatible; removing one is not. A parameter the hook does not pass, or one with a default (pluggy
  never passes those: it would silently keep its default), is refused when the plugin registers.
- **Registration.** The plugin manager checks every implementation when it registers the plugin, before any
  compute: an unknown hook name, a parameter the hook does not pass, a pluggy wrapper and an unsupported
  plugin API version are each one line naming the plugin and the fix (:class:`harness.errors.PluginError`).
- **No wrappers.** ``hookimpl(wrapper=True)`` and ``hookimpl(hookwrapper=True)`` are refused: the lifecycle
  hooks call each plugin's implementation on its own (so that one plugin's failure cannot cost the others),
  which a wrapper around the other implementations would defeat. ``tryfirst``/``trylast`` order
  implementations.
- **Processes.** Registration hooks run in every process that builds the plugin manager: the command line,
  each trial's process, and each process of a multi-process trial (torchrun). Configuration and resource hooks
  run wherever a config is validated or a trial loads its model and data (in a multi-process trial, in every
  process). Lifecycle hooks and observers run in a trial's main process only (rank 0 under torchrun).
- **Failures.** A registration hook that raises stops the run with a PluginError naming the plugin. A
  configuration hook raises :class:`harness.errors.ConfigError` to refuse a config (one line, before any
  compute); a resource hook's exception fails the trial that called it, with its message. A lifecycle hook (or
  an observer's method) that raises is isolated: one warning line names the plugin, the record's
  ``plugin_errors`` gets ``{plugin, hook, type, message}``, and the trial and the sweep go on; only
  :class:`harness.errors.TrialPruned` (from ``harness_checkpoint_evaluated``) stops a trial, once every plugin
  has seen the checkpoint. An evaluator (``EvaluatorSpec.evaluate``) that raises loses its own metrics at that
  checkpoint only (see :mod:`harness.evaluation.failures`).
- **State.** A plugin that keeps state for a trial returns a :class:`harness.plugin.TrialObserver` from
  ``harness_trial_observer`` rather than keeping it in module globals: a process may run many trials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from harness.plugin.contexts import RewardFunction

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from harness.data import PreferenceData
    from harness.plugin.observers import TrialObserver
    from harness.plugin.specs import EvaluatorSpec, MethodSpec
    from harness.records import TrialRecord

PROJECT = "harness"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "RewardFunction", "hookimpl", "hookspec"]


# ---------------------------------------------------------------------------------------------------
# Registration: called once per process, when the plugin manager builds its registries.
# ---------------------------------------------------------------------------------------------------


@hookspec
def harness_methods_register() -> Sequence[MethodSpec]:
    """Return the training methods this plugin provides.

    Called once per process, the first time the plugin manager's method registry is read (before any config is
    validated), so that every method can be selected with ``method=<name>``. Called plugin by plugin.

    :returns: a sequence of :class:`harness.plugin.specs.MethodSpec`; results of all plugins are concatenated.
        Two plugins registering the same name is an error naming both; a spec that breaks the contract (see
        :class:`~harness.plugin.specs.MethodSpec`), or a ``train`` whose module calls the API with an argument
        it removed (:mod:`harness.plugin.versions`), is an error naming the plugin. Raising stops the run with
        a PluginError naming the plugin.
    """


@hookspec
def harness_evaluators_register() -> Sequence[EvaluatorSpec]:
    """Return the checkpoint evaluators this plugin provides.

    Called once per process, the first time the evaluator registry is read (before any config is validated).
    Evaluators are selected by name in ``eval.evaluators`` (or added to the default list with ``eval.extra``).

    :returns: a sequence of :class:`harness.plugin.specs.EvaluatorSpec`; results of all plugins are
        concatenated. Two plugins registering the same name, or two evaluators declaring the same metric name
        or leaderboard column, is an error naming both plugins; raising stops the run with a PluginError
        naming the plugin.
    """


@hookspec
def harness_config_searchpath() -> Sequence[str]:
    """Return config folders to add to Hydra's search path.

    Called when a process registers the plugins' config nodes with Hydra, before it composes any config (the
    command line at start-up), and whenever the harness looks for a config file a plugin may ship (a method's
    YAML, a model config's ``profile``). A folder holds config groups like ``conf/``: for example
    ``method/<name>.yaml``, a commented config file for the plugin's method (it must start with
    ``defaults: [base, _self_]`` and agree with the method's spec), or presets such as ``eval/<name>.yaml``.

    :returns: ``pkg://<importable package>`` or directory paths; results of all plugins are concatenated. An
        exception stops the composition (the command line prints it; a trial fails with it).
    """


# ---------------------------------------------------------------------------------------------------
# Configuration: called for every trial before any compute.
# ---------------------------------------------------------------------------------------------------


@hookspec
def harness_config_validate(cfg: DictConfig) -> None:
    """Check the composed trial config and raise :class:`harness.errors.ConfigError` if it is wrong.

    Called after the core's own checks of a trial config, before any model or data is loaded: by the command
    line for every job up front (a multirun's and an Optuna sweep's too), and again in each trial's process
    (every process of a multi-process trial) before the trial starts. This is where a data plugin reads and
    validates its files (``harness_data_load`` is not called during validation). The message must be one line
    naming the problem and the fix.

    :param cfg: the composed trial config (read-only).
    :returns: nothing; all implementations are called, until one raises. A ConfigError (any
        :class:`harness.errors.UserError`) refuses the config with its line (exit status 2, nothing runs); any
        other exception stops validation as well (a trial that was starting is recorded as failed with it).
    """


# ---------------------------------------------------------------------------------------------------
# Resources: models, data and rewards for a trial.
# ---------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def harness_model_resolve(name_or_path: str, cfg: DictConfig, dry_run: bool) -> str | None:
    """Map a symbolic model name (for example ``toyworld``) to a local directory.

    Called when a config is validated (with ``dry_run``: the command line, each trial's process) and when a
    trial loads its model (in every process of a multi-process trial, and for a trial's stages: the reward or
    SFT model it needs), before falling back to a local path or a Hub id.

    :param name_or_path: ``model.name_or_path`` from the config.
    :param cfg: the trial config.
    :param dry_run: if true, build or download nothing: only claim the name and say where it would be.
    :returns: a directory that ``from_pretrained`` can load, or ``None`` if this plugin does not own the name.
        Stops at the first non-None result. An exception stops validation, or fails the trial loading it.
    """


@hookspec(firstresult=True)
def harness_data_load(cfg: DictConfig) -> PreferenceData | None:
    """Load, validate and split the preference data configured in ``cfg.data``.

    Called once per trial, after validation and before the models are loaded, in every process of the trial
    (each process of a multi-process trial reads its own copy). It is not called while configs are validated:
    a plugin that wants a malformed file reported before any compute checks it in ``harness_config_validate``
    (the built-in ``files`` source does).

    :param cfg: the trial config.
    :returns: :class:`harness.data.PreferenceData`, or ``None`` if this plugin does not own
        ``cfg.data.source``. Stops at the first non-None result; when every plugin returns None the trial
        fails with a DataError naming ``data.source``. An exception fails the trial with its message (a
        :class:`harness.errors.DataError` is the user's to fix: one line naming the rows and the fix).
    """


@hookspec(firstresult=True)
def harness_gold_reward(cfg: DictConfig) -> RewardFunction | None:
    """Return the programmatic ("gold") reward of the configured data source, if it has one.

    The toy world defines one; a plugin can register one for its own data. Called once per trial when its
    evaluation is set up (every process), and whenever a plugin calls :func:`harness.plugin.gold_reward` (an
    online method training on it, an evaluator).

    :param cfg: the trial config.
    :returns: ``reward(prompts, completions) -> scores`` or ``None``. Stops at the first non-None result. An
        exception fails the trial.
    """


@hookspec(firstresult=True)
def harness_default_reward_model(cfg: DictConfig) -> str | None:
    """Name the reward model that scores a trial's samples when ``eval.reward_model.name_or_path`` is null.

    Called once per trial that trains a policy, when its evaluation is set up (before its reference
    evaluation, in every process), and only when the config has an ``eval.reward_model`` node whose
    ``name_or_path`` is null: a configured path is never replaced. A method trained on a reward model returns
    that model, so its score is reported beside the gold reward and reward hacking shows. The chosen path is
    recorded as ``eval_reward_model``.

    :param cfg: the trial config.
    :returns: a directory or Hub id of a one-output sequence-classification model, or ``None``. Stops at the
        first non-None result. An exception fails the trial.
    """


# ---------------------------------------------------------------------------------------------------
# Trial lifecycle: the trial's main process only; a failing implementation is recorded, the trial goes on.
# ---------------------------------------------------------------------------------------------------


@hookspec
def harness_trial_start(cfg: DictConfig, trial_dir: Path) -> None:
    """Called when a trial starts, after its config is validated and before its data and model are loaded.

    Called in the trial's main process only. A plugin that keeps state for the trial implements
    ``harness_trial_observer`` instead (called right after this hook).

    :param cfg: the trial config.
    :param trial_dir: the directory that will hold the trial record and checkpoints.
    :returns: nothing; all implementations are called. One that raises is recorded in ``plugin_errors`` with
        one warning line, and the trial goes on.
    """


@hookspec
def harness_trial_observer(cfg: DictConfig, trial_dir: Path) -> TrialObserver | None:
    """Return an object that follows this one trial (a :class:`harness.plugin.TrialObserver`), or None.

    Called once per trial, in its main process only, right after ``harness_trial_start``. The runner keeps the
    observers of this trial and calls their ``reference_evaluated``, ``checkpoint_evaluated`` and
    ``trial_end`` methods (in the order of the implementations: ``tryfirst`` comes first), then drops them:
    what a plugin keeps for a trial lives in its observer, never in module globals, so two trials in one
    process share nothing.

    :param cfg: the trial config.
    :param trial_dir: the directory that will hold the trial record and checkpoints.
    :returns: an observer or None; every non-None result is kept. An implementation that raises is recorded in
        ``plugin_errors`` (it then observes nothing) and the trial goes on; so is an observer method that
        raises, except :class:`harness.errors.TrialPruned` from ``checkpoint_evaluated``, which stops the
        trial.
    """


@hookspec
def harness_reference_evaluated(
    cfg: DictConfig, metrics: Mapping[str, Any], selection: Mapping[str, Any] | None
) -> None:
    """Called after the reference model (the untrained policy: step 0, the baseline) has been evaluated, in
    the trial's main process, before training starts; not called when a trial evaluates no reference (a reward
    model).

    For a plugin that follows a trial's metrics over its steps (an experiment tracker): step 0 comes here,
    every later checkpoint through ``harness_checkpoint_evaluated``. The same figures are the record's
    ``reference``.

    :param cfg: the trial config.
    :param metrics: the evaluators' metrics of the reference model, on the reported (test) prompts.
    :param selection: its metrics on the selection prompts (``eval.selection``); None when selection is off.
    :returns: nothing; all implementations are called. One that raises is recorded in ``plugin_errors`` with
        one warning line, and the trial goes on.
    """


@hookspec
def harness_checkpoint_evaluated(
    cfg: DictConfig,
    step: int,
    metrics: Mapping[str, Any],
    selection: Mapping[str, Any] | None,
    planned_steps: int | None,
) -> None:
    """Called after a checkpoint of the trained model has been evaluated, in the trial's main process.

    A plugin may raise :class:`harness.errors.TrialPruned` here to stop the trial (e.g. an Optuna pruner); the
    other implementations and the observers still see the checkpoint, then the trial stops and is recorded as
    pruned. The reference model's evaluation (step 0) is not reported here but through
    ``harness_reference_evaluated`` (it is the record's ``reference``). An implementation may leave out
    parameters it does not use (``selection`` is newer than the others).

    :param cfg: the trial config.
    :param step: the optimizer step of the checkpoint (>= 1).
    :param metrics: the evaluators' metrics for that checkpoint, on the reported (test) prompts.
    :param selection: the same checkpoint's metrics on the selection prompts (``eval.selection``), which a
        decision about the trial (a pruner) should use rather than ``metrics``; None when selection is off.
    :param planned_steps: the optimizer steps the trial will take in all (None when the method did not say),
        so that a pruner can wait for a share of training (``step / planned_steps``).
    :returns: nothing; all implementations are called. One that raises anything but TrialPruned is recorded in
        ``plugin_errors`` with one warning line, and the trial goes on.
    """


@hookspec
def harness_trial_end(record: TrialRecord) -> None:
    """Called when a trial ends (completed, failed, pruned or interrupted), after its record has been written.

    Called in the trial's main process only, once per trial, after the observers' ``trial_end``. The record is
    written again when an implementation fails (its error is then in ``plugin_errors``).

    :param record: the trial record, a :class:`~harness.records.TrialRecord` (``harness.plugin.TrialRecord``):
        read its fields as attributes (``record.status``, ``record.error.message`` when it did not complete,
        ``record.checkpoints[-1].metrics``, ``record.final_checkpoint()``); each field is documented on the
        class. ``record["status"]`` and ``record.get(...)`` still read it as the dict it was before (what
        ``trial.json`` holds under that key), for implementations written against that form. An implementation
        that changes the record writes it again itself (:func:`harness.records.write_record`).
    :returns: nothing; all implementations are called. One that raises is recorded in ``plugin_errors`` with
        one warning line.
    """
