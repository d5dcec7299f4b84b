"""Scoring a model in memory with lm-eval, as ``simple_evaluate`` would, and its results as the harness's
metrics.

:func:`run_lm_eval` does what ``simple_evaluate`` does (same seeds, same settings) minus the loading and the
run report (an environment report that runs ``pip list``; the trial record holds the library versions
instead), on this process's task objects and requests
(:func:`harness_plugins.evaluators.lm_eval.tasks.prepared_tasks`), and scores the same.
:func:`metrics_from_results` names lm-eval's scores the harness's way.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from harness_plugins.evaluators.lm_eval.isolation import preserved_random_state, quiet_lm_eval
from harness_plugins.evaluators.lm_eval.settings import NAME, Settings
from harness_plugins.evaluators.lm_eval.tasks import prepared_tasks

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def metrics_from_results(results: Mapping[str, Any]) -> dict[str, float]:
    """lm-eval's ``results["results"]`` as flat ``lm_eval/<task>/<metric>[/<filter>]`` numbers (``acc_stderr``
    becomes ``acc_se``)."""
    metrics: dict[str, float] = {}
    for task, scores in results.get("results", {}).items():
        for key, value in scores.items():
            if "," not in key or isinstance(value, bool) or not isinstance(value, Real):
                continue  # "alias", and "N/A" stderrs
            metric, _, filter_name = key.partition(",")
            if metric.endswith("_stderr"):  # the harness's name for a standard error
                metric = metric.removesuffix("_stderr") + "_se"
            suffix = "" if filter_name == "none" else f"/{filter_name}"
            metrics[f"{NAME}/{task}/{metric}{suffix}"] = float(value)
    return metrics


def run_lm_eval(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, settings: Settings, verbose: bool = False
) -> dict[str, Any]:
    """Score ``model`` (in memory) on ``settings.tasks`` with lm-eval as ``simple_evaluate`` would (its seeds
    and settings), on this process's task objects and requests
    (:func:`~harness_plugins.evaluators.lm_eval.tasks.prepared_tasks`); returns lm-eval's results dict
    (``results``, ``groups``, ``configs``, ...: no run report)."""
    with quiet_lm_eval(verbose):
        from lm_eval.defaults import DEFAULT_OTHER_SEED, DEFAULT_RANDOM_SEED
        from lm_eval.evaluator import evaluate as lm_eval_evaluate
        from lm_eval.models.huggingface import HFLM

        was_training = model.training
        try:
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size)
            with preserved_random_state():
                random.seed(DEFAULT_RANDOM_SEED)  # simple_evaluate's seeds, set before its tasks are loaded
                np.random.seed(DEFAULT_OTHER_SEED)
                torch.manual_seed(DEFAULT_OTHER_SEED)
                tasks = prepared_tasks(settings)
                tasks.remember_encodings(lm, tokenizer)
                results = lm_eval_evaluate(
                    lm=lm,
                    task_dict=tasks.loaded,
                    limit=settings.limit,
                    bootstrap_iters=settings.bootstrap_iters,
                    log_samples=False,
                    fewshot_as_multiturn=True,
                    verbosity=None,
                )
        finally:
            model.train(was_training)
    return dict(results or {})
