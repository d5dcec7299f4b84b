"""Trial bookkeeping of an Optuna sweep: which trials count, and what Optuna is told about each.

A trial's outcome is read from its record and told to the study (:func:`finish_trial`), the record kept in the
study's storage too (:mod:`harness.sweep.stored`); trials asked after the plan was full, and lost trials that
were retried, do not count toward the planned number (:func:`counted_trials`); trials whose process died are
settled by any live worker (:func:`recover_lost_trials`: at its start, between batches, while it waits for
other workers' trials, and from running trials' heartbeats); a trial whose parameters a completed trial
already had is told that trial's result (:func:`reuse_twin`).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.records import TrialError, TrialRecord
from harness.sweep import study as st

if TYPE_CHECKING:
    import optuna
    from hydra.core.utils import JobReturn


def trial_state(name: str) -> Any:
    """Optuna's ``TrialState`` called ``name`` (imported on use: Optuna is loaded only by sweeps)."""
    from optuna.trial import TrialState

    return TrialState[name]


def unqueued(counted: list[Any]) -> int:
    """Counted trials minus queued ones (enqueued, not yet asked): those still need a worker to ask them."""
    return len([t for t in counted if t.state != trial_state("WAITING")])


def counted_trials(study: optuna.Study, free_repeats: int = 0) -> list[Any]:
    """The trials that count toward the planned number, in order: every trial but lost ones that were retried,
    surplus ones (asked after the plan was full) and the first ``free_repeats`` repeats (trials told a
    completed twin's result, :func:`reuse_twin`: they trained nothing, so the plan is of settings trained;
    past that many, a discrete space the sampler has exhausted ends the study)."""
    counted, repeats = [], 0
    for t in study.get_trials(deepcopy=False):
        if st.ATTR_RETRIED in t.user_attrs or st.ATTR_SURPLUS in t.user_attrs:
            continue
        if st.ATTR_SAME_AS in t.user_attrs and repeats < free_repeats:
            repeats += 1
            continue
        counted.append(t)
    return counted


def steps_spent(trials: list[Any]) -> int:
    """Optimizer steps the finished ``trials`` trained: a completed trial its planned steps
    (``harness.planned_steps``, else its last reported step), a pruned or failed one the last step it
    reported; a trial told a twin's result (``harness.same_as``) none."""
    spent = 0
    for t in trials:
        if not t.state.is_finished() or st.ATTR_SAME_AS in t.user_attrs:
            continue
        planned = t.user_attrs.get(st.ATTR_PLANNED) if t.state == trial_state("COMPLETE") else None
        spent += int(planned or t.last_step or 0)
    return spent


def finish_trial(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    settings: st.StudySettings,
    job_return: JobReturn | None = None,
    record: TrialRecord | None = None,
) -> str:
    """Tell Optuna the outcome of ``trial`` (an Optuna Trial) from its record, and keep the record in the
    study's storage (:func:`harness.sweep.stored.store_record`); returns the record's status.

    Completed: the objective values at the leaderboard's checkpoint (and, with ``kl_constraint``, the KL
    constraint); pruned: PRUNED (Optuna keeps the last reported value); anything else: FAIL with the reason.
    """
    if record is None:
        record = _read(Path(str(trial.user_attrs.get(st.ATTR_DIR, ""))))
    status = str(record.status) if record is not None else "failed"
    error = record.error_message if record is not None else None
    if record is None:
        error = f"no trial record ({_job_error(job_return) or 'the job did not write one'})"
    values = None
    if record is not None and status == "completed":
        values, step = st.objective_values(record.checkpoints, settings, record.metric_declarations)
        trial.set_user_attr(st.ATTR_STEP, step)
        if values is None:
            status, error = (
                "failed",
                f"no value for objective {settings.objectives} in the evaluated checkpoints"
                f"{_withheld_because(record, settings.objectives[0])}",
            )
    elif record is not None and status == "pruned":
        trial.set_user_attr(st.ATTR_STEP, record.error.step if record.error is not None else None)
    elif status != "failed":
        status, error = "failed", f"trial ended with status {status!r}"
    trial.set_user_attr(st.ATTR_STATUS, status)
    if error:
        trial.set_user_attr(st.ATTR_ERROR, str(error)[:500])
    if record is not None:
        keep_record(study, trial.number, record, settings)
    if record is not None and status == "completed":
        if settings.kl_constraint and settings.kl_budget is not None:
            kl = st.min_kl(record.checkpoints)
            trial.set_constraint("kl", (kl if kl is not None else float("inf")) - settings.kl_budget)
        study.tell(trial, values)
    else:
        study.tell(trial, state=trial_state("PRUNED" if status == "pruned" else "FAIL"))
    return status


def keep_record(study: optuna.Study, number: int, record: TrialRecord, settings: st.StudySettings) -> None:
    """Store ``record`` on trial ``number`` in the study's storage (before it is told); a storage error other
    than the trial being finished already is a warning, never the end of the sweep."""
    from harness.sweep.storage import scrub
    from harness.sweep.stored import store_record

    try:
        store_record(study, number, record, settings)
    except RuntimeError:  # the trial is finished already (another worker told it): the tell says so
        raise
    except Exception as exc:
        print(
            f"harness: warning: Optuna trial {number}: its record could not be kept "
            f"in the study's storage ({type(exc).__name__}: "
            f"{scrub(str(exc).splitlines()[0] if str(exc) else '', settings.storage)}"
            "); the leaderboard needs its directory.",
            file=sys.stderr,
            flush=True,
        )


def _read(trial_dir: Path) -> TrialRecord | None:
    """The record in ``trial_dir`` (None: none, or unusable)."""
    from harness.records import RECORD_NAME, read_record

    path = trial_dir / RECORD_NAME
    try:
        return read_record(path) if path.is_file() else None
    except Exception:
        return None


def _job_error(job_return: JobReturn | None) -> str | None:
    if job_return is None:
        return None
    try:
        _ = job_return.return_value  # re-raises the job's exception
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def recover_lost_trials(
    study: optuna.Study, settings: st.StudySettings, stale_after_s: float, max_retries: int
) -> list[int]:
    """Settle RUNNING trials whose process died; returns their numbers.

    A lost trial whose record is complete (the process died after writing it) is told from its record. Any
    other is marked failed, in Optuna and in its record, and, unless it already was a retry ``max_retries``
    deep, is queued again with the same parameters; it then no longer counts toward the plan. When several
    workers find the same lost trial, only the one whose ``tell`` succeeds queues the retry.
    """
    from harness.records import RECORD_NAME, write_record
    from harness.sweep.liveness import lost_reason

    settled = []
    storage = st.open_storage(settings.storage)
    for frozen in study.get_trials(deepcopy=False, states=(trial_state("RUNNING"),)):
        reason = lost_reason(frozen, stale_after_s)
        if reason is None:
            continue
        handle = st.trial_handle(study, storage, frozen.number)
        trial_dir = Path(str(frozen.user_attrs.get(st.ATTR_DIR, "")))
        record = _read(trial_dir)
        depth = int(frozen.user_attrs.get(st.ATTR_RETRY_OF + ".depth", 0))
        retry = depth < max_retries
        try:
            if record is not None and record.status in ("completed", "pruned", "failed"):
                finish_trial(study, handle, settings, record=record)
                print(
                    f"Optuna trial {frozen.number}: its process is gone but its record is complete; told "
                    f"Optuna its result ({record.status}).",
                    flush=True,
                )
                settled.append(frozen.number)
                continue
            record = _mark_lost(study, handle, frozen.number, record, (reason, retry), settings)
            study.tell(frozen.number, state=trial_state("FAIL"))
        except (RuntimeError, ValueError):  # another worker settled it first (UpdateFinishedTrialError, ...)
            continue
        settled.append(frozen.number)
        if record is not None:
            write_record(trial_dir / RECORD_NAME, record)
        if retry:
            study.enqueue_trial(
                frozen.params,
                user_attrs={st.ATTR_RETRY_OF: frozen.number, st.ATTR_RETRY_OF + ".depth": depth + 1},
            )
        print(
            f"Optuna trial {frozen.number} was lost ({reason}); marked failed"
            + ("; queued again with the same parameters." if retry else "; not retried again."),
            flush=True,
        )
    return settled


def _mark_lost(
    study: optuna.Study,
    handle: optuna.trial.Trial,
    number: int,
    record: TrialRecord | None,
    why: tuple[str, bool],
    settings: st.StudySettings,
) -> TrialRecord | None:
    """Mark lost trial ``number`` failed (and retried, when it will be: ``why`` is the reason and whether) on
    its Optuna trial ``handle``; its record (if it wrote one) as failed with a ``ProcessLost`` error, kept in
    the study's storage. Returns that record."""
    reason, retry = why
    handle.set_user_attr(st.ATTR_LOST, reason)
    handle.set_user_attr(st.ATTR_STATUS, "failed")
    handle.set_user_attr(st.ATTR_ERROR, f"process lost: {reason}")
    if retry:
        handle.set_user_attr(st.ATTR_RETRIED, True)
    if record is None:
        return None
    message = f"process lost ({reason})" + ("; retried as a new trial" if retry else "; not retried again")
    lost = dataclasses.replace(record, status="failed", error=TrialError(type="ProcessLost", message=message))
    keep_record(study, number, lost, settings)
    return lost


def reuse_twin(study: optuna.Study, trial: optuna.trial.Trial, settings: st.StudySettings) -> bool:
    """Tell ``trial`` the result of a completed trial with the same parameters instead of training again
    (samplers revisit points of discrete spaces; training is deterministic given its config), read from the
    twin's directory or, when that is on another machine, from the study's storage. Returns whether it did."""
    from harness.records import RECORD_NAME, read_record

    twin = next(
        (
            t
            for t in study.get_trials(deepcopy=False, states=(trial_state("COMPLETE"),))
            if t.params == trial.params and st.ATTR_DIR in t.user_attrs
        ),
        None,
    )
    if twin is None:
        return False
    try:
        record = read_record(Path(str(twin.user_attrs[st.ATTR_DIR])) / RECORD_NAME)
    except Exception:
        from harness.sweep.stored import decode_record

        record = decode_record(twin.system_attrs)  # the twin ran on another machine: its stored record
    if record is None:
        return False
    for key in (st.ATTR_DIR, st.ATTR_METHOD, st.ATTR_OVERRIDES):
        if key in twin.user_attrs:
            trial.set_user_attr(key, twin.user_attrs[key])
    trial.set_user_attr(st.ATTR_SAME_AS, twin.number)
    finish_trial(study, trial, settings, record=record)
    print(
        f"Optuna trial {trial.number}: same parameters as trial {twin.number}; told its result without "
        "training again.",
        flush=True,
    )
    return True


def progress(study: optuna.Study, number: int, settings: st.StudySettings) -> None:
    """Print one line for finished trial ``number``: its status, values,
    the best so far and the count done."""
    trial = study.get_trials(deepcopy=False)[number]  # trial numbers are positions in the study
    done = len([t for t in counted_trials(study, sys.maxsize) if t.state.is_finished()])  # settings trained
    status = trial.user_attrs.get(st.ATTR_STATUS, trial.state.name.lower())
    value = (
        ""
        if trial.values is None
        else " " + ", ".join(f"{o} {v:.4g}" for o, v in zip(settings.objectives, trial.values, strict=True))
    )
    best = ""
    if not settings.multi_objective:
        try:
            b = study.best_trial
            best = f"; best so far: trial {b.number} ({b.value:.4g})"
        except ValueError:
            pass
    print(f"Optuna trial {number}: {status}{value}{best} [{done} done]", flush=True)


def _withheld_because(record: TrialRecord, objective: str) -> str:
    """``": withheld: <reason>"`` when the trial's evaluator withheld ``objective`` (e.g. a judge whose
    verdicts were unusable), else ''."""
    from harness.leaderboard.analysis import columns, problems

    declared = dict(record.metric_declarations or {})
    column = columns.column_of(objective, declared)
    reasons = [
        r["reason"] for r in problems.withheld([record], declared) if column in (r["column"], r["metric"])
    ]
    return f": withheld: {reasons[-1]}" if reasons else ""
