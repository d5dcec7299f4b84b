"""The trial's held-out data, and every checkpoint evaluated a second time on the selection prompts.

A trial's checkpoint is chosen (the leaderboard's best within the KL budget, Optuna's value and its pruner's
reports) on *selection* prompts with their own sampling seed (``eval.selection``); the scores reported come
from the reported (test) prompts, disjoint from them (:mod:`harness.data.selection` says where each part comes
from). :func:`plan_held_out` splits the data; :class:`SelectionEvaluation` runs, on the selection prompts,
only the evaluators whose metrics choose the checkpoint (:func:`selection_evaluators`), with no readable
samples and a reference-evaluation cache entry of its own (its prompts and seed are part of the key).

**Which evaluators run on the selection prompts.** Those that measure a metric the choice reads: the
leaderboard's objective (``leaderboard.objective``; ``auto`` resolved as the sweeper resolves it, the declared
metric of lowest objective priority among the evaluators active for the config: the gold reward on the toy
world), each objective of the Optuna study the trial belongs to (its ``study.json``, named in the job's
environment by the sweeper), and ``kl`` (the KL budget), each once, in the trial's evaluator order, less those
in ``eval.selection.exclude``. Every other evaluator (text statistics, win rate, preference accuracy, lm-eval,
...) runs on the reported prompts only: their selection values chose nothing. A leaderboard later ranked by
another objective chooses on that objective's reported values (its ``sel_`` column is missing), as for records
without selection metrics.

The record gets ``record.selection`` (a :class:`~harness.records.SelectionPlan`: what was used, ``evaluators``
included), ``checkpoints[i].selection`` and ``reference.selection`` (a
:class:`~harness.records.SelectionResult`: metrics, seconds in all and per evaluator); records written before
this rule hold every evaluator's selection metrics, and read the same way.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, open_dict

from harness.config.metrics import auto_objective
from harness.data import PreferenceData
from harness.data.selection import split_held_out
from harness.evaluation.context import EvalContext, evaluate_checkpoint
from harness.evaluation.refcache import RefCache, open_reference_cache
from harness.evaluation.reference import Reference
from harness.plugin.specs import EvaluatorSpec
from harness.records import SelectionPlan, SelectionResult

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from harness.plugin.hookspecs import RewardFunction

#: Prefix of the selection evaluation's progress descriptions ("selection: sampling step 10").
LABEL = "selection: "
#: Set by the Optuna sweeper in its trials' environment (``harness.sweep.reporter.ENV_STUDY``, not imported:
#: the sweep layer sits above this one): the study's settings file, whose ``objectives`` the selection prompts
#: must measure.
STUDY_ENV = "HARNESS_OPTUNA_STUDY"


def selection_settings(cfg: DictConfig) -> tuple[int, int]:
    """``(num_prompts, seed)`` of ``eval.selection`` (seed null: ``eval.seed + 1``)."""
    selection = cfg.eval.get("selection") or {}
    seed = selection.get("seed")
    return int(selection.get("num_prompts") or 0), int(seed) if seed is not None else int(cfg.eval.seed) + 1


@dataclass
class HeldOutPlan:
    """The reported prompts and pairs, the selection ones (None: selection off) and what the record says."""

    prompts: list[Any]
    pairs: list[dict[str, Any]] | None
    selection_prompts: list[Any] | None
    selection_pairs: list[dict[str, Any]] | None
    record: SelectionPlan


def plan_held_out(data: PreferenceData, cfg: DictConfig) -> HeldOutPlan:
    """Split the held-out data into reported and selection parts; prints one warning line when the selection
    part is smaller than asked for (the record keeps it)."""
    num_prompts = int(cfg.eval.num_prompts) if cfg.eval.num_prompts else None
    num_pairs = int(cfg.eval.get("preference_pairs", 256))
    pairwise = data.eval is not None and data.format.kind == "pairwise"  # before any unpairing for KTO
    wanted, seed = selection_settings(cfg)
    if wanted <= 0:
        prompts = data.eval_prompts[:num_prompts] if num_prompts else list(data.eval_prompts)
        pairs = (
            data.eval.select(range(min(len(data.eval), num_pairs))).to_list()  # type: ignore[union-attr]
            if pairwise
            else None
        )
        return HeldOutPlan(
            prompts, pairs, None, None, SelectionPlan(num_prompts=0, seed=None, disjoint=False)
        )
    given_pairs = data.selection_pairs if pairwise and data.selection_pairs is not None else None
    pair_prompts = data.eval.with_format(None)["prompt"] if pairwise else []  # type: ignore[union-attr]
    split = split_held_out(
        data.eval_prompts,
        num_prompts,
        wanted,
        pair_prompts=pair_prompts,
        num_pairs=num_pairs,
        given_prompts=data.selection_prompts,
        given_pair_rows=len(given_pairs) if given_pairs is not None else None,
    )
    pairs = selection_pairs = None
    if pairwise:
        pairs = data.eval.select(split.pair_rows).to_list()  # type: ignore[union-attr]
        source = given_pairs if split.pairs_given else data.eval
        selection_pairs = source.select(split.selection_pair_rows).to_list()  # type: ignore[union-attr]
    if split.warning:
        print(f"harness: warning: {split.warning}", file=sys.stderr, flush=True)
    record = SelectionPlan(
        num_prompts=len(split.selection_prompts),
        seed=seed,
        disjoint=split.disjoint,
        source="data source" if data.selection_prompts is not None else "held-out split",
        pairs=len(selection_pairs) if selection_pairs is not None else 0,
        pairs_disjoint=split.pairs_disjoint,
        exclude=excluded(cfg),
        warning=split.warning,
    )
    return HeldOutPlan(split.prompts, pairs, split.selection_prompts, selection_pairs, record)


def excluded(cfg: DictConfig) -> list[str]:
    """The evaluators ``eval.selection.exclude`` keeps off the selection prompts."""
    return [str(name) for name in ((cfg.eval.get("selection") or {}).get("exclude") or [])]


def study_objectives() -> list[str]:
    """The objectives of the Optuna study this process runs a trial of ([] outside one, or when its settings
    file cannot be read: the study then falls back to reported values, as for records without selection
    metrics)."""
    path = os.environ.get(STUDY_ENV)
    if not path:
        return []
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(name) for name in (settings.get("objectives") or [])] if isinstance(settings, dict) else []


def selection_metrics(cfg: DictConfig) -> list[str]:
    """The metrics the checkpoint is chosen on: the leaderboard's objective (maybe ``auto``), the Optuna
    study's objectives, and ``kl`` (the KL budget); each once."""
    objective = str((cfg.get("leaderboard") or {}).get("objective") or "auto")
    return list(dict.fromkeys([objective, *study_objectives(), "kl"]))


def selection_evaluators(cfg: DictConfig, evaluators: Sequence[EvaluatorSpec]) -> list[EvaluatorSpec]:
    """The evaluators of ``evaluators`` that measure a metric of :func:`selection_metrics` (``auto``: the
    metric the sweeper resolves it to), less those in ``eval.selection.exclude``, in their order."""
    wanted: set[str] = set()
    for name in selection_metrics(cfg):
        if name == "auto":
            metric = auto_objective(evaluators, cfg)
            owner = next((e for e in evaluators if any(m is metric for m in e.metrics)), None)
        else:
            owner = next((e for e in evaluators if e.metric(name) is not None), None)
        if owner is not None:
            wanted.add(owner.name)
    skip = set(excluded(cfg))
    return [e for e in evaluators if e.name in wanted and e.name not in skip]


def selection_config(cfg: DictConfig, num_prompts: int) -> DictConfig:
    """A copy of ``cfg`` for the selection prompts: ``eval.seed`` is the selection seed, ``eval.num_prompts``
    their number (so that their reference cache entry does not depend on how many prompts are reported), no
    readable samples."""
    out = copy.deepcopy(cfg)
    with open_dict(out):
        out.eval.seed = selection_settings(cfg)[1]
        out.eval.num_prompts = num_prompts
        out.eval.readable_samples = 0
    return out


class SelectionEvaluation:
    """The evaluators that choose the checkpoint (:func:`selection_evaluators`) on the selection prompts, with
    their own reference cache."""

    def __init__(
        self,
        cfg: DictConfig,
        evaluators: Sequence[EvaluatorSpec],
        prompts: Sequence[Any],
        pairs: Sequence[dict[str, Any]] | None,
        refcache: RefCache,
        gold_reward: RewardFunction | None,
    ) -> None:
        self.cfg = cfg
        self.evaluators = list(evaluators)
        self.prompts = list(prompts)
        self.pairs = pairs
        self.refcache = refcache
        self.gold_reward = gold_reward

    @classmethod
    def open(
        cls,
        plan: HeldOutPlan,
        cfg: DictConfig,
        evaluators: Sequence[EvaluatorSpec],
        *,
        model_path: str,
        tokenizer: PreTrainedTokenizerBase,
        gold_reward: RewardFunction | None,
        device: str,
        dtype: torch.dtype,
    ) -> SelectionEvaluation | None:
        """The selection evaluation of ``plan`` (None when selection is off); names its evaluators in
        ``plan.record.evaluators``."""
        if plan.selection_prompts is None:
            return None
        sel_cfg = selection_config(cfg, len(plan.selection_prompts))
        chosen_by = selection_evaluators(cfg, evaluators)
        plan.record.evaluators = [e.name for e in chosen_by]
        refcache = open_reference_cache(
            sel_cfg,
            model_path=model_path,
            tokenizer=tokenizer,
            prompts=plan.selection_prompts,
            pairs=plan.selection_pairs,
            gold_reward=gold_reward,
            device=device,
            dtype=dtype,
        )
        return cls(sel_cfg, chosen_by, plan.selection_prompts, plan.selection_pairs, refcache, gold_reward)

    @property
    def names(self) -> list[str]:
        """The evaluators run on the selection prompts."""
        return [e.name for e in self.evaluators]

    def evaluate(
        self,
        model: torch.nn.Module,
        step: int,
        is_reference: bool,
        reference: Reference,
        tokenizer: PreTrainedTokenizerBase,
    ) -> SelectionResult:
        """The metrics and seconds (in all, per evaluator) of ``model`` on the selection prompts."""
        start = time.perf_counter()
        ctx = EvalContext(
            cfg=self.cfg,
            step=step,
            policy=model,
            reference=reference,
            tokenizer=tokenizer,
            prompts=self.prompts,
            gold_reward=self.gold_reward,
            is_reference=is_reference,
            preference_pairs=self.pairs,
            refcache=self.refcache,
            label=LABEL,
        )
        result = evaluate_checkpoint(self.evaluators, ctx, 0)
        selection = SelectionResult(
            metrics=result.metrics,
            eval_seconds=round(time.perf_counter() - start, 3),
            eval_breakdown_s=result.seconds,
            prompt_scores=(result.prompt_scores or None) if not is_reference else None,
        )
        result.note_problems(selection)
        return selection
