"""``hydra/sweeper=race``: the racing rules (:mod:`harness.race.rules`) driving an Optuna study through Hydra.

The race is an Optuna sweep (:class:`harness.sweep.sweeper.OptunaSweep`: the same study, storage, preflight
checks, launcher, records kept in the study, lost-trial recovery) whose trials are *chosen by the rules*, not
by a sampler: each job (a candidate and a training seed) is queued in the study with its parameters
(``study.enqueue_trial``; the seed is a parameter too, ``race.seed``) and asked back by whichever worker is
free. The race's state is a pure function of the study's finished trials and their records, so running the
same command again resumes it, and several workers on one study (a shared PostgreSQL storage) run its jobs
side by side: each recomputes the same next step, queues what nobody has queued and runs what is queued.

Candidates (:func:`candidates`): each searched method's settings, the grid of a space of ``choice``/``range``
dimensions, else ``settings_per_method`` scrambled Sobol points (Optuna's QMC sampler: space-filling, which
the search benchmark found no worse than TPE at this budget). A trial that fails (after the sweeper's retries)
drops its candidate with the reason. Progress lines say which candidates are alive and why each was dropped;
``race.json`` in the sweep directory keeps the final state.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.settings_race import RACE, race_defaults
from harness.errors import ConfigError, UserError
from harness.records import atomic_write_text, read_record
from harness.sweep import study as st
from harness.sweep.space import METHOD_KEY, SearchSpace, overrides_for
from harness.sweep.sweeper import OptunaSweep
from harness.sweep.trials import recover_lost_trials, steps_spent, trial_state

if TYPE_CHECKING:
    import optuna

    from harness.race.evidence import RaceEvidence
    from harness.race.rules import Step

SEED_PARAM = "race.seed"
RACE_FILE = "race.json"


def candidates(space: SearchSpace, per_method: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Each candidate's name and Optuna parameters (method included when several are searched): per method,
    every point of its grid when each of its dimensions is discrete, else ``per_method`` Sobol points."""
    import optuna
    import optuna.distributions as D

    out: dict[str, dict[str, Any]] = {}
    for method in space.methods:
        dims = {k: d for k, d in space.distributions(method).items() if k != METHOD_KEY}
        discrete = all(isinstance(d, D.CategoricalDistribution) or _stepped(d) for d in dims.values())
        if discrete:
            axes = [[(k, v) for v in _values(d)] for k, d in dims.items()]
            points = [dict(p) for p in itertools.product(*axes)]
        else:
            study = optuna.create_study(
                sampler=optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
            )
            points = []
            for _ in range(per_method):
                trial = study.ask(dims)
                points.append(dict(trial.params))
                study.tell(trial, 0.0)
        for point in points:
            params = ({METHOD_KEY: method} if len(space.methods) > 1 else {}) | point
            label = ", ".join(f"{k.split('.')[-1]}={_show(v)}" for k, v in point.items())
            out[f"{method} {label}".strip()] = params
    return out


def _stepped(dist: Any) -> bool:
    return getattr(dist, "step", None) is not None and not getattr(dist, "log", False)


def _values(dist: Any) -> list[Any]:
    import optuna.distributions as D

    if isinstance(dist, D.CategoricalDistribution):
        return list(dist.choices)
    n = int(round((dist.high - dist.low) / dist.step)) + 1
    return [dist.low + i * dist.step for i in range(n)]


def _show(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class RaceSweep(OptunaSweep):
    """The racing sweeper (see the module docstring); the keyword arguments are the Optuna sweeper's and the
    race's (:mod:`harness.config.settings_race`)."""

    def __init__(self, **settings: Any) -> None:
        own = {k: settings.pop(k) for k in list(settings) if k in race_defaults()}
        super().__init__(**settings)
        self.race = {**race_defaults(), **own}
        self._last_line = ""
        self._records: dict[int, Any] = {}  # finished trials' records by trial number: read once

    def settle(self) -> None:
        """Check the Optuna sweeper's settings and the race's (one line each)."""
        super().settle()
        RACE.check(self.race)
        self.race["seeds"] = [int(s) for s in self.race["seeds"]]

    def rules(self, steps_per_trial: int | None) -> Any:
        """The race's :class:`harness.race.rules.RaceRules`."""
        from harness.race.rules import RaceRules

        r = self.race
        return RaceRules(
            seeds=tuple(r["seeds"]),
            alpha=float(r["alpha"]),
            first_test=int(r["first_test"]),
            keep_per_method=int(r["keep_per_method"]),
            margin_share=float(r["margin"]),
            budget_steps=self.budget_steps,
            steps_per_trial=steps_per_trial,
        )

    def _sweep(self, arguments: list[str]) -> list[Any]:
        space, field, settings, study, sweep_dir = self._open(arguments)
        print(
            f"Race {settings.study_name!r} ({settings.storage}): {len(field)} candidates, seeds "
            f"{self.race['seeds']}, budget {self.budget_steps or 'none'} training steps; run the same "
            "command again to resume it.",
            flush=True,
        )
        for name in field:
            print(f"  candidate {name}", flush=True)
        returns: list[Any] = []
        while True:
            recover_lost_trials(study, settings, self.stale_after_s, self.max_retries)
            step, failed = self._state(study, field, settings)
            self._say(step, failed)
            if step.done:
                self._write(sweep_dir, step, failed)
                break
            batch = self._ask(study, space, field, self._queue(study, field, step.jobs), sweep_dir)
            if not batch:
                if not self._running(study):
                    self._write(sweep_dir, step, failed)
                    break
                time.sleep(max(0.2, min(self.heartbeat_s, 10.0)))
                continue
            returns.extend(self.launch_batch(study, settings, space, batch, self._settings_path))
        return returns

    def _open(
        self, arguments: list[str]
    ) -> tuple[SearchSpace, dict[str, dict[str, Any]], st.StudySettings, Any, Path]:
        """Everything before the first trial, as the Optuna sweeper does it: settings checked, the space built
        and every method's config validated, one objective, the candidates and the budget checked (before the
        sweep directory or the study exists), the directory claimed, the study opened."""
        from omegaconf import OmegaConf

        from harness.sweep.ownership import claim_for_study
        from harness.sweep.storage import check_storage

        assert self.config is not None
        self.settle()
        check_storage(self.storage)
        self._hide_password()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        space = self.search_space(arguments)
        objectives = self.objective_names()
        if len(objectives) > 1:
            raise ConfigError(
                "A race compares candidates on one objective; give one: hydra.sweeper.objectives=[auto]."
            )
        settings = self.settings(sweep_dir, objectives, self.validate(space, objectives))
        field = candidates(space, int(self.race["settings_per_method"]), int(self.race["race_seed"]))
        self._check_budget(field, space)
        rerun = str(self.config.get("rerun") or "missing")
        claim_for_study(sweep_dir, settings.study_name, settings.storage, rerun)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = self.open_study(settings, space)
        self._settings_path = settings.save(sweep_dir)
        return space, field, settings, study, sweep_dir

    # -- the race's state -----------------------------------------------------------------------------

    def _job_of(
        self, params: Mapping[str, Any], field: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, int] | None:
        seed = params.get(SEED_PARAM)
        rest = {k: v for k, v in params.items() if k != SEED_PARAM}
        name = next((n for n, p in field.items() if dict(p) == rest), None)
        return (name, int(seed)) if name is not None and seed is not None else None

    def _state(
        self, study: optuna.Study, field: Mapping[str, Mapping[str, Any]], settings: st.StudySettings
    ) -> tuple[Step, dict[str, str]]:
        """The race's next step from the study's finished trials, and the candidates dropped by a failure."""
        from harness.race.evidence import collect
        from harness.race.rules import next_step

        finished = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished()
            and st.ATTR_RETRIED not in t.user_attrs
            and st.ATTR_SURPLUS not in t.user_attrs
        ]
        records, names, failed = [], {}, {}
        for t in finished:
            job = self._job_of(t.params, field)
            if job is None:
                continue
            if t.number not in self._records:
                self._records[t.number] = _record(t)
            record = self._records[t.number]
            if t.state == trial_state("COMPLETE") and record is not None:
                records.append(record)
                names[str(record.trial_id)] = job[0]
            else:
                failed[job[0]] = (
                    f"trial {t.number} (seed {job[1]}) {t.user_attrs.get(st.ATTR_STATUS, 'failed')}: "
                    + str(t.user_attrs.get(st.ATTR_ERROR, "no record"))
                )
        evidence: RaceEvidence = collect(records, names)
        planned = [int(t.user_attrs[st.ATTR_PLANNED]) for t in finished if st.ATTR_PLANNED in t.user_attrs]
        steps_per_trial = max(planned) if planned else None
        self._check_budget(field, None, steps_per_trial)
        alive = {
            n: str(p.get(METHOD_KEY, next(iter(n.split(" "))))) for n, p in field.items() if n not in failed
        }
        step = next_step(
            alive,
            evidence.by_candidate,
            self.rules(steps_per_trial),
            base=evidence.base,
            direction=evidence.direction,
            spent_steps=steps_spent(finished),
        )
        return step, failed

    def _check_budget(
        self, field: Mapping[str, Any], space: SearchSpace | None, steps_per_trial: int | None = None
    ) -> None:
        """The search round must fit the budget: every candidate's first trial (known before any compute when
        ``method.max_steps`` is fixed on the command line, else as soon as a trial announced its steps)."""
        if self.budget_steps is None:
            return
        if steps_per_trial is None and space is not None:
            fixed = [o.split("=", 1)[1] for o in space.fixed if o.lstrip("+").startswith("method.max_steps=")]
            steps_per_trial = (
                int(fixed[0]) if fixed and fixed[0].lstrip("-").isdigit() and int(fixed[0]) > 0 else None
            )
        if steps_per_trial is None:
            return
        methods = len({str(p.get(METHOD_KEY, "")) for p in field.values()})
        need = len(field) * steps_per_trial
        if self.budget_steps < need:
            raise UserError(
                f"hydra.sweeper.budget_steps={self.budget_steps} cannot pay for the race's search round: "
                f"{len(field)} candidates ({methods} method{'s' if methods != 1 else ''}) x "
                f"{steps_per_trial} steps = {need}; give hydra.sweeper.budget_steps>={need} (a race needs a "
                f"few rounds more: e.g. {2 * need}), or fewer settings (hydra.sweeper.settings_per_method)."
            )

    # -- queueing and asking --------------------------------------------------------------------------

    def _queue(
        self, study: optuna.Study, field: Mapping[str, Mapping[str, Any]], jobs: Sequence[tuple[str, int]]
    ) -> list[tuple[str, int]]:
        """Queue the step's jobs that no trial holds yet (waiting, running or finished); returns the jobs
        waiting in the queue."""
        held: dict[tuple[str, int], Any] = {}
        for t in study.get_trials(deepcopy=False):
            if st.ATTR_RETRIED in t.user_attrs or st.ATTR_SURPLUS in t.user_attrs:
                continue
            job = self._job_of(t.params or t.system_attrs.get("fixed_params", {}), field)
            if job is not None:
                held[job] = t.state
        for name, seed in jobs:
            if (name, seed) not in held:
                study.enqueue_trial({**field[name], SEED_PARAM: seed})
                held[(name, seed)] = trial_state("WAITING")
        return [j for j in jobs if held.get(j) == trial_state("WAITING")]

    def _ask(
        self,
        study: optuna.Study,
        space: SearchSpace,
        field: Mapping[str, Mapping[str, Any]],
        waiting: Sequence[tuple[str, int]],
        sweep_dir: Path,
    ) -> list[tuple[Any, list[str]]]:
        """Ask up to ``n_jobs`` queued trials back; each gets its overrides (its seed included)."""
        from harness.sweep.liveness import this_process

        batch: list[tuple[Any, list[str]]] = []
        for _ in range(min(self.n_jobs, len(waiting))):
            trial = study.ask()
            values = space.sample(trial)
            seed = trial.suggest_int(SEED_PARAM, 0, 2**31 - 1)
            if self._job_of(trial.params, field) is None:  # another worker took the last queued job
                trial.set_user_attr(st.ATTR_SURPLUS, True)
                study.tell(trial, state=trial_state("FAIL"))
                break
            job = [*overrides_for(values), f"seed={seed}"]
            trial.set_user_attr(st.ATTR_OWNER, this_process())
            trial.set_user_attr(st.ATTR_METHOD, values[METHOD_KEY])
            trial.set_user_attr(st.ATTR_DIR, str((sweep_dir / str(trial.number)).resolve()))
            trial.set_user_attr(st.ATTR_OVERRIDES, " ".join([*space.fixed, *job]))
            batch.append((trial, job))
        return batch

    def _running(self, study: optuna.Study) -> bool:
        return bool(study.get_trials(deepcopy=False, states=(trial_state("RUNNING"), trial_state("WAITING"))))

    # -- progress -------------------------------------------------------------------------------------

    def _say(self, step: Step, failed: Mapping[str, str]) -> None:
        """One progress line per change: the candidates alive (the leader first) and each one dropped, why."""
        alive = ", ".join(step.alive)
        line = f"Race: alive {len(step.alive)}: {alive}" + (f"; leader {step.leader}" if step.leader else "")
        if step.done:
            line += f"; stopped: {step.why}"
        if line == self._last_line:
            return
        self._last_line = line
        print(line, flush=True)
        for name, why in {**step.dropped, **failed}.items():
            print(f"  dropped {name}: {why}", flush=True)

    def _write(self, sweep_dir: Path, step: Step, failed: Mapping[str, str]) -> None:
        """``race.json``: the final candidates alive, dropped (why), the leader and why the race stopped."""
        data = {
            "stopped": step.why or "nothing left to run",
            "leader": step.leader,
            "alive": step.alive,
            "dropped": {**step.dropped, **failed},
            "seeds": self.race["seeds"],
            "budget_steps": self.budget_steps,
        }
        atomic_write_text(sweep_dir / RACE_FILE, json.dumps(data, indent=2) + "\n")


def _record(trial: Any) -> Any:
    """A finished trial's record: from its directory, else from the study's storage."""
    try:
        return read_record(Path(str(trial.user_attrs.get(st.ATTR_DIR, ""))) / "trial.json")
    except Exception:
        from harness.sweep.stored import decode_record

        return decode_record(trial.system_attrs)


__all__ = ["RaceSweep", "candidates"]
