"""The Optuna sweep loop behind ``hydra/sweeper=optuna``: ask, launch through Hydra, tell.

Per batch of ``n_jobs`` trials: ``study.ask()``, sample the search space through the trial's public suggest API
(:mod:`harness.sweep.space`), launch the batch with Hydra's configured launcher (one job directory per trial,
named by the trial number), read each trial's record and ``study.tell`` Optuna its values, or that it was pruned
or failed. The planned number of trials is a property of the study, not of one process: running the same
command again resumes the study, and several processes may work on one study at once.

Before the first trial: the space is checked, every searched method's config (with each end of every
dimension) is composed and validated, and trials whose process died are recovered from their record or marked
failed and retried once (:mod:`harness.sweep.liveness`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError, UserError
from harness.sweep import study as st
from harness.sweep.reporter import ENV_STUDY, ENV_TRIAL, build_pruner
from harness.sweep.space import SearchSpace, build_space, overrides_for

SWEEPER_GROUP = "hydra/sweeper"
# Overrides that do not change what a study searches: rerunning with other values resumes the same study.
_NOT_IN_STUDY_NAME = ("sweep_name", "hydra.sweeper.n_trials", "hydra.sweeper.n_jobs", "hydra/launcher",
                      "hydra.launcher", "hydra.sweeper.storage", "verbose")


def default_sweep_name(overrides: Sequence[str]) -> str:
    """A stable sweep name for an Optuna sweep: ``optuna-<method(s)>-<digest of the overrides>``, so that
    running the same command again finds (and resumes) the same study."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith(_NOT_IN_STUDY_NAME))
    methods = next((o.split("=", 1)[1] for o in overrides if o.startswith("method=")), "dpo")
    label = "".join(c if c.isalnum() or c in "-_" else "-" for c in methods.replace(",", "-"))[:40]
    digest = hashlib.sha256("\n".join(kept).encode()).hexdigest()[:8]
    return f"optuna-{label}-{digest}"


def uses_optuna_sweeper(overrides: Sequence[str]) -> bool:
    """Whether the command line selects a harness Optuna sweeper (``hydra/sweeper=optuna...``)."""
    return any(o.startswith(f"{SWEEPER_GROUP}=optuna") for o in overrides)


class OptunaSweep:
    """The sweeper's state and loop; :class:`hydra_plugins.harness_optuna_sweeper.HarnessOptunaSweeper` wraps it.

    The keyword arguments are the keys of ``conf/hydra/sweeper/optuna.yaml`` (documented there).
    """

    def __init__(self, *, sampler: Any, pruner: Any, study_name: str | None = None, storage: str | None = None,
                 n_trials: int = 20, n_jobs: int = 1, objectives: Sequence[str] = ("auto",),
                 directions: Sequence[str] = ("maximize",), kl_budget: float | None = 10.0,
                 kl_constraint: bool = False, params: Mapping[str, Any] | None = None,
                 method_params: Mapping[str, Any] | None = None, use_suggested: bool = True,
                 heartbeat_s: float = 30.0, stale_after_s: float = 600.0, max_retries: int = 1) -> None:
        self.sampler_cfg = _plain(sampler)
        self.pruner_cfg = _plain(pruner)
        self.study_name, self.storage = study_name, storage
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.objectives, self.directions = list(objectives or []), list(directions or [])
        self.kl_budget, self.kl_constraint = kl_budget, bool(kl_constraint)
        self.params, self.method_params, self.use_suggested = params, method_params, bool(use_suggested)
        self.heartbeat_s, self.stale_after_s, self.max_retries = float(heartbeat_s), float(stale_after_s), int(max_retries)
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: Any = None

    # -- Hydra's Sweeper interface -------------------------------------------------------------------

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        """Keep the config and instantiate the configured launcher (Hydra calls this before ``sweep``)."""
        from hydra.core.plugins import Plugins

        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list[Any]:
        """Run the study to its planned number of trials; returns the Hydra job returns of this process."""
        try:
            return self._sweep(arguments)
        except UserError as exc:
            print(f"harness: error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    # -- the loop --------------------------------------------------------------------------------------

    def _sweep(self, arguments: list[str]) -> list[Any]:
        import warnings

        from optuna.exceptions import ExperimentalWarning

        # TPE's multivariate/group options and metric names are stable in use but flagged experimental.
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        space = self.search_space(arguments)
        settings = self.settings(sweep_dir)
        if settings.multi_objective and self.pruner_cfg and "NopPruner" not in str(self.pruner_cfg.get("_target_")):
            print("harness: note: Optuna does not prune multi-objective studies; the pruner is not used.", flush=True)
        self.validate(space, settings)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = self.open_study(settings, space)
        settings_path = settings.save(sweep_dir)
        self._announce(study, settings, space)
        recover_lost_trials(study, settings, self.stale_after_s, self.max_retries)
        returns: list[Any] = []
        while True:
            batch = self._ask_batch(study, space, sweep_dir, settings)
            if not batch:
                break
            overrides = [[*space.fixed, *job, f"hydra.sweep.subdir={trial.number}",
                          f"++hydra.job.env_set.{ENV_STUDY}={_quote(str(settings_path.resolve()))}",
                          f"++hydra.job.env_set.{ENV_TRIAL}={trial.number}"] for trial, job in batch]
            results = self.launcher.launch(overrides, initial_job_idx=batch[0][0].number)
            for (trial, _), result in zip(batch, results, strict=True):
                finish_trial(study, trial, settings, job_return=result)
                _progress(study, trial.number, settings)
            returns.extend(results)
        return returns

    def search_space(self, arguments: Sequence[str]) -> SearchSpace:
        """The sweep's search space from the command line, this sweeper's config and the method plugins."""
        from harness.plugin.manager import get_plugin_manager
        from harness.sweep.space import method_default_configs

        assert self.config is not None
        pm = get_plugin_manager(list(self.config.get("plugins") or []))
        configs = method_default_configs(pm.methods, pm)
        suggested = {name: dict(spec.search_space) for name, spec in pm.methods.items()}
        return build_space(arguments, self.params, self.method_params, configs, suggested,
                           default_method=str(self.config.method.name), use_suggested=self.use_suggested)

    def settings(self, sweep_dir: Path) -> st.StudySettings:
        """The study's settings (name, storage, objectives, pruner) for ``sweep_dir``."""
        assert self.config is not None
        objectives, directions = st.check_objectives(self.objectives, self.directions)
        objectives[0] = self._resolve_auto(objectives[0])
        budget = self.kl_budget
        if budget is not None and (not isinstance(budget, (int, float)) or budget <= 0):
            raise ConfigError(f"hydra.sweeper.kl_budget={budget!r} is invalid; use a number of nats > 0, or null.")
        if self.kl_constraint and budget is None:
            raise ConfigError("hydra.sweeper.kl_constraint=true needs a KL budget; set hydra.sweeper.kl_budget.")
        if self.n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials={self.n_trials} is invalid; plan at least one trial.")
        storage = self.storage or str((sweep_dir / st.JOURNAL_NAME).resolve())
        pruner = {} if len(objectives) > 1 else (self.pruner_cfg or {})
        return st.StudySettings(study_name=self.study_name or sweep_dir.name, storage=storage, objectives=objectives,
                                directions=directions, kl_budget=budget, kl_constraint=self.kl_constraint,
                                pruner=pruner, heartbeat_s=self.heartbeat_s, sweep_dir=str(sweep_dir.resolve()))

    def _resolve_auto(self, objective: str) -> str:
        """``auto`` as the leaderboard resolves it: the gold reward when the data defines one, else the
        reward-model score (when that evaluator runs); named so that Optuna and its dashboard show it."""
        from harness.plugin.manager import get_plugin_manager

        assert self.config is not None
        if objective != "auto":
            return objective
        pm = get_plugin_manager(list(self.config.get("plugins") or []))
        if pm.hook.harness_gold_reward(cfg=self.config) is not None:
            return "gold_reward"
        if "reward_model" in list(self.config.eval.evaluators):
            return "reward_model_score"
        raise ConfigError("The sweep has nothing to optimise: the data defines no gold reward and eval.evaluators has "
                          "no reward_model; add one, or name a metric: hydra.sweeper.objectives=[win_rate].")

    def validate(self, space: SearchSpace, settings: st.StudySettings) -> None:
        """Compose and validate each searched method's trial config, at each end of every dimension, so that a
        bad range stops the sweep before any compute; pruning needs every checkpoint evaluated."""
        import optuna.distributions as D

        from harness.config.validation import validate_trial_config
        from harness.plugin.manager import get_plugin_manager

        assert self.config is not None and self.hydra_context is not None
        for method in space.methods:
            variants: list[dict[str, Any]] = [{}]
            dims = {**space.shared, **{f"method.{k}": d for k, d in space.per_method.get(method, {}).items()}}
            for key, dist in dims.items():
                ends = dist.choices if isinstance(dist, D.CategoricalDistribution) else (dist.low, dist.high)
                variants += [{key: v} for v in ends]
            for values in variants:
                job = [*space.fixed, *overrides_for({"method": method, **values})]
                try:
                    cfg = self.hydra_context.config_loader.load_sweep_config(self.config, job)
                except Exception as exc:
                    first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                    raise ConfigError(f"Invalid trial config ({' '.join(job)}): {first}") from None
                validate_trial_config(cfg, get_plugin_manager(list(cfg.get("plugins") or [])))
                if settings.pruner and "NopPruner" not in str(settings.pruner.get("_target_")) \
                        and cfg.eval.get("checkpoints") != "all":
                    raise ConfigError(f"Pruning needs every checkpoint evaluated, but eval.checkpoints="
                                      f"{cfg.eval.get('checkpoints')}; set eval.checkpoints=all, or "
                                      "hydra/sweeper/pruner=none.")

    def open_study(self, settings: st.StudySettings, space: SearchSpace) -> Any:
        """Create the study, or load it when it exists (resume); its directions must match."""
        import optuna
        from hydra.utils import instantiate

        storage = st.open_storage(settings.storage)
        sampler_cfg = dict(self.sampler_cfg or {"_target_": "optuna.samplers.TPESampler"})
        if sampler_cfg.get("_target_", "").endswith("GridSampler"):
            sampler_cfg["search_space"] = space.grid()
        if sampler_cfg.get("seed") is not None and settings.study_name in optuna.get_all_study_names(storage):
            # A resumed study with a seeded sampler would replay the first run's random draws (duplicate
            # parameters); offset the seed by the trials already there, keeping a fresh run reproducible.
            done = len(optuna.load_study(study_name=settings.study_name, storage=storage).get_trials(deepcopy=False))
            sampler_cfg["seed"] = int(sampler_cfg["seed"]) + done
        sampler = instantiate(sampler_cfg)
        study = optuna.create_study(study_name=settings.study_name, storage=storage, sampler=sampler,
                                    pruner=build_pruner(settings.pruner), directions=settings.directions,
                                    load_if_exists=True)
        have = [d.name.lower() for d in study.directions]
        if have != settings.directions:
            raise ConfigError(f"Study {settings.study_name!r} in {settings.storage} optimises {have}, not "
                              f"{settings.directions}; use another sweep_name (or hydra.sweeper.study_name).")
        study.set_metric_names(settings.objectives)
        return study

    def _ask_batch(self, study: Any, space: SearchSpace, sweep_dir: Path,
                   settings: st.StudySettings) -> list[tuple[Any, list[str]]]:
        from harness.sweep.liveness import this_process

        batch: list[tuple[Any, list[str]]] = []
        while len(batch) < self.n_jobs and _unqueued(counted_trials(study)) < self.n_trials:
            trial = study.ask()
            counted = [t.number for t in counted_trials(study)]
            if trial.number not in counted[: self.n_trials]:  # another worker took the last planned slot
                trial.set_user_attr(st.ATTR_SURPLUS, True)
                study.tell(trial, state=_state("FAIL"))
                break
            values = space.sample(trial)
            if self._reuse_twin(study, trial, settings):
                continue
            job = overrides_for(values)
            trial.set_user_attr(st.ATTR_OWNER, this_process())
            trial.set_user_attr(st.ATTR_METHOD, values["method"])
            trial.set_user_attr(st.ATTR_DIR, str((sweep_dir / str(trial.number)).resolve()))
            trial.set_user_attr(st.ATTR_OVERRIDES, " ".join([*space.fixed, *job]))
            batch.append((trial, job))
        return batch

    @staticmethod
    def _reuse_twin(study: Any, trial: Any, settings: st.StudySettings) -> bool:
        """Tell ``trial`` the result of a completed trial with the same parameters instead of training again
        (samplers revisit points of discrete spaces; training is deterministic given its config). Returns
        whether it did."""
        from harness.records import RECORD_NAME, read_record

        twin = next((t for t in study.get_trials(deepcopy=False, states=(_state("COMPLETE"),))
                     if t.params == trial.params and st.ATTR_DIR in t.user_attrs), None)
        if twin is None:
            return False
        try:
            record = read_record(Path(str(twin.user_attrs[st.ATTR_DIR])) / RECORD_NAME)
        except Exception:
            return False
        for key in (st.ATTR_DIR, st.ATTR_METHOD, st.ATTR_OVERRIDES):
            if key in twin.user_attrs:
                trial.set_user_attr(key, twin.user_attrs[key])
        trial.set_user_attr(st.ATTR_SAME_AS, twin.number)
        finish_trial(study, trial, settings, record=record)
        print(f"Optuna trial {trial.number}: same parameters as trial {twin.number}; told its result without "
              "training again.", flush=True)
        return True

    def _announce(self, study: Any, settings: st.StudySettings, space: SearchSpace) -> None:
        done = len([t for t in counted_trials(study) if t.state.is_finished()])
        print(f"Optuna study {settings.study_name!r} ({settings.storage}): {done} of {self.n_trials} planned trials "
              f"done; {st.goal_text(settings.objectives, settings.directions)}; sampler "
              f"{type(study.sampler).__name__}, pruner {type(study.pruner).__name__}. Run the same command again "
              "to resume it.", flush=True)
        for line in space.describe():
            print(f"  search {line}", flush=True)


def _plain(node: Any) -> dict[str, Any] | None:
    if node is None:
        return None
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return TrialState[name]


def _unqueued(counted: list[Any]) -> int:
    """Counted trials minus queued ones (enqueued, not yet asked): those still need a worker to ask them."""
    return len([t for t in counted if t.state != _state("WAITING")])


def counted_trials(study: Any) -> list[Any]:
    """The trials that count toward the planned number, in order: every trial but lost ones that were retried
    and surplus ones (asked after the plan was full)."""
    return [t for t in study.get_trials(deepcopy=False)
            if st.ATTR_RETRIED not in t.user_attrs and st.ATTR_SURPLUS not in t.user_attrs]


def finish_trial(study: Any, trial: Any, settings: st.StudySettings, job_return: Any = None,
                 record: Mapping[str, Any] | None = None) -> str:
    """Tell Optuna the outcome of ``trial`` (an Optuna Trial) from its record; returns the record's status.

    Completed: the objective values at the leaderboard's checkpoint (and, with ``kl_constraint``, the KL
    constraint); pruned: PRUNED (Optuna keeps the last reported value); anything else: FAIL with the reason.
    """
    from harness.records import RECORD_NAME, read_record

    if record is None:
        path = Path(str(trial.user_attrs.get(st.ATTR_DIR, ""))) / RECORD_NAME
        try:
            record = read_record(path) if path.is_file() else None
        except Exception:
            record = None
    status = str(record.get("status")) if record else "failed"
    error = (record.get("error") or {}).get("message") if record else None
    if record is None:
        error = f"no trial record ({_job_error(job_return) or 'the job did not write one'})"
    values = None
    if status == "completed":
        values, step = st.objective_values(record.get("checkpoints") or [], settings)  # type: ignore[union-attr]
        trial.set_user_attr(st.ATTR_STEP, step)
        if values is None:
            status, error = "failed", f"no value for objective {settings.objectives} in the evaluated checkpoints"
    elif status == "pruned":
        trial.set_user_attr(st.ATTR_STEP, (record.get("error") or {}).get("step"))  # type: ignore[union-attr]
    elif status != "failed":
        status, error = "failed", f"trial ended with status {status!r}"
    trial.set_user_attr(st.ATTR_STATUS, status)
    if error:
        trial.set_user_attr(st.ATTR_ERROR, str(error)[:500])
    if status == "completed":
        if settings.kl_constraint and settings.kl_budget is not None:
            kl = st.min_kl(record.get("checkpoints") or [])  # type: ignore[union-attr]
            trial.set_constraint("kl", (kl if kl is not None else float("inf")) - settings.kl_budget)
        study.tell(trial, values)
    else:
        study.tell(trial, state=_state("PRUNED" if status == "pruned" else "FAIL"))
    return status


def _job_error(job_return: Any) -> str | None:
    if job_return is None:
        return None
    try:
        _ = job_return.return_value  # re-raises the job's exception
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def recover_lost_trials(study: Any, settings: st.StudySettings, stale_after_s: float, max_retries: int) -> list[int]:
    """Settle RUNNING trials whose process died; returns their numbers.

    A lost trial whose record is complete (the process died after writing it) is told from its record. Any other
    is marked failed, in Optuna and in its record, and, unless it already was a retry ``max_retries`` deep, is
    queued again with the same parameters; it then no longer counts toward the plan. When several workers
    find the same lost trial, only the one whose ``tell`` succeeds queues the retry.
    """
    from harness.records import RECORD_NAME, read_record, write_record
    from harness.sweep.liveness import lost_reason

    settled = []
    storage = st.open_storage(settings.storage)
    for frozen in study.get_trials(deepcopy=False, states=(_state("RUNNING"),)):
        reason = lost_reason(frozen, stale_after_s)
        if reason is None:
            continue
        handle = st.trial_handle(study, storage, frozen.number)
        path = Path(str(frozen.user_attrs.get(st.ATTR_DIR, ""))) / RECORD_NAME
        try:
            record = read_record(path) if path.is_file() else None
        except Exception:
            record = None
        try:
            if record is not None and record.get("status") in ("completed", "pruned", "failed"):
                finish_trial(study, handle, settings, record=record)
                print(f"Optuna trial {frozen.number}: its process is gone but its record is complete; told "
                      f"Optuna its result ({record['status']}).", flush=True)
                settled.append(frozen.number)
                continue
            depth = int(frozen.user_attrs.get(st.ATTR_RETRY_OF + ".depth", 0))
            retry = depth < max_retries
            handle.set_user_attr(st.ATTR_LOST, reason)
            handle.set_user_attr(st.ATTR_STATUS, "failed")
            handle.set_user_attr(st.ATTR_ERROR, f"process lost: {reason}")
            if retry:
                handle.set_user_attr(st.ATTR_RETRIED, True)
            study.tell(frozen.number, state=_state("FAIL"))
        except (RuntimeError, ValueError):  # another worker settled it first (UpdateFinishedTrialError, ...)
            continue
        settled.append(frozen.number)
        if record is not None:
            record = {**record, "status": "failed",
                      "error": {"type": "ProcessLost", "message": f"process lost ({reason})"
                                + ("; retried as a new trial" if retry else "; not retried again")}}
            write_record(path, record)
        if retry:
            study.enqueue_trial(frozen.params, user_attrs={st.ATTR_RETRY_OF: frozen.number,
                                                           st.ATTR_RETRY_OF + ".depth": depth + 1})
        print(f"Optuna trial {frozen.number} was lost ({reason}); marked failed"
              + ("; queued again with the same parameters." if retry else "; not retried again."), flush=True)
    return settled


def _progress(study: Any, number: int, settings: st.StudySettings) -> None:
    trial = study.get_trials(deepcopy=False)[number]  # trial numbers are positions in the study
    done = len([t for t in counted_trials(study) if t.state.is_finished()])
    status = trial.user_attrs.get(st.ATTR_STATUS, trial.state.name.lower())
    value = "" if trial.values is None else " " + ", ".join(f"{o} {v:.4g}" for o, v in zip(settings.objectives, trial.values, strict=True))
    best = ""
    if not settings.multi_objective:
        try:
            b = study.best_trial
            best = f"; best so far: trial {b.number} ({b.value:.4g})"
        except ValueError:
            pass
    print(f"Optuna trial {number}: {status}{value}{best} [{done} done]", flush=True)
