"""Evaluator ``lm_eval``: lm-evaluation-harness task scores of every checkpoint, in memory.

The policy being evaluated (with its LoRA adapter active) and its tokenizer are wrapped in lm-eval's ``HFLM``
and scored with ``lm_eval.simple_evaluate``, exactly as ``lm_eval --model hf --model_args pretrained=<dir>``
would score the saved checkpoint. The toy world's tasks (``toy_grammar``, ``toy_sentiment``; see
:mod:`harness.toyworld.lmeval_tasks`) ship with the harness and are always included, so the default runs
offline; any task, group or tag lm-eval knows can be named too (its dataset must be reachable or cached).

Options, under ``eval.lm_eval`` (declared in :data:`~harness_plugins.evaluators.lm_eval.settings.OPTIONS`,
with their defaults): ``tasks``, ``include_path``,
``limit``, ``batch_size``, ``num_fewshot``, ``bootstrap_iters``.

Metrics: ``lm_eval/<task>/<metric>`` for each metric lm-eval reports (``acc``, ``acc_norm``, ...), with
standard errors named the harness's way (``acc_se`` for lm-eval's ``acc_stderr``). Metrics under a filter
other than lm-eval's ``none`` get the filter appended (``lm_eval/gsm8k/exact_match/flexible-extract``).
Group scores appear under the group's name.

Indexing lm-eval's ~15,000 task files takes about 11 s, so task managers are built once per process and reused
for every checkpoint; when every task named is in the include paths (the default), lm-eval's own tasks are not
indexed at all (about 0.1 s). The task objects too are loaded once per process and task settings (tasks,
include paths, limit, few-shot count; :func:`prepared_tasks`), configured as ``simple_evaluate`` configures
them, and each task's requests (its documents rendered into prompts, then tokenized) are built once and
reused, so a checkpoint only runs the model on them: :func:`run_lm_eval` does what ``simple_evaluate`` does
(same seeds, same settings) minus the loading and the run report (an environment report that runs
``pip list``; the trial record holds the library versions instead), and scores the same. Task names are
checked before any compute (``harness_config_validate``), with suggestions for a misspelt name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness_plugins.evaluators.lm_eval.isolation import preserved_random_state, quiet_lm_eval
from harness_plugins.evaluators.lm_eval.offline import check_dataset_cached, task_datasets
from harness_plugins.evaluators.lm_eval.run import metrics_from_results, run_lm_eval
from harness_plugins.evaluators.lm_eval.settings import DEFAULTS, NAME, OPTIONS, Settings, read_settings
from harness_plugins.evaluators.lm_eval.tasks import PreparedTasks, manager_for, prepared_tasks, task_manager
from omegaconf import DictConfig

from harness.plugin import EvaluatorSpec, Metric, hookimpl
from harness.toyworld.lmeval_tasks import TASKS_DIR, TOY_TASKS

if TYPE_CHECKING:
    from harness.plugin import EvalContext

# This package's modules: settings (eval.lm_eval), tasks (task managers and task objects, once per process),
# isolation (lm-eval's logs and random states), run (scoring a model), offline (datasets that must be cached).
# What was defined in this module before it became a package stays importable from it.
__all__ = [
    "DEFAULTS",
    "NAME",
    "OPTIONS",
    "PreparedTasks",
    "Settings",
    "check_dataset_cached",
    "evaluate",
    "harness_config_validate",
    "harness_evaluators_register",
    "manager_for",
    "metrics_from_results",
    "prepared_tasks",
    "preserved_random_state",
    "quiet_lm_eval",
    "read_settings",
    "run_lm_eval",
    "task_datasets",
    "task_manager",
]


def evaluate(ctx: EvalContext) -> dict[str, float]:
    """lm-eval scores of ``ctx.policy`` (the reference model too, at step 0) on ``eval.lm_eval.tasks``."""
    settings = read_settings(ctx.cfg)
    if not settings.tasks:
        return {}  # no task named (real models: name the benchmarks whose datasets are cached)
    results = run_lm_eval(ctx.policy, ctx.tokenizer, settings, verbose=bool(ctx.cfg.get("verbose", False)))
    return metrics_from_results(results)


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """When ``lm_eval`` is among ``eval.evaluators``: check ``eval.lm_eval`` and that every task exists."""
    evaluators = (
        [*(cfg.eval.get("evaluators") or []), *(cfg.eval.get("extra") or [])] if cfg.get("eval") else []
    )
    if NAME not in [str(e) for e in evaluators]:
        return
    settings = read_settings(cfg)
    if not settings.tasks:
        return
    if set(settings.tasks) <= set(TOY_TASKS) and settings.include_path == (str(TASKS_DIR),):
        return  # only the shipped tasks: known without importing lm-eval (which adds seconds to start-up)
    manager = manager_for(settings)
    import datasets

    if datasets.config.HF_DATASETS_OFFLINE or datasets.config.HF_HUB_OFFLINE:  # else lm-eval may download
        for task in settings.tasks:
            for name, path, dataset_name in task_datasets(manager, task):
                check_dataset_cached(name, path, dataset_name)


@hookimpl
def harness_evaluators_register() -> list[EvaluatorSpec]:
    """The lm-eval evaluator."""
    return [
        EvaluatorSpec(
            name=NAME,
            evaluate=evaluate,
            options=OPTIONS,
            description="lm-evaluation-harness task scores (eval.lm_eval.tasks)",
            metrics=[
                *(
                    Metric(
                        f"lm_eval/*/{m}",
                        f"lm-eval's {m} on the task (capability kept or lost)",
                        "maximize",
                        headline=True,
                        se=f"lm_eval/*/{m}_se",
                    )
                    for m in ("acc", "acc_norm", "exact_match", "f1")
                ),
                Metric(
                    "lm_eval/*",
                    "another lm-eval score (lm_eval/<task>/<metric>[/<filter>]; *_se: standard errors)",
                ),
            ],
        )
    ]
