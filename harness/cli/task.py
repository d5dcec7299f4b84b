"""The Hydra task: one trial in its job's directory, resumable, locked, interruptible.

In a multirun, a job whose directory already holds a completed record of the same config is skipped (see
:mod:`harness.sweep.resume`); otherwise the trial runs under its directory's lock, with SIGINT/SIGTERM turned
into :class:`~harness.errors.TrialInterrupted`. An interrupted trial is recorded as such by the runner; here
the leaderboard of what is complete is written, one line is printed and the process exits with 130 (SIGINT) or
143 (SIGTERM). A trial that failed on a full disk stops the sweep the same way (exit 1): the next trials would
fail too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.errors import TrialInterrupted, UserError
from harness.records.redaction import redact


def _hydra_context() -> tuple[bool, Path, dict[str, Any] | None, list[str], DictConfig]:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    output_dir = Path(hc.runtime.output_dir)
    # The job's directory names it (the job number, or an Optuna sweep's trial number).
    sweep = (
        {"name": Path(hc.sweep.dir).name, "dir": str(hc.sweep.dir), "job": output_dir.name}
        if multirun
        else None
    )
    if sweep is not None:
        trials = concurrent_trials(hc.launcher)
        if trials > 1:  # the trials share the machine: the runner splits its cores (and GPUs) between them
            sweep["parallel"] = {"trials": trials, "slot": int(hc.job.num) % trials}
    # sweep_name only places the trial; it is not part of how to reproduce it.
    overrides = [o for o in hc.overrides.task if not o.startswith("sweep_name=")]
    return multirun, output_dir, sweep, overrides, hc


#: Set by the command line before Hydra launches: how many jobs the sweep has
#: (a launcher never runs more at once).
SWEEP_JOBS_ENV = "HARNESS_SWEEP_JOBS"


def concurrent_trials(launcher: DictConfig | Mapping[str, Any] | None) -> int:
    """How many trials the launcher runs at once on this machine: a pool launcher's ``n_jobs`` (joblib's -1:
    one per core), at most the sweep's jobs (``$HARNESS_SWEEP_JOBS``); 1 for launchers that run one trial per
    machine or one after another (basic, submitit, ray)."""
    from harness.config.resources import cpu_cores

    n_jobs = (
        (launcher or {}).get("n_jobs")
        if "joblib" in str((launcher or {}).get("_target_", "")).lower()
        else None
    )
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    trials = cpu_cores() if n_jobs < 0 else n_jobs
    jobs = os.environ.get(SWEEP_JOBS_ENV, "")
    return max(1, min(trials, int(jobs)) if jobs.isdigit() else trials)


def _write_partial_leaderboard(cfg: DictConfig, sweep: dict[str, Any]) -> Path | None:
    """The leaderboard of the trials recorded so far in this sweep (None if it could not be written)."""
    from harness.cli.callbacks import write_sweep_leaderboard

    try:
        return write_sweep_leaderboard(cfg, Path(sweep["dir"]), echo=False)
    except Exception as exc:  # the interruption is what the user must hear about
        print(
            f"harness: warning: the leaderboard could not be written ({type(exc).__name__}: {exc})",
            file=sys.stderr,
            flush=True,
        )
        return None


def _stop(cfg: DictConfig, sweep: dict[str, Any] | None, record_path: Path, what: str, code: int) -> None:
    board = _write_partial_leaderboard(cfg, sweep) if sweep else None
    report = f"; leaderboard of the completed trials: {board}" if board else ""
    resume = "; run the same command again to resume" if sweep else ""
    print(redact(f"harness: {what} (record: {record_path}){report}{resume}"), file=sys.stderr, flush=True)
    raise SystemExit(code)


def run_task(cfg: DictConfig) -> Any:
    """Run the job's trial (or skip it, when resuming); returns its objective value."""
    from harness.cli.summary import trial_summary
    from harness.config import distributed
    from harness.records import RECORD_NAME, TrialError
    from harness.sweep import resume
    from harness.sweep.ownership import clean_trial_dir
    from harness.trial import run_trial
    from harness.trial.lifecycle import interrupts_raise
    from harness.verbosity import route_console

    route_console(bool(cfg.get("verbose", False)))  # Hydra has just set up this job's console and log file
    multirun, output_dir, sweep, overrides, _ = _hydra_context()
    record_path = output_dir / RECORD_NAME
    config = OmegaConf.to_container(cfg, resolve=True)
    if multirun and cfg.get("rerun", "missing") != "all":
        done = resume.completed_record(output_dir)
        if done is not None and resume.config_hash(done.config or {}) == resume.config_hash(config):
            print(f"[harness] {output_dir}: completed earlier, skipped (--force runs it again)", flush=True)
            return done.extra.get("objective")  # the job's return value: an "objective" a record holds
    attempts = resume.earlier_attempts(output_dir) if multirun else []
    main = distributed.is_main()  # a multi-process trial: one lock, one summary, for its main process
    try:
        with resume.trial_lock(output_dir) if main else contextlib.nullcontext(), interrupts_raise():
            if multirun and main:  # a re-run never writes beside what an earlier run of the job left
                clean_trial_dir(output_dir)
            record = run_trial(cfg, output_dir, overrides=overrides, sweep=sweep, attempts=attempts)
    except TrialInterrupted as exc:
        _stop(
            cfg,
            sweep,
            record_path,
            f"interrupted by {exc.signal_name}; the trial is recorded as interrupted",
            exc.exit_code,
        )
    except UserError as exc:  # a locked trial directory
        print(f"harness: error: {redact(str(exc))}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    error = record.error or TrialError()
    if not multirun and record.status == "failed" and error.user_error:
        # an input problem found when the trial read its data or model, before any training: one line, as at
        # validation (the record keeps the details)
        print(f"harness: error: {redact(error.message)}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    if not main:
        return None
    print(trial_summary(record), flush=True)
    if error.disk_full:
        _stop(cfg, sweep, record_path, f"stopped: {error.message}", 1)
    if not multirun and record.status == "failed":
        raise SystemExit(1)
    return record.extra.get("objective")
