"""The trial runner: one method, trained and evaluated on one config, leaving one record.

``run_trial`` sets the trial up (:mod:`harness.trial.setup`: data and models through the plugin manager),
evaluates the reference model once (:mod:`harness.trial.trial_evaluation`: the baseline every checkpoint is
compared with), hands a :class:`harness.trial.context.TrainContext` to the method plugin, evaluates the final
model, and writes the trial record (:class:`harness.records.TrialRecord`, filled by
:mod:`harness.trial.recording`). Any exception inside a trial is recorded as a failed trial with its reason
and never escapes, so a multirun goes on; a pruned trial is recorded as pruned. A record with status
``running`` is written first, so a killed process leaves a trace.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from harness.config import distributed
from harness.errors import TrialInterrupted, TrialPruned, disk_full
from harness.plugin.manager import get_plugin_manager
from harness.records import RECORD_NAME, Checkpoint, TrialError, TrialRecord, write_record
from harness.trial.checkpoints import Checkpointer, Evaluate
from harness.trial.context import TrainContext
from harness.trial.lifecycle import TrialHooks, failure, note_evaluator_errors, process_age
from harness.trial.memory import MemoryMonitor
from harness.trial.recording import (
    hyperparameters,
    interrupted_error,
    new_record,
    now,
    pruned_error,
    trial_health,
)
from harness.trial.selection import SelectionEvaluation
from harness.trial.setup import (
    fit_length,
    load_data,
    load_models,
    load_tokenizer,
    render_for_model,
    setup_process,
)
from harness.trial.trial_evaluation import TrialEvaluation

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["TrialRun", "hyperparameters", "run_trial"]


class TrialRun:
    """State of one running trial; ``run()`` returns the final record (:attr:`record`, updated as it runs)."""

    def __init__(
        self,
        cfg: DictConfig,
        trial_dir: Path,
        overrides: Sequence[str] = (),
        sweep: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.trial_dir = Path(trial_dir)
        self.pm = get_plugin_manager(list(cfg.get("plugins") or []))
        self.spec = self.pm.method(cfg.method.name)
        self.monitor = MemoryMonitor()
        self.record: TrialRecord = new_record(cfg, self.spec, self.trial_dir, overrides, sweep)
        # The plugins' lifecycle hooks, and the observers of this trial (harness.plugin.TrialObserver).
        self.hooks = TrialHooks(self.pm, self.record)
        self.checkpointer: Checkpointer | None = None
        self.ctx: TrainContext | None = None  # set once training starts (the step reached, when interrupted)
        self.evaluation: TrialEvaluation | None = None  # set by prepare()

    @property
    def selection(self) -> SelectionEvaluation | None:
        """The evaluation on the selection prompts (None: off, or not prepared yet)."""
        return self.evaluation.selection if self.evaluation is not None else None

    def _write(self) -> None:
        if distributed.is_main():  # the other processes of a multi-process trial train and wait
            write_record(self.trial_dir / RECORD_NAME, self.record)

    def run(self) -> TrialRecord:
        """Run the trial to completion, failure, pruning or interruption; write and return its record.

        :raises TrialInterrupted: after recording the trial as interrupted (SIGINT/SIGTERM, or Ctrl-C)."""
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        self._write()
        start = time.perf_counter()
        interrupted: TrialInterrupted | None = None
        record = self.record
        try:
            self._run()
            record.status = "completed"
        except TrialPruned as exc:
            entries = self.checkpointer.entries if self.checkpointer else []
            step = entries[-1].step if entries else 0
            record.status, record.error = "pruned", pruned_error(exc, step)
            record.train.steps = step  # the optimizer steps actually spent
        except (TrialInterrupted, KeyboardInterrupt) as exc:
            interrupted = exc if isinstance(exc, TrialInterrupted) else TrialInterrupted(signal.SIGINT)
            step = self.ctx.steps_done if self.ctx is not None else 0
            record.status, record.error = "interrupted", interrupted_error(interrupted, step)
        except Exception as exc:  # a failing trial is recorded as failed; the sweep goes on
            record.status, record.error = "failed", failure(exc)
        finally:
            self._finish(start)
        if interrupted is not None:
            raise interrupted
        return record

    def _finish(self, start: float) -> None:
        """Complete and write the record (a full disk is noted on it when it can still be written), then call
        the plugins' ``harness_trial_end`` (a failing plugin is recorded, and the record written again)."""
        record = self.record
        if self.monitor.started and record.peak_memory is None:
            record.peak_memory = self.monitor.stop()
        if self.checkpointer is not None:
            record.checkpoints = self.checkpointer.entries
            record.health = trial_health(record, self.cfg, self.spec)
        note_evaluator_errors(record)
        record.timings["total_s"] = round(time.perf_counter() - start, 3)
        record.finished_at = now()
        try:
            self._write()
            errors = len(record.plugin_errors)
            self.hooks.end(record)
            if len(record.plugin_errors) > errors:
                self._write()
        except OSError as exc:
            if not disk_full(exc):
                raise
            record.error = (record.error or TrialError()).merged(failure(exc))
            if record.status != "interrupted":
                record.status = "failed"
            with contextlib.suppress(OSError):  # the smaller record may still fit; else the last one stays
                self._write()
        finally:
            gc.collect()

    def prepare(self, evaluate_reference: bool = True) -> TrainContext:
        """Validate, load data and models, evaluate the reference model; returns the method's context."""
        t = time.perf_counter()
        cfg, record = self.cfg, self.record
        device, precision = setup_process(cfg, self.pm, record, self.trial_dir, self.hooks)
        data = load_data(self.pm, cfg)
        path, tokenizer = load_tokenizer(cfg, self.pm)
        data, train_data, eval_data, summary = render_for_model(cfg, self.spec, data, tokenizer)
        record.data = summary
        loaded = load_models(cfg, self.spec, device, precision, record, path, tokenizer)
        train_data = fit_length(cfg, self.spec, train_data, loaded.tokenizer, summary)
        evaluation = self.evaluation = TrialEvaluation.open(
            cfg, self.pm, self.spec, record, self.monitor, data, loaded, device
        )
        record.timings["setup_s"] = round(time.perf_counter() - t, 3)
        if (
            evaluate_reference and self.spec.produces == "policy" and distributed.is_main()
        ):  # a reward model has none
            evaluation.evaluate_reference(loaded.policy, self.hooks)
        self.checkpointer = self._checkpointer(loaded.tokenizer, evaluation.evaluate)
        return TrainContext(
            cfg=cfg,
            spec=self.spec,
            tokenizer=loaded.tokenizer,
            policy=loaded.policy,
            reference=loaded.train_reference,
            peft_config=loaded.peft_config,
            train_data=train_data,
            eval_data=eval_data,
            output_dir=self.trial_dir / "trainer",
            device=device,
            precision=precision,
            checkpointer=self.checkpointer,
        )

    def _checkpointer(self, tokenizer: PreTrainedTokenizerBase, evaluate: Evaluate) -> Checkpointer:
        """The trial's checkpointer (``train.*``, ``eval.checkpoints``); the observers and
        ``harness_checkpoint_evaluated`` after each evaluated checkpoint."""
        cfg = self.cfg
        return Checkpointer(
            every=int(cfg.train.checkpoint_every),
            num_checkpoints=int(cfg.train.get("num_checkpoints", 1)),
            directory=self.trial_dir / "checkpoints",
            save=cfg.train.save_checkpoints,
            tokenizer=tokenizer,
            evaluate=evaluate,
            evaluate_intermediate=cfg.eval.checkpoints == "all",
            evaluated=lambda step, metrics, selection: self.hooks.checkpoint_evaluated(
                cfg=cfg,
                step=step,
                metrics=metrics,
                selection=selection,
                planned_steps=self.checkpointer.total_steps if self.checkpointer else None,
            ),
        )

    def _run(self) -> None:
        record, timings = self.record, self.record.timings
        timings["process_s_at_trial_start"] = process_age()  # the first trial: start-up (imports, config)
        ctx = self.ctx = self.prepare()
        checkpointer = ctx.checkpointer
        timings["process_s_at_training_start"] = process_age()  # ... then loading, reference evaluation
        t = time.perf_counter()
        self.monitor.start()
        trained = self.spec.train(ctx)
        record.peak_memory = self.monitor.stop()
        train_s = time.perf_counter() - t - checkpointer.eval_seconds  # minus intermediate evaluations
        train = record.train
        train.steps, train.final_loss, train.log_history = (
            ctx.steps_done,
            checkpointer.last_loss,
            ctx.log_history,
        )
        if ctx.prepared_data is not None:
            train.prepared_data = ctx.prepared_data
        if ctx.reference_pass is not None:
            train.reference_logprobs = ctx.reference_pass
        if trained is None:
            raise RuntimeError(f"method {self.spec.name} returned no model from train(ctx)")
        checkpointer.check_loss(ctx.steps_done, checkpointer.last_loss)
        checkpointer.checkpoint(ctx.steps_done, trained, final=True)
        timings["train_s"] = round(train_s, 3)
        timings["eval_s"] = round(checkpointer.eval_seconds, 3)  # selection evaluation included
        timings["selection_eval_s"] = round(sum(map(_selection_seconds, checkpointer.entries)), 3)


def _selection_seconds(entry: Checkpoint) -> float:
    """The seconds a checkpoint's evaluation on the selection prompts took (0.0 when it had none)."""
    selection = entry.selection
    return selection.eval_seconds if selection is not None and selection.eval_seconds is not None else 0.0


def run_trial(
    cfg: DictConfig,
    trial_dir: Path,
    overrides: Sequence[str] = (),
    sweep: dict[str, Any] | None = None,
    attempts: Sequence[dict[str, Any]] = (),
) -> TrialRecord:
    """Run one trial and return its record (also written to ``trial_dir/trial.json``). ``attempts``: the
    history of this trial's earlier runs (:func:`harness.sweep.resume.earlier_attempts`), kept in the
    record's ``attempts``."""
    run = TrialRun(cfg, trial_dir, overrides, sweep)
    run.record.attempts = list(attempts)
    return run.run()
