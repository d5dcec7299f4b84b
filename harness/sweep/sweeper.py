"""The Optuna sweep loop behind ``hydra/sweeper=optuna``: ask, launch through Hydra, tell.

Per batch of ``n_jobs`` trials: ``study.ask()``, sample the search space through the trial's public suggest
API (:mod:`harness.sweep.space`), launch the batch with Hydra's configured launcher (one job directory per
trial, named by the trial number), read each trial's record and ``study.tell`` Optuna its values, or that it
was pruned or failed (:mod:`harness.sweep.trials`). The planned number of trials is a property of the study,
not of one process: running the same command again resumes the study, and several processes may work on one
study at once.

Before the first trial: the space is checked, every searched method's config (with each end of every
dimension) is composed and validated and the objectives are resolved among the metrics its evaluators declare
(:mod:`harness.sweep.preflight`). Trials whose process died are recovered from their record or marked failed
and retried once (:mod:`harness.sweep.liveness`), at the start, between batches, and while a worker whose plan
is not yet complete waits for other workers' running trials (it runs the retries instead of exiting with the
plan short). A storage URL's password is hidden in everything written (``multirun.yaml``, ``study.json``,
Hydra's ``.hydra/`` files of each trial) and reaches the trials through the process environment
(:mod:`harness.sweep.storage`). Sweep names live in :mod:`harness.sweep.naming`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from harness.config.settings_sweeper import SWEEPER, sweeper_defaults
from harness.errors import ConfigError, UnknownNameError, UserError
from harness.records.redaction import redact as redact_secrets
from harness.sweep import opening
from harness.sweep import study as st
from harness.sweep.ownership import claim_for_study
from harness.sweep.reporter import ENV_STUDY, ENV_TRIAL
from harness.sweep.space import SearchSpace, build_space, overrides_for
from harness.sweep.storage import check_storage, redact
from harness.sweep.trials import (
    counted_trials,
    finish_trial,
    progress,
    recover_lost_trials,
    reuse_twin,
    steps_spent,
    trial_state,
    unqueued,
)

if TYPE_CHECKING:
    import optuna
    from hydra.types import HydraContext, TaskFunction


class OptunaSweep:
    """The sweeper's state and loop;
    :class:`hydra_plugins.harness_optuna_sweeper.HarnessOptunaSweeper` wraps it.

    The keyword arguments are the keys of ``hydra.sweeper``, declared (default, type, check, meaning) in
    :mod:`harness.config.settings_sweeper`; a key not given takes its declared default. Hydra passes them as
    composed; they are checked against their declarations when the sweep starts (:meth:`settle`), where an
    error is one line rather than Hydra's report of a failed instantiation.
    """

    def __init__(
        self,
        *,
        sampler: DictConfig | Mapping[str, Any] | None,
        pruner: DictConfig | Mapping[str, Any] | None,
        **settings: Any,
    ) -> None:
        self.sampler_cfg = _plain(sampler)
        self.pruner_cfg = _plain(pruner)
        given = {**sweeper_defaults(), **settings}
        self._unknown = sorted(set(given) - set(sweeper_defaults()))
        self.study_name, self.storage = given["study_name"], given["storage"]
        self.n_trials, self.n_jobs = given["n_trials"], given["n_jobs"]
        self.objectives, self.directions = given["objectives"], given["directions"]
        self.kl_budget, self.kl_constraint = given["kl_budget"], given["kl_constraint"]
        self.params, self.method_params = given["params"], given["method_params"]
        self.use_suggested = given["use_suggested"]
        self.heartbeat_s, self.stale_after_s = given["heartbeat_s"], given["stale_after_s"]
        self.max_retries, self.budget_steps = given["max_retries"], given["budget_steps"]
        self.prune_warmup, self.prune_by_method = given["prune_warmup"], given["prune_by_method"]
        self.prune_value = given["prune_value"]
        self._said_spent = False
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: Any = None

    def settle(self) -> None:
        """Check every setting against its declaration (one line naming the key, the value and the fix), then
        give each its type (``n_jobs`` below 1 is one, seconds are floats, ...).

        :raises ConfigError: an invalid value, or a key that is not a setting."""
        if self._unknown:
            raise UnknownNameError(
                "option",
                f"hydra.sweeper.{self._unknown[0]}",
                [SWEEPER.full_key(k) for k in sweeper_defaults()],
            )
        SWEEPER.check({name: getattr(self, name) for name in sweeper_defaults()})
        self.n_trials, self.n_jobs = int(self.n_trials), max(1, int(self.n_jobs))
        self.objectives, self.directions = list(self.objectives or []), list(self.directions or [])
        self.kl_constraint, self.use_suggested = bool(self.kl_constraint), bool(self.use_suggested)
        self.heartbeat_s, self.stale_after_s = float(self.heartbeat_s), float(self.stale_after_s)
        self.max_retries = int(self.max_retries)
        self.prune_warmup, self.prune_by_method = float(self.prune_warmup), bool(self.prune_by_method)
        self.prune_value = str(self.prune_value)
        self.budget_steps = None if self.budget_steps is None else int(self.budget_steps)

    # -- Hydra's Sweeper interface -------------------------------------------------------------------

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep the config and instantiate the configured launcher (Hydra calls this before ``sweep``)."""
        from hydra.core.plugins import Plugins

        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        """Run the study to its planned number of trials; returns the Hydra job returns of this process."""
        try:
            return self._sweep(arguments)
        except UserError as exc:
            print(f"harness: error: {redact_secrets(str(exc))}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    # -- the loop --------------------------------------------------------------------------------------

    def _sweep(self, arguments: list[str]) -> list[Any]:
        import warnings

        from optuna.exceptions import ExperimentalWarning

        # TPE's multivariate/group options and metric names are stable in use but flagged experimental.
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        assert self.config is not None
        self.settle()
        check_storage(self.storage)  # a missing database driver stops the sweep before any compute
        self._hide_password()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        space = self.search_space(arguments)
        objectives = self.objective_names()
        if len(objectives) > 1 and _prunes(self.pruner_cfg):
            print(
                "harness: note: Optuna does not prune multi-objective studies; the pruner is not used.",
                flush=True,
            )
        declared = self.validate(space, objectives)
        settings = self.settings(sweep_dir, objectives, declared)
        rerun = str(self.config.get("rerun") or "missing")
        claim_for_study(sweep_dir, settings.study_name, settings.storage, rerun)  # one sweep per directory
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = self.open_study(settings, space)
        settings_path = settings.save(sweep_dir)
        self._announce(study, settings, space)
        returns: list[Any] = []
        while True:
            recover_lost_trials(study, settings, self.stale_after_s, self.max_retries)
            batch = self._ask_batch(study, space, sweep_dir, settings)
            if not batch:
                if self._wait_for_others(study, settings):
                    continue  # a lost trial was queued again: run it here
                break
            returns.extend(self.launch_batch(study, settings, space, batch, settings_path))
        return returns

    def launch_batch(
        self,
        study: optuna.Study,
        settings: st.StudySettings,
        space: SearchSpace,
        batch: Sequence[tuple[Any, list[str]]],
        settings_path: Path,
    ) -> list[Any]:
        """Launch asked trials with Hydra's launcher (a job directory per trial number, each told where the
        study's settings are) and tell the study each one's outcome; returns Hydra's job returns."""
        study_file = opening.quote_override(str(settings_path.resolve()))
        overrides = [
            [
                *space.fixed,
                *job,
                f"hydra.sweep.subdir={trial.number}",
                f"++hydra.job.env_set.{ENV_STUDY}={study_file}",
                f"++hydra.job.env_set.{ENV_TRIAL}={trial.number}",
            ]
            for trial, job in batch
        ]
        results = self.launcher.launch(overrides, initial_job_idx=batch[0][0].number)
        for (trial, _), result in zip(batch, results, strict=True):
            finish_trial(study, trial, settings, job_return=result)
            progress(study, trial.number, settings)
        return list(results)

    def search_space(self, arguments: Sequence[str]) -> SearchSpace:
        """The sweep's search space from the command line, this sweeper's config and the method plugins."""
        from harness.plugin.manager import get_plugin_manager
        from harness.sweep.space import method_default_configs

        assert self.config is not None
        pm = get_plugin_manager(list(self.config.get("plugins") or []))
        configs = method_default_configs(pm.methods, pm)
        profile = self.config.model.get("profile")  # the toy world's learning rates differ from real models'
        suggested = {name: spec.suggested_space(profile) for name, spec in pm.methods.items()}
        return build_space(
            arguments,
            self.params,
            self.method_params,
            configs,
            suggested,
            default_method=str(self.config.method.name),
            use_suggested=self.use_suggested,
        )

    def objective_names(self) -> list[str]:
        """The study's objectives, ``auto`` resolved, checked with the settings that go with them before any
        trial config is composed (explicit directions' spelling and count, a KL budget for the KL
        constraint)."""
        objectives = [str(o) for o in self.objectives] or ["auto"]
        if "auto" in objectives[1:]:
            raise ConfigError("objective 'auto' may only be the first objective; name the others (e.g. kl).")
        if self.directions:
            st.check_objectives(objectives, self.directions)
        objectives[0] = self._resolve_auto(objectives[0])
        if self.kl_constraint and self.kl_budget is None:
            raise ConfigError(
                "hydra.sweeper.kl_constraint=true needs a KL budget; set hydra.sweeper.kl_budget."
            )
        return objectives

    def settings(
        self, sweep_dir: Path, objectives: Sequence[str], declared: Sequence[str]
    ) -> st.StudySettings:
        """The study's settings (name, storage, objectives, pruner) for ``sweep_dir``; the directions are the
        configured ones, else the objectives' ``declared`` directions."""
        objectives, directions = st.check_objectives(objectives, self.directions, declared)
        storage = redact(self.storage) if self.storage else str((sweep_dir / st.JOURNAL_NAME).resolve())
        pruner = {} if len(objectives) > 1 else (self.pruner_cfg or {})
        return st.StudySettings(
            study_name=self.study_name or sweep_dir.name,
            storage=storage,
            objectives=objectives,
            directions=directions,
            kl_budget=self.kl_budget,
            kl_constraint=self.kl_constraint,
            pruner=pruner,
            prune_warmup=self.prune_warmup,
            prune_by_method=self.prune_by_method,
            prune_value=self.prune_value,
            heartbeat_s=self.heartbeat_s,
            stale_after_s=self.stale_after_s,
            max_retries=self.max_retries,
            sweep_dir=str(sweep_dir.resolve()),
            auto_objective=str((self.objectives or ["auto"])[0]) == "auto",
        )

    def _resolve_auto(self, objective: str) -> str:
        """``auto`` as the leaderboard resolves it (:func:`harness.config.metrics.auto_objective`: the gold
        reward when the data defines one, else a reward model's score, a judge's win rate, preference
        accuracy), named so that Optuna and its dashboard show it."""
        from harness.config.metrics import auto_objective
        from harness.config.validation import evaluator_names
        from harness.plugin.manager import get_plugin_manager

        assert self.config is not None
        if objective != "auto":
            return objective
        pm = get_plugin_manager(list(self.config.get("plugins") or []))
        evaluators = [pm.evaluator(name) for name in evaluator_names(self.config)]
        metric = auto_objective(evaluators, self.config)
        if metric is None:
            raise ConfigError(
                "The sweep has nothing to optimise: no evaluator of eval.evaluators and eval.extra "
                "yields a metric that ranks trials under this config (no gold reward, no reward model, "
                "...); set eval.reward_model.name_or_path=<dir>, add eval.extra=[judge], or name a "
                "metric: hydra.sweeper.objectives=[<metric>]."
            )
        return metric.name

    def validate(self, space: SearchSpace, objectives: Sequence[str]) -> list[str]:
        """Compose and validate each searched method's trial config, at each end of every dimension, and
        resolve the objectives among its evaluators' metrics, so that a bad range or name stops the sweep
        before any compute (:mod:`harness.sweep.preflight`); returns the objectives' declared directions."""
        from harness.sweep.preflight import check_trials

        assert self.config is not None and self.hydra_context is not None
        return check_trials(
            space,
            objectives,
            config=self.config,
            hydra_context=self.hydra_context,
            pruning=len(objectives) == 1 and _prunes(self.pruner_cfg),
            auto_first=str((self.objectives or ["auto"])[0]) == "auto",
        )

    def open_study(self, settings: st.StudySettings, space: SearchSpace) -> Any:
        """Create the study, or load it to resume it (:func:`harness.sweep.opening.open_study`)."""
        return opening.open_study(settings, space, self.sampler_cfg)

    def _hide_password(self) -> None:
        """Hide a storage URL's password in the config Hydra writes
        (:func:`harness.sweep.opening.hide_password`)."""
        assert self.config is not None
        opening.hide_password(self.config, self.storage)

    def _wait_for_others(self, study: optuna.Study, settings: st.StudySettings) -> bool:
        """With nothing left to ask but the plan not complete: wait while other workers' trials run, settling
        those that are lost; returns True when a slot opened (a lost trial was queued again), False when the
        study is done (its plan complete, its budget spent, or nothing left running)."""
        poll = max(0.2, min(self.heartbeat_s, 10.0))
        said = False
        while not self._spent(study):
            counted = counted_trials(study, self.n_trials)
            if unqueued(counted) < self.n_trials:
                return True
            running = [t for t in counted[: self.n_trials] if t.state == trial_state("RUNNING")]
            if not running:
                return False
            if not said:
                said = True
                print(
                    f"Optuna study {settings.study_name!r}: waiting for {len(running)} trial(s) "
                    f"running in other workers ({', '.join(str(t.number) for t in running)}); a "
                    "lost one is retried here.",
                    flush=True,
                )
            time.sleep(poll)
            recover_lost_trials(study, settings, self.stale_after_s, self.max_retries)
        return False

    def _ask_batch(
        self, study: optuna.Study, space: SearchSpace, sweep_dir: Path, settings: st.StudySettings
    ) -> list[tuple[Any, list[str]]]:
        from harness.sweep.liveness import this_process

        batch: list[tuple[Any, list[str]]] = []
        while (
            len(batch) < self.n_jobs
            and unqueued(counted_trials(study, self.n_trials)) < self.n_trials
            and not self._spent(study)
        ):
            trial = study.ask()
            counted = [t.number for t in counted_trials(study, self.n_trials)]
            if trial.number not in counted[: self.n_trials]:  # another worker took the last planned slot
                trial.set_user_attr(st.ATTR_SURPLUS, True)
                study.tell(trial, state=trial_state("FAIL"))
                break
            values = space.sample(trial)
            if reuse_twin(study, trial, settings):
                continue
            job = overrides_for(values)
            trial.set_user_attr(st.ATTR_OWNER, this_process())
            trial.set_user_attr(st.ATTR_METHOD, values["method"])
            trial.set_user_attr(st.ATTR_DIR, str((sweep_dir / str(trial.number)).resolve()))
            trial.set_user_attr(st.ATTR_OVERRIDES, " ".join([*space.fixed, *job]))
            batch.append((trial, job))
        return batch

    def _spent(self, study: optuna.Study) -> bool:
        """Whether the training-step budget (``budget_steps``) is spent by the finished trials (said once)."""
        if self.budget_steps is None:
            return False
        spent = steps_spent(counted_trials(study, self.n_trials))
        if spent >= self.budget_steps and not self._said_spent:
            self._said_spent = True
            print(
                f"Optuna study: the budget of {self.budget_steps} training steps is spent "
                f"({spent} steps); no further trials are started.",
                flush=True,
            )
        return spent >= self.budget_steps

    def _announce(self, study: optuna.Study, settings: st.StudySettings, space: SearchSpace) -> None:
        done = len([t for t in counted_trials(study, self.n_trials) if t.state.is_finished()])
        print(
            f"Optuna study {settings.study_name!r} ({settings.storage}): {done} of {self.n_trials} "
            f"planned trials done; {st.goal_text(settings.objectives, settings.directions)}; "
            f"sampler {type(study.sampler).__name__}, pruner {type(study.pruner).__name__}. Run "
            "the same command again to resume it.",
            flush=True,
        )
        for line in space.describe():
            print(f"  search {line}", flush=True)


def _plain(node: DictConfig | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if node is None:
        return None
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def _prunes(pruner: Mapping[str, Any] | None) -> bool:
    """Whether the pruner config configures one that may prune (not none)."""
    return bool(pruner) and "NopPruner" not in str(pruner.get("_target_"))  # type: ignore[union-attr]
