"""Every hook a harness plugin can implement, in one place.

Plugins are modules (or objects) with functions named after these hooks, marked with
``harness.plugin.hookimpl``. Built-in methods and evaluators are plugins of exactly this kind, registered
through the ``harness.plugins`` entry-point group that third-party packages use too. An implementation
may accept any subset of a hook's arguments, so adding an argument here is backwards compatible;
removing one is not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from harness.data import PreferenceData
    from harness.plugin.specs import EvaluatorSpec, MethodSpec
    from harness.records import TrialRecord

PROJECT = "harness"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# A programmatic ("gold") reward: scores completions of prompts; higher is better.
RewardFunction = Callable[[Sequence[str], Sequence[str]], Sequence[float]]


# ---------------------------------------------------------------------------------------------------
# Registration: called once, when the plugin manager is built.
# ---------------------------------------------------------------------------------------------------


@hookspec
def harness_methods_register() -> Sequence[MethodSpec]:
    """Return the training methods this plugin provides.

    Called once when the plugin manager starts, before any config is composed, so that every method can
    be selected with ``method=<name>``.

    :returns: a sequence of :class:`harness.plugin.specs.MethodSpec`; results of all plugins are concatenated.
        Two plugins registering the same name is an error naming both; a spec that breaks the contract (see
        :class:`~harness.plugin.specs.MethodSpec`) is an error naming the plugin.
    """


@hookspec
def harness_evaluators_register() -> Sequence[EvaluatorSpec]:
    """Return the checkpoint evaluators this plugin provides.

    Called once when the plugin manager starts. Evaluators are selected by name in ``eval.evaluators`` (or
    added to the default list with ``eval.extra``).

    :returns: a sequence of :class:`harness.plugin.specs.EvaluatorSpec`; results of all plugins are concatenated.
        Two plugins registering the same name is an error naming both.
    """


@hookspec
def harness_config_searchpath() -> Sequence[str]:
    """Return config folders to add to Hydra's search path.

    Called once when the plugin manager starts. A folder holds config groups like ``conf/``: for example
    ``method/<name>.yaml``, a commented config file for the plugin's method (it must start with
    ``defaults: [base, _self_]`` and agree with the method's spec), or presets such as ``eval/<name>.yaml``.

    :returns: ``pkg://<importable package>`` or directory paths; results of all plugins are concatenated.
    """


# ---------------------------------------------------------------------------------------------------
# Configuration: called for every trial before any compute.
# ---------------------------------------------------------------------------------------------------


@hookspec
def harness_config_validate(cfg: DictConfig) -> None:
    """Check the composed trial config and raise :class:`harness.errors.ConfigError` if it is wrong.

    Called for every trial (and, for a multirun, for every job up front) before any model or data is
    loaded. The message must be one line naming the problem and the fix.

    :param cfg: the composed trial config (read-only).
    :returns: nothing; all implementations are called.
    """


# ---------------------------------------------------------------------------------------------------
# Resources: models, data and rewards for a trial.
# ---------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def harness_model_resolve(name_or_path: str, cfg: DictConfig, dry_run: bool) -> str | None:
    """Map a symbolic model name (for example ``toyworld``) to a local directory.

    Called when a trial loads its model (and, with ``dry_run``, when its config is validated), before
    falling back to a local path or a Hub id.

    :param name_or_path: ``model.name_or_path`` from the config.
    :param cfg: the trial config.
    :param dry_run: if true, build or download nothing: only claim the name and say where it would be.
    :returns: a directory that ``from_pretrained`` can load, or ``None`` if this plugin does not own the
        name. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def harness_data_load(cfg: DictConfig) -> PreferenceData | None:
    """Load, validate and split the preference data configured in ``cfg.data``.

    Called once per trial, before training. Also called during validation with the same config, so a
    malformed file is reported before any compute.

    :param cfg: the trial config.
    :returns: :class:`harness.data.PreferenceData`, or ``None`` if this plugin does not own
        ``cfg.data.source``. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def harness_gold_reward(cfg: DictConfig) -> RewardFunction | None:
    """Return the programmatic ("gold") reward of the configured data source, if it has one.

    The toy world defines one; a plugin can register one for its own data. Evaluators use it to score
    policy samples.

    :param cfg: the trial config.
    :returns: ``reward(prompts, completions) -> scores`` or ``None``. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def harness_default_reward_model(cfg: DictConfig) -> str | None:
    """Name the reward model that scores a trial's samples when ``eval.reward_model.name_or_path`` is null.

    Called once per trial, before its reference evaluation. A method trained on a reward model returns that
    model, so its score is reported beside the gold reward and reward hacking shows.

    :param cfg: the trial config.
    :returns: a directory or Hub id of a one-output sequence-classification model, or ``None``. Stops at the
        first non-None result.
    """


# ---------------------------------------------------------------------------------------------------
# Trial lifecycle.
# ---------------------------------------------------------------------------------------------------


@hookspec
def harness_trial_start(cfg: DictConfig, trial_dir: Path) -> None:
    """Called when a trial starts, after validation and before its model is loaded.

    :param cfg: the trial config.
    :param trial_dir: the directory that will hold the trial record and checkpoints.
    """


@hookspec
def harness_reference_evaluated(
    cfg: DictConfig, metrics: Mapping[str, Any], selection: Mapping[str, Any] | None
) -> None:
    """Called after the reference model (the untrained policy: step 0, the baseline) has been evaluated, from the
    trial's own process, before training starts; not called when a trial evaluates no reference (a reward model).

    For a plugin that follows a trial's metrics over its steps (an experiment tracker): step 0 comes here, every
    later checkpoint through ``harness_checkpoint_evaluated``. The same figures are ``record["reference"]``.

    :param cfg: the trial config.
    :param metrics: the evaluators' metrics of the reference model, on the reported (test) prompts.
    :param selection: its metrics on the selection prompts (``eval.selection``); None when selection is off.
    """


@hookspec
def harness_checkpoint_evaluated(
    cfg: DictConfig,
    step: int,
    metrics: Mapping[str, Any],
    selection: Mapping[str, Any] | None,
    planned_steps: int | None,
) -> None:
    """Called after a checkpoint of the trained model has been evaluated, from the trial's own process.

    A plugin may raise :class:`harness.errors.TrialPruned` here to stop the trial (e.g. an Optuna pruner). The
    reference model's evaluation (step 0) is not reported here but through ``harness_reference_evaluated`` (and it
    is ``record["reference"]``). An implementation may leave out parameters it does not use (``selection`` is newer
    than the others).

    :param cfg: the trial config.
    :param step: the optimizer step of the checkpoint (>= 1).
    :param metrics: the evaluators' metrics for that checkpoint, on the reported (test) prompts.
    :param selection: the same checkpoint's metrics on the selection prompts (``eval.selection``), which a
        decision about the trial (a pruner) should use rather than ``metrics``; None when selection is off.
    :param planned_steps: the optimizer steps the trial will take in all (None when the method did not say), so
        that a pruner can wait for a share of training (``step / planned_steps``).
    """


@hookspec
def harness_trial_end(record: TrialRecord) -> None:
    """Called when a trial ends, successfully or not, after its record has been written.

    :param record: the trial record, a :class:`~harness.records.TrialRecord` (``harness.plugin.TrialRecord``):
        read its fields as attributes (``record.status``, ``record.error.message`` when it did not complete,
        ``record.checkpoints[-1].metrics``, ``record.final_checkpoint()``); each field is documented on the class.
        ``record["status"]`` and ``record.get(...)`` still read it as the dict it was before (what ``trial.json``
        holds under that key), for implementations written against that form. An implementation that changes
        the record writes it again itself (:func:`harness.records.write_record`).
    """
