"""A trial's evaluation: its evaluators on the held-out prompts and pairs (and, for the checkpoint's choice,
on the selection prompts: :mod:`harness.trial.selection`), the reference-evaluation cache they share, and the
reference model evaluated once, the baseline every checkpoint is compared with.

:meth:`TrialEvaluation.open` sets it up (noting the metric declarations, the number of reported prompts and
the selection plan and how its models render text on the record); :meth:`TrialEvaluation.evaluate` is the
checkpointer's ``evaluate``; :meth:`TrialEvaluation.evaluate_reference` fills ``record.reference``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

from harness.config.validation import evaluator_names, metric_declarations, trial_evaluators
from harness.data import PreferenceData
from harness.evaluation import reward_models
from harness.evaluation.context import CheckpointEvaluation, EvalContext, evaluate_checkpoint
from harness.evaluation.refcache import RefCache, open_reference_cache
from harness.evaluation.rendering import describe_models
from harness.evaluation.sampling import end_of_sequence_ids
from harness.plugin.hookspecs import RewardFunction
from harness.plugin.manager import HarnessPluginManager
from harness.plugin.specs import EvaluatorSpec, MethodSpec
from harness.records import ReferenceEvaluation, TrialRecord
from harness.trial.checkpoints import preserved_rng
from harness.trial.lifecycle import TrialHooks
from harness.trial.memory import MemoryMonitor
from harness.trial.selection import SelectionEvaluation, plan_held_out
from harness.trial.setup import LoadedModels


def default_reward_model(cfg: DictConfig, pm: HarnessPluginManager, record: TrialRecord) -> None:
    """Fill a null ``eval.reward_model.name_or_path`` from the plugins (the model a method trains on),
    noted in ``record.eval_reward_model``."""
    rm = cfg.eval.get("reward_model")
    if rm is None or rm.get("name_or_path"):
        return
    path = pm.hook.harness_default_reward_model(cfg=cfg)
    if path:
        with open_dict(cfg):
            cfg.eval.reward_model.name_or_path = str(path)
        record.eval_reward_model = str(path)


@dataclass
class TrialEvaluation:
    """Evaluates a trial's models (see the module docstring); build it with :meth:`open`."""

    cfg: DictConfig
    pm: HarnessPluginManager
    record: TrialRecord
    monitor: MemoryMonitor  # paused while evaluating: its peak is the training's
    loaded: LoadedModels
    evaluators: list[EvaluatorSpec]
    prompts: list[Any]
    pairs: list[dict[str, Any]] | None
    gold: RewardFunction | None
    refcache: RefCache
    selection: SelectionEvaluation | None  # the evaluation on the selection prompts (None: off)
    readable: int  # readable samples kept per checkpoint

    @classmethod
    def open(
        cls,
        cfg: DictConfig,
        pm: HarnessPluginManager,
        spec: MethodSpec,
        record: TrialRecord,
        monitor: MemoryMonitor,
        data: PreferenceData,
        loaded: LoadedModels,
        device: torch.device,
    ) -> TrialEvaluation:
        """The evaluation of this trial: its evaluators on the held-out prompts and pairs,
        and the selection ones."""
        evaluators = trial_evaluators(cfg, pm)
        record.metric_declarations = metric_declarations(cfg, pm)
        if spec.produces == "policy":
            default_reward_model(cfg, pm, record)
        gold = pm.hook.harness_gold_reward(cfg=cfg)
        # Reported prompts and pairs (held-out pairs: the pairwise eval split, before any unpairing for KTO),
        # and the selection ones checkpoints are chosen on (harness.trial.selection).
        plan = plan_held_out(data, cfg)
        record.eval_prompts = len(plan.prompts)
        record.selection = plan.record
        record.rendering = describe_models(
            loaded.tokenizer,
            end_of_sequence_ids(loaded.policy, loaded.tokenizer),
            reward_models.configured_path(cfg.eval) if spec.produces == "policy" else None,
        )
        models = {"model_path": loaded.path, "tokenizer": loaded.tokenizer, "dtype": loaded.dtype}
        refcache = open_reference_cache(
            cfg, prompts=plan.prompts, pairs=plan.pairs, gold_reward=gold, device=str(device), **models
        )
        selection = SelectionEvaluation.open(
            plan, cfg, evaluators, gold_reward=gold, device=str(device), **models
        )
        # Readable samples come from the evaluators' samples; with no evaluators nothing is sampled.
        readable = (
            int(cfg.eval.get("readable_samples") or 0) if spec.produces == "policy" and evaluators else 0
        )
        return cls(
            cfg,
            pm,
            record,
            monitor,
            loaded,
            evaluators,
            plan.prompts,
            plan.pairs,
            gold,
            refcache,
            selection,
            readable,
        )

    def evaluate(self, model: torch.nn.Module, step: int, is_reference: bool = False) -> CheckpointEvaluation:
        """``model`` at ``step`` evaluated: metrics, seconds per evaluator, readable samples, and its
        evaluation on the selection prompts."""
        loaded = self.loaded
        with self.monitor.paused(), loaded.reference.held():
            ctx = EvalContext(
                cfg=self.cfg,
                step=step,
                policy=model,
                reference=loaded.reference,
                tokenizer=loaded.tokenizer,
                prompts=self.prompts,
                gold_reward=self.gold,
                is_reference=is_reference,
                preference_pairs=self.pairs,
                refcache=self.refcache,
            )
            result = evaluate_checkpoint(self.evaluators, ctx, self.readable)
            if self.selection is not None:
                result.selection = self.selection.evaluate(
                    model, step, is_reference, loaded.reference, loaded.tokenizer
                )
            return result

    def evaluate_reference(self, policy: torch.nn.Module, hooks: TrialHooks) -> None:
        """Evaluate the untrained policy (step 0, the baseline) into ``record.reference``, from the
        reference-evaluation cache if it can; then the trial's observers and
        ``harness_reference_evaluated``."""
        t = time.perf_counter()
        refcache, selection = self.refcache, self.selection
        with contextlib.ExitStack() as stack:  # trials started together compute it once
            stack.enter_context(refcache.locked())
            if selection is not None and selection.refcache.key != refcache.key:
                stack.enter_context(selection.refcache.locked())
            stack.enter_context(preserved_rng())
            cached = set(refcache.metrics())
            selection_cached = set(selection.refcache.metrics()) if selection is not None else set()
            result = self.evaluate(policy, 0, is_reference=True)
        seconds = self.record.timings["reference_eval_s"] = round(time.perf_counter() - t, 3)
        reference = self.record.reference = ReferenceEvaluation(
            metrics=result.metrics,
            eval_breakdown_s=result.seconds,
            samples=result.samples,
            cached=all(name in cached for name in evaluator_names(self.cfg)),
            eval_s=seconds,
            cache_key=refcache.key,
            cache_dir=str(refcache.directory) if refcache.directory is not None else None,
        )
        result.note_problems(
            reference
        )  # evaluators that failed, non-finite values (harness.evaluation.failures)
        if selection is not None and result.selection is not None:
            reference.selection = result.selection
            reference.selection.cached = all(name in selection_cached for name in selection.names)
            reference.selection.cache_key = selection.refcache.key
        hooks.reference_evaluated(
            cfg=self.cfg,
            metrics=result.metrics,
            selection=result.selection.metrics if result.selection is not None else None,
        )
