"""Experiment trackers: each trial is one run in TensorBoard, Weights & Biases, MLflow or trackio.

``tracking.report_to=[tensorboard,mlflow]`` makes the trainer report its training logs there (TRL's
``train/loss``, ``train/rewards/...``), and this plugin logs to the same run:

* when the trial starts, its hyperparameters (``harness.<key>``, the keys of its record and the leaderboard)
  as the run's params / config;
* every evaluation at its optimizer step: the reference model at step 0, then each checkpoint, on the reported
  prompts as ``harness_test/<metric>`` and on the selection prompts as ``harness_selection/<metric>``;
* when it ends, its outcome (``harness_summary/...``: status, steps, the final checkpoint, timings).

How the plugin reaches the trainer's run: it opens the run when the trial starts, before the trainer exists,
and the transformers integrations log into it. W&B's and MLflow's callbacks take the active run (and leave it
open after training, for the final checkpoint's evaluation and the summary); trackio's resumes it by project
and name (``resume="allow"``; the plugin resumes it again after training); TensorBoard's writes to the same
directory (``TENSORBOARD_LOGGING_DIR``, or ``logging_dir`` with transformers 4). Name, directory and project
are the trial's :class:`harness.plugin.TrackingRun`, which the trainer gets too. The open runs belong to the
trial's observer (:class:`TrialRuns`, a :class:`harness.plugin.TrialObserver` returned by
``harness_trial_observer``), so nothing is kept in the module between trials. In a multi-process trial only
the main process calls the hooks and observers, as only the trainer's main process reports.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.plugin import (
    ConfigError,
    TrackingRun,
    TrialObserver,
    TrialRecord,
    UnknownNameError,
    hookimpl,
    redact,
    tracking_report_to,
)

if TYPE_CHECKING:
    from pathlib import Path

    from omegaconf import DictConfig

# tracker -> (modules, any one of which it needs; the pip install that brings one)
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install tensorboard"),
    "wandb": (("wandb",), "pip install wandb"),
    "mlflow": (("mlflow",), "pip install mlflow-skinny"),
    "trackio": (("trackio",), "pip install trackio"),
}
STEP_KEY = "train/global_step"  # the x-axis transformers' W&B and trackio callbacks log against


def trackers(cfg: DictConfig) -> list[str]:
    """The trackers ``tracking.report_to`` names (none when the config has no ``tracking`` node)."""
    tracking = cfg.get("tracking") if hasattr(cfg, "get") else None
    return tracking_report_to(tracking.get("report_to") if tracking else None)


def check_trackers(names: list[str]) -> None:
    """Raise a one-line ConfigError for an unknown tracker, one whose package is not installed, or MLflow
    while ``MLFLOW_RUN_ID`` names one run for every trial."""
    for name in names:
        if name not in TRACKERS:
            raise UnknownNameError(
                "tracker in tracking.report_to",
                name,
                TRACKERS,
                "(none: no tracker; docs/how-to/scaling-out.md, Experiment trackers)",
            )
        modules, install = TRACKERS[name]
        if not any(importlib.util.find_spec(module) for module in modules):
            raise ConfigError(
                f"tracking.report_to names {name}, which is not installed; {install} (or pip install "
                f"'harness[trackers]'), or remove {name} from tracking.report_to."
            )
        if name == "mlflow" and os.environ.get("MLFLOW_RUN_ID"):
            raise ConfigError(
                "MLFLOW_RUN_ID is set, so every trial would log into that one run; unset it (each trial "
                "is a run of its own in the experiment tracking.project)."
            )


def _key(text: str) -> str:
    """A metric or param name every tracker accepts (MLflow's characters)."""
    return re.sub(r"[^0-9A-Za-z_\-. :/]", "_", text)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def evaluation_values(
    metrics: Mapping[str, Any] | None, selection: Mapping[str, Any] | None
) -> dict[str, float]:
    """One evaluation's finite numbers as ``harness_test/<metric>`` and ``harness_selection/<metric>``."""
    values = {}
    for prefix, source in (("harness_test", metrics), ("harness_selection", selection)):
        values.update({_key(f"{prefix}/{k}"): float(v) for k, v in (source or {}).items() if _number(v)})
    return values


def params(cfg: DictConfig, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The run's params: ``harness.method`` and ``harness.<hyperparameter>``; numbers, strings and booleans as
    they are, anything else (a list of LoRA target modules) as text."""
    values = {"method": str(cfg.method.name), **hyperparameters}
    return {
        _key(f"harness.{k}"): v if isinstance(v, (int, float, str, bool)) else str(v)
        for k, v in values.items()
    }


def summary(record: TrialRecord) -> tuple[dict[str, float], dict[str, str], int]:
    """A trial's headline figures from its record: numbers (``harness_summary/steps``, ``final_step``, each
    timing in seconds), texts (``status``, ``error``) and the step they are logged at (the last one trained).
    Which checkpoint a trial is judged by is the leaderboard's to say (its rule weighs every trial's KL and
    the selection prompts); the run holds every checkpoint's values for it."""
    final = next((c for c in record.checkpoints if c.final), None)
    steps = record.train.steps if record.train is not None else None
    numbers: dict[str, Any] = {"steps": steps, "final_step": final and final.step, **(record.timings or {})}
    texts = {"status": record.status, "error": redact(record.error_message or "") or None}
    step = int(steps) if _number(steps) else int(final.step) if final else 0
    return (
        {_key(f"harness_summary/{k}"): float(v) for k, v in numbers.items() if _number(v)},
        {_key(f"harness_summary/{k}"): str(v) for k, v in texts.items() if v is not None},
        step,
    )


def _set_env(name: str, value: str) -> str | None:
    """Set an environment variable for the trial; returns its previous value (for :func:`_restore_env`)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    return previous


def _restore_env(name: str, previous: str | None) -> None:
    if previous is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = previous


class Tracker:
    """One trial's open run in one tracker."""

    def log(self, values: dict[str, float], step: int) -> None:
        """Log numbers at an optimizer step."""
        raise NotImplementedError

    def finish(self, numbers: dict[str, float], texts: dict[str, str], step: int, status: str) -> None:
        """Log the trial's summary (numbers and texts, at ``step``) and close the run;
        ``status``: the record's."""
        raise NotImplementedError


class TensorBoard(Tracker):
    """Event files in the run's directory, beside the trainer's (``TENSORBOARD_LOGGING_DIR`` names it)."""

    ENV = "TENSORBOARD_LOGGING_DIR"

    def __init__(self, run: TrackingRun, run_params: dict[str, Any]) -> None:
        try:  # the writer transformers' callback uses
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams
        except ImportError:
            from tensorboardX import SummaryWriter
            from tensorboardX.summary import hparams
        self.hparams, self.params, self.tags = hparams, run_params, set()
        self.previous = _set_env(self.ENV, str(run.directory))
        # a file of its own (tensorboardX names event files by the second:
        # the trainer's could take the same name)
        self.writer = SummaryWriter(str(run.directory), filename_suffix=".harness")
        table = "\n".join(
            ["| hyperparameter | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in run_params.items())]
        )
        self.writer.add_text("harness/hyperparameters", table, 0)

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.tags.update(values)
        self.writer.flush()

    def finish(self, numbers: dict[str, float], texts: dict[str, str], step: int, status: str) -> None:
        try:
            self.log(numbers, step)
            for key, text in texts.items():
                self.writer.add_text(key, text, step)
            # The HParams dashboard: the params beside each test metric's last value (as add_hparams writes
            # them, but into this run's directory rather than a new one).
            metrics = {tag: 0.0 for tag in sorted(self.tags) if tag.startswith("harness_test/")}
            for part in self.hparams(self.params, metrics):
                self.writer._get_file_writer().add_summary(part)
        finally:
            self.writer.close()
            _restore_env(self.ENV, self.previous)


class Wandb(Tracker):
    """A W&B run (``wandb.run``), which transformers' callback takes instead of starting its own."""

    def __init__(self, run: TrackingRun, run_params: dict[str, Any]) -> None:
        import wandb

        self.run = wandb.init(
            project=run.project,
            name=run.name,
            group=run.name.rsplit("/", 1)[0],
            dir=str(run.directory),
            config=run_params,
        )
        self.run.define_metric(STEP_KEY)
        self.run.define_metric("*", step_metric=STEP_KEY, step_sync=True)

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log({**values, STEP_KEY: step})

    def finish(self, numbers: dict[str, float], texts: dict[str, str], step: int, status: str) -> None:
        try:
            self.log(numbers, step)
            self.run.summary.update(texts)
        finally:
            self.run.finish(exit_code=0 if status in ("completed", "pruned") else 1)


class MLflow(Tracker):
    """An MLflow run in experiment ``tracking.project``, left active so that transformers' callback
    logs into it."""

    STATUS = {"completed": "FINISHED", "pruned": "KILLED", "interrupted": "KILLED"}

    def __init__(self, run: TrackingRun, run_params: dict[str, Any]) -> None:
        import mlflow

        self.mlflow = mlflow
        try:
            mlflow.set_experiment(run.project)
        except Exception:  # trials started together: another one created the experiment first
            mlflow.set_experiment(run.project)
        self.run_id = mlflow.start_run(run_name=run.name).info.run_id
        items = [(k, str(v)) for k, v in run_params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params at once
            mlflow.log_params(dict(items[start : start + 100]), run_id=self.run_id)

    def log(self, values: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(values, step=step, run_id=self.run_id)

    def finish(self, numbers: dict[str, float], texts: dict[str, str], step: int, status: str) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        try:
            self.log(numbers, step)
            for key, text in texts.items():
                client.set_tag(self.run_id, key, text[:5000])
        finally:
            active = self.mlflow.active_run()
            if active is not None and active.info.run_id == self.run_id:
                self.mlflow.end_run(self.STATUS.get(status, "FAILED"))
            else:
                client.set_terminated(self.run_id, self.STATUS.get(status, "FAILED"))


class Trackio(Tracker):
    """A trackio run, resumed by project and name: transformers' callback resumes it when training starts and
    finishes it when training ends, so the plugin resumes it again for what comes after."""

    # where transformers 4's callback reads the project (5 reads TrainingArguments.project)
    ENV = "TRACKIO_PROJECT"

    def __init__(self, run: TrackingRun, run_params: dict[str, Any]) -> None:
        import trackio

        self.trackio, self.run, self.params = trackio, run, run_params
        self.previous = _set_env(self.ENV, run.project)
        self._resume()

    def _resume(self) -> None:
        current = self.trackio.context_vars.current_run.get()
        if current is None or getattr(current, "name", None) != self.run.name:
            # the config each time: trackio keeps the config of the run's last resumption
            self.trackio.init(
                project=self.run.project, name=self.run.name, resume="allow", config=self.params
            )

    def log(self, values: dict[str, float], step: int) -> None:
        self._resume()
        self.trackio.log({**values, STEP_KEY: step})

    def finish(self, numbers: dict[str, float], texts: dict[str, str], step: int, status: str) -> None:
        try:
            self.log(numbers, step)
            self.trackio.finish()
        finally:
            _restore_env(self.ENV, self.previous)


OPENERS: dict[str, type[Tracker]] = {
    "tensorboard": TensorBoard,
    "wandb": Wandb,
    "mlflow": MLflow,
    "trackio": Trackio,
}


class TrialRuns(TrialObserver):
    """One trial's open runs, one per tracker: logs each evaluation at its step and the summary at the end."""

    def __init__(self, runs: list[Tracker], failed: list[Exception] | None = None) -> None:
        self.runs = runs
        self.failed = list(failed or [])  # runs that failed to open: raised at the first event

    def _each(self, action: Callable[[Tracker], None]) -> None:
        """``action(tracker)`` for every open run; one that fails does not stop the others (its error, or that
        of a run that failed to open, is raised after, and the harness records it as this plugin's error)."""
        errors, self.failed = self.failed, []
        for tracker in self.runs:
            try:
                action(tracker)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def reference_evaluated(self, metrics: Mapping[str, Any], selection: Mapping[str, Any] | None) -> None:
        """Log the reference model's evaluation at step 0."""
        values = evaluation_values(metrics, selection)
        self._each(lambda tracker: tracker.log(values, 0))

    def checkpoint_evaluated(
        self, step: int, metrics: Mapping[str, Any], selection: Mapping[str, Any] | None
    ) -> None:
        """Log a checkpoint's evaluation at its optimizer step."""
        values = evaluation_values(metrics, selection)
        self._each(lambda tracker: tracker.log(values, step))

    def trial_end(self, record: TrialRecord) -> None:
        """Log the trial's summary and close its runs."""
        numbers, texts, step = summary(record)
        self.close(numbers, texts, step, str(record.status))

    def close(self, numbers: dict[str, float], texts: dict[str, str], step: int, status: str) -> None:
        """Log ``numbers`` and ``texts`` at ``step`` and close every run with ``status``."""
        try:
            self._each(lambda tracker: tracker.finish(numbers, texts, step, status))
        finally:
            self.runs = []


def open_runs(cfg: DictConfig, trial_dir: str | Path) -> TrialRuns | None:
    """Open the trial's run in each tracker of ``tracking.report_to``, logging its params (None: no tracker).
    A tracker that fails to open is left out; its error is raised at the trial's first event (the others
    log)."""
    from harness.plugin import hyperparameters

    names = trackers(cfg)
    if not names:
        return None
    run = TrackingRun.of(cfg.get("tracking"), trial_dir)
    run.directory.mkdir(parents=True, exist_ok=True)
    run_params = params(cfg, hyperparameters(cfg))
    runs = TrialRuns([])
    for name in names:
        try:
            runs.runs.append(OPENERS[name](run, run_params))
        except Exception as exc:
            runs.failed.append(exc)
    return runs


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """Every tracker of ``tracking.report_to`` known and installed (one line naming the pip install)."""
    check_trackers(trackers(cfg))


@hookimpl(tryfirst=True)  # its observer comes first: a checkpoint is logged before a pruner stops the trial
def harness_trial_observer(cfg: DictConfig, trial_dir: Path) -> TrialRuns | None:
    """The trial's runs, opened (None when ``tracking.report_to`` names no tracker)."""
    return open_runs(cfg, trial_dir)
