"""The trial runner: one method, trained and evaluated on one config, leaving one record.

``run_trial`` loads data and models through the plugin manager, evaluates the reference model once (the
baseline every checkpoint is compared with), hands a :class:`harness.trial.context.TrainContext` to the method
plugin, evaluates the final model, and writes the trial record. Any exception inside a trial is recorded as a
failed trial with its reason and never escapes, so a multirun goes on; a pruned trial is recorded as pruned.
A record with status ``running`` is written first, so a killed process leaves a trace.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.config import distributed, resources
from harness.config.model_settings import lora_enabled
from harness.config.trainer_config import max_length
from harness.config.validation import (
    evaluator_names,
    metric_declarations,
    trial_evaluators,
    validate_trial_config,
)
from harness.data import PreferenceData, data_for_method, fit_to_length
from harness.errors import DataError, TrialInterrupted, TrialPruned
from harness.evaluation.context import CheckpointEvaluation, EvalContext, Reference, evaluate_checkpoint
from harness.evaluation.health import annotate_trial, learning_rate_flag
from harness.evaluation.refcache import RefCache, open_reference_cache
from harness.plugin.manager import HarnessPluginManager, get_plugin_manager
from harness.records import RECORD_NAME, flatten, library_versions, write_record
from harness.trial import models
from harness.trial.checkpoints import Checkpointer, Evaluate, preserved_rng
from harness.trial.context import TrainContext
from harness.trial.length_cache import cached_count
from harness.trial.lifecycle import TrialHooks, disk_full, failure, note_evaluator_errors, process_age
from harness.trial.memory import MemoryMonitor
from harness.trial.selection import SelectionEvaluation, plan_held_out
from harness.verbosity import set_library_verbosity


def hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The trial's hyperparameters: every ``method`` key but its name (dotted), the LoRA settings when it trains
    an adapter (``lora.r``, ...: LoRA against full fine-tuning is a setting to compare), plus the seed."""
    method = OmegaConf.to_container(cfg.method, resolve=True)
    assert isinstance(method, dict)
    method.pop("name", None)
    lora = OmegaConf.to_container(cfg.model.lora, resolve=True) if lora_enabled(cfg.model) else {}
    return {**flatten(method), **flatten(lora, "lora."), "seed": int(cfg.seed)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_data(pm: HarnessPluginManager, cfg: DictConfig) -> PreferenceData:
    """The preference data of ``cfg.data``, from the plugin that owns ``cfg.data.source``."""
    data = pm.hook.harness_data_load(cfg=cfg)
    if data is None:
        raise DataError(
            f"No plugin loads data.source={cfg.data.source!r}; use data=toy or data=files, "
            "or install the plugin that provides it."
        )
    return data


@dataclass
class LoadedModels:
    """What a trial loads: the model's path and dtype, its tokenizer, the policy and its reference."""

    path: str
    dtype: torch.dtype
    tokenizer: Any
    policy: torch.nn.Module
    peft_config: Any
    train_reference: torch.nn.Module | None  # the reference the method trains against, if it holds one
    reference: Reference  # the reference for evaluation


class TrialRun:
    """State of one running trial; ``run()`` returns the final record."""

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
        self.timings: dict[str, float] = {}
        self.monitor = MemoryMonitor()
        self.record: dict[str, Any] = {
            "trial_id": f"{sweep['name']}/{sweep['job']}" if sweep else str(self.trial_dir),
            "status": "running",
            "error": None,
            "method": self.spec.name,
            "method_description": self.spec.description,
            "loss_notes": self.spec.loss_notes,
            "paper_names": self.spec.paper_names(),
            "data_kind": self.spec.data_kind,
            "models_in_memory": self.spec.count_models(cfg),
            "hyperparameters": hyperparameters(cfg),
            "overrides": list(overrides),
            "sweep": sweep,
            "trial_dir": str(self.trial_dir),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "reference": None,
            "checkpoints": [],
            "train": {},
            "timings": self.timings,
            "peak_memory": None,
            "versions": library_versions(),
            "host": {
                "hostname": socket.gethostname(),
                "device": None,
                "precision": None,
                "torch_threads": torch.get_num_threads(),
            },
            "started_at": _now(),
            "finished_at": None,
        }
        # The plugins' lifecycle hooks, and the observers of this trial (harness.plugin.TrialObserver).
        self.hooks = TrialHooks(self.pm, self.record)
        self.checkpointer: Checkpointer | None = None
        self.ctx: TrainContext | None = None  # set once training starts (the step reached, when interrupted)
        self.selection: SelectionEvaluation | None = None  # evaluation on the selection prompts (None: off)

    def _write(self) -> None:
        if distributed.is_main():  # the other processes of a multi-process trial train and wait
            write_record(self.trial_dir / RECORD_NAME, self.record)

    def run(self) -> dict[str, Any]:
        """Run the trial to completion, failure, pruning or interruption; write and return its record.

        :raises TrialInterrupted: after recording the trial as interrupted (SIGINT/SIGTERM, or Ctrl-C)."""
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        self._write()
        start = time.perf_counter()
        interrupted: TrialInterrupted | None = None
        try:
            self._run()
            self.record["status"] = "completed"
        except TrialPruned as exc:
            step = (
                self.checkpointer.entries[-1]["step"]
                if self.checkpointer and self.checkpointer.entries
                else 0
            )
            self.record["status"] = "pruned"
            self.record["error"] = {"type": "TrialPruned", "message": str(exc) or "pruned", "step": step}
            self.record["train"]["steps"] = step  # the optimizer steps actually spent
        except (TrialInterrupted, KeyboardInterrupt) as exc:
            interrupted = exc if isinstance(exc, TrialInterrupted) else TrialInterrupted(signal.SIGINT)
            step = self.ctx.steps_done if self.ctx is not None else 0
            self.record["status"] = "interrupted"
            self.record["error"] = {
                "type": "TrialInterrupted",
                "step": step,
                "signal": interrupted.signal_name,
                "message": f"interrupted by {interrupted.signal_name} at step {step}",
            }
        except Exception as exc:  # a failing trial is recorded as failed; the sweep goes on
            self.record["status"] = "failed"
            self.record["error"] = failure(exc)
        finally:
            self._finish(start)
        if interrupted is not None:
            raise interrupted
        return self.record

    def _finish(self, start: float) -> None:
        """Complete and write the record (a full disk is noted on it when it can still be written), then call the
        plugins' ``harness_trial_end`` (a failing plugin is recorded, and the record written again)."""
        if self.monitor._thread is not None and self.record["peak_memory"] is None:
            self.record["peak_memory"] = self.monitor.stop()
        if self.checkpointer is not None:
            self.record["checkpoints"] = self.checkpointer.entries
            self.record["health"] = self._health()
        note_evaluator_errors(self.record)
        self.timings["total_s"] = round(time.perf_counter() - start, 3)
        self.record["finished_at"] = _now()
        try:
            self._write()
            errors = len(self.record.get("plugin_errors") or [])
            self.hooks.end(self.record)
            if len(self.record.get("plugin_errors") or []) > errors:
                self._write()
        except OSError as exc:
            if not disk_full(exc):
                raise
            self.record["error"] = {**(self.record.get("error") or {}), **failure(exc)}
            if self.record["status"] != "interrupted":
                self.record["status"] = "failed"
            with contextlib.suppress(OSError):  # the smaller record may still fit; else the last one stays
                self._write()
        finally:
            gc.collect()

    def _health(self) -> list[dict[str, Any]]:
        """Health flags of the evaluated checkpoints (also set on each checkpoint entry)."""
        try:
            lr_flag = learning_rate_flag(
                self.cfg.method.get("learning_rate"),
                self.spec.lr_range,
                self.record["train"].get("parameters"),
            )
            reference = (self.record.get("reference") or {}).get("metrics")
            return annotate_trial(self.record["checkpoints"], reference, lr_flag)
        except Exception as exc:  # never lose a record to a health check
            return [
                {
                    "flag": "health_check_error",
                    "message": f"{type(exc).__name__}: {exc}",
                    "fix": "",
                    "steps": [],
                }
            ]

    def _default_reward_model(self) -> None:
        """Fill a null ``eval.reward_model.name_or_path`` from the plugins (the model a method trains on)."""
        rm = self.cfg.eval.get("reward_model")
        if rm is None or rm.get("name_or_path"):
            return
        path = self.pm.hook.harness_default_reward_model(cfg=self.cfg)
        if path:
            with open_dict(self.cfg):
                self.cfg.eval.reward_model.name_or_path = str(path)
            self.record["eval_reward_model"] = str(path)

    def prepare(self, evaluate_reference: bool = True) -> TrainContext:
        """Validate, load data and models, evaluate the reference model; returns the method's context."""
        t = time.perf_counter()
        device, precision = self._setup_process()
        data = load_data(self.pm, self.cfg)
        train_data, eval_data = data_for_method(data, self.spec.data_kind, self.spec.name)
        self.record["data"] = {
            "train_examples": len(train_data),
            "eval_prompts": len(data.eval_prompts),
            "format": str(data.format),
            "rows_in": data.report.rows_in,
            "ties_dropped": data.report.ties_dropped,
        }
        models_ = self._load_models(device, precision)
        train_data = self._fit_length(train_data, models_.tokenizer)
        evaluate, refcache = self._evaluation(data, models_, device)
        self.timings["setup_s"] = round(time.perf_counter() - t, 3)
        if (
            evaluate_reference and self.spec.produces == "policy" and distributed.is_main()
        ):  # a reward model has none
            self._evaluate_reference(evaluate, models_.policy, refcache)
        cfg = self.cfg
        self.checkpointer = Checkpointer(
            every=int(cfg.train.checkpoint_every),
            num_checkpoints=int(cfg.train.get("num_checkpoints", 1)),
            directory=self.trial_dir / "checkpoints",
            save=cfg.train.save_checkpoints,
            tokenizer=models_.tokenizer,
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
        return TrainContext(
            cfg=cfg,
            spec=self.spec,
            tokenizer=models_.tokenizer,
            policy=models_.policy,
            reference=models_.train_reference,
            peft_config=models_.peft_config,
            train_data=train_data,
            eval_data=eval_data,
            output_dir=self.trial_dir / "trainer",
            device=device,
            precision=precision,
            checkpointer=self.checkpointer,
        )

    def _fit_length(self, train_data: Any, tokenizer: Any) -> Any:
        """Count the rows the trainer would truncate and drop those whose prompt alone fills its max length (one
        warning line; the count is cached, :mod:`harness.trial.length_cache`); ``train_examples`` becomes the rows
        trained on. Raises DataError if none would be left."""
        limit = max_length(self.spec, self.cfg.method)
        train_data, report = fit_to_length(
            train_data, tokenizer, limit, setting="method.trl.max_length", count=cached_count
        )
        self.record["data"].update(
            train_examples=len(train_data),
            max_length=limit,
            truncated=report.truncated,
            dropped_long_prompt=report.dropped_long_prompt,
            mean_tokens=report.mean_tokens,
        )
        warning = report.warning(setting="method.trl.max_length")
        if warning:
            print(f"harness: warning: {warning}", file=sys.stderr, flush=True)
        return train_data

    def _setup_process(self) -> tuple[torch.device, str]:
        """Validate the config, announce the trial, set threads (the cores split between the trials a launcher runs
        at once, see ``sweep["parallel"]``) and seed; returns the device and precision."""
        cfg = self.cfg
        set_library_verbosity(bool(cfg.get("verbose", False)))
        validate_trial_config(cfg, self.pm)
        self.hooks.start(cfg=cfg, trial_dir=self.trial_dir)
        parallel = (self.record.get("sweep") or {}).get("parallel") or {}
        threads = resources.trial_threads(
            int(cfg.train.num_threads), int(parallel.get("trials", 1)) * distributed.local_world_size()
        )
        if threads is not None:
            torch.set_num_threads(threads)
        torch.manual_seed(int(cfg.seed))
        slot = distributed.local_rank() if distributed.launched() else int(parallel.get("slot", 0))
        device = resources.trial_device(resources.resolve_device(cfg.train.device), slot)
        precision = resources.resolve_precision(cfg.train.precision, device)
        self.record["host"].update(
            device=str(device),
            precision=precision,
            torch_threads=torch.get_num_threads(),
            processes=distributed.world_size(),
        )  # > 1: one trial trained by several (DDP)
        return device, precision

    def _load_models(self, device: torch.device, precision: str) -> LoadedModels:
        """The tokenizer, the policy, the LoRA config and the reference: a model of its own when the method trains
        against one, the adapter-disabled policy with LoRA, else loaded only while evaluating."""
        cfg = self.cfg
        path = resources.resolve_model_path(self.pm, cfg)
        dtype = models.weights_dtype(cfg.model, precision)
        policy = models.load_causal_lm(path, cfg.model, dtype, device)
        peft_config = models.lora_config(cfg.model)

        def load_reference() -> torch.nn.Module:
            return models.load_causal_lm(path, cfg.model, dtype, device)

        train_reference = load_reference() if self.spec.needs_reference and peft_config is None else None
        if train_reference is not None:
            reference = Reference(model=train_reference)
        elif peft_config is not None:
            reference = Reference()  # the adapter-disabled policy
        else:
            reference = Reference(loader=load_reference)  # loaded only while evaluating
        self.record["train"]["parameters"] = models.count_parameters(policy)
        return LoadedModels(
            path,
            dtype,
            models.load_tokenizer(path, cfg.model),
            policy,
            peft_config,
            train_reference,
            reference,
        )

    def _evaluation(
        self, data: PreferenceData, loaded: LoadedModels, device: torch.device
    ) -> tuple[Evaluate, RefCache]:
        """``evaluate(model, step, is_reference=False) -> CheckpointEvaluation`` (metrics, seconds per evaluator,
        readable samples) for this trial (its evaluators on the held-out prompts and pairs) and the
        reference-evaluation cache it shares."""
        cfg, pm = self.cfg, self.pm
        evaluators = trial_evaluators(cfg, pm)
        self.record["metric_declarations"] = metric_declarations(cfg, pm)
        if self.spec.produces == "policy":
            self._default_reward_model()
        gold = pm.hook.harness_gold_reward(cfg=cfg)
        # Reported prompts and pairs (held-out pairs: the pairwise eval split, before any unpairing for KTO), and the
        # selection ones checkpoints are chosen on (harness.trial.selection).
        plan = plan_held_out(data, cfg)
        prompts, pairs = plan.prompts, plan.pairs
        self.record["eval_prompts"] = len(prompts)
        self.record["selection"] = plan.record
        refcache = open_reference_cache(
            cfg,
            model_path=loaded.path,
            tokenizer=loaded.tokenizer,
            prompts=prompts,
            pairs=pairs,
            gold_reward=gold,
            device=str(device),
            dtype=loaded.dtype,
        )
        selection = self.selection = SelectionEvaluation.open(
            plan,
            cfg,
            evaluators,
            model_path=loaded.path,
            tokenizer=loaded.tokenizer,
            gold_reward=gold,
            device=str(device),
            dtype=loaded.dtype,
        )
        # Readable samples come from the evaluators' samples; with no evaluators nothing is sampled.
        readable = (
            int(cfg.eval.get("readable_samples") or 0) if self.spec.produces == "policy" and evaluators else 0
        )

        def evaluate(model: torch.nn.Module, step: int, is_reference: bool = False) -> CheckpointEvaluation:
            with self.monitor.paused(), loaded.reference.held():
                ctx = EvalContext(
                    cfg=cfg,
                    step=step,
                    policy=model,
                    reference=loaded.reference,
                    tokenizer=loaded.tokenizer,
                    prompts=prompts,
                    gold_reward=gold,
                    is_reference=is_reference,
                    preference_pairs=pairs,
                    refcache=refcache,
                )
                result = evaluate_checkpoint(evaluators, ctx, readable)
                if selection is not None:
                    result.selection = selection.evaluate(
                        model, step, is_reference, loaded.reference, loaded.tokenizer
                    )
                return result

        return evaluate, refcache

    def _evaluate_reference(self, evaluate: Evaluate, policy: torch.nn.Module, refcache: RefCache) -> None:
        """Evaluate the untrained policy (step 0, the baseline), from the reference-evaluation cache if it can; then
        the plugins' ``harness_reference_evaluated``."""
        t = time.perf_counter()
        selection = self.selection
        with contextlib.ExitStack() as stack:  # trials started together compute it once
            stack.enter_context(refcache.locked())
            if selection is not None and selection.refcache.key != refcache.key:
                stack.enter_context(selection.refcache.locked())
            stack.enter_context(preserved_rng())
            cached = set(refcache.metrics())
            selection_cached = set(selection.refcache.metrics()) if selection is not None else set()
            result = evaluate(policy, 0, is_reference=True)
        self.timings["reference_eval_s"] = round(time.perf_counter() - t, 3)
        self.record["reference"] = {
            "metrics": result.metrics,
            "eval_breakdown_s": result.seconds,
            "samples": result.samples,
            "cached": all(name in cached for name in evaluator_names(self.cfg)),
            "eval_s": self.timings["reference_eval_s"],
            "cache_key": refcache.key,
            "cache_dir": str(refcache.directory) if refcache.directory is not None else None,
            **result.problems(),
        }
        if selection is not None and result.selection is not None:
            self.record["reference"]["selection"] = {
                **result.selection,
                "cached": all(name in selection_cached for name in selection.names),
                "cache_key": selection.refcache.key,
            }
        self.hooks.reference_evaluated(
            cfg=self.cfg,
            metrics=result.metrics,
            selection=(result.selection or {}).get("metrics"),
        )

    def _run(self) -> None:
        self.timings["process_s_at_trial_start"] = (
            process_age()
        )  # the first trial: start-up (imports, config)
        ctx = self.ctx = self.prepare()
        checkpointer = ctx.checkpointer
        self.timings["process_s_at_training_start"] = process_age()  # ... then loading, reference evaluation
        t = time.perf_counter()
        self.monitor.start()
        trained = self.spec.train(ctx)
        self.record["peak_memory"] = self.monitor.stop()
        train_s = time.perf_counter() - t - checkpointer.eval_seconds  # minus intermediate evaluations
        self.record["train"].update(
            steps=ctx.steps_done, final_loss=checkpointer.last_loss, log_history=ctx.log_history
        )
        if ctx.prepared_data is not None:
            self.record["train"]["prepared_data"] = ctx.prepared_data
        if ctx.reference_pass is not None:
            self.record["train"]["reference_logprobs"] = ctx.reference_pass
        if trained is None:
            raise RuntimeError(f"method {self.spec.name} returned no model from train(ctx)")
        checkpointer.check_loss(ctx.steps_done, checkpointer.last_loss)
        checkpointer.checkpoint(ctx.steps_done, trained, final=True)
        self.timings["train_s"] = round(train_s, 3)
        self.timings["eval_s"] = round(checkpointer.eval_seconds, 3)  # selection evaluation included
        self.timings["selection_eval_s"] = round(
            sum((e.get("selection") or {}).get("eval_seconds", 0.0) for e in checkpointer.entries), 3
        )


def run_trial(
    cfg: DictConfig,
    trial_dir: Path,
    overrides: Sequence[str] = (),
    sweep: dict[str, Any] | None = None,
    attempt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one trial and return its record (also written to ``trial_dir/trial.json``). ``attempt``: what an earlier,
    unfinished run of this trial left (:func:`harness.sweep.resume.earlier_attempt`), kept in ``attempts``."""
    run = TrialRun(cfg, trial_dir, overrides, sweep)
    if attempt is not None:
        run.record["attempts"] = [attempt]
    return run.run()
