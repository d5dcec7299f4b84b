"""Evaluator ``lm_eval``: lm-evaluation-harness task scores of every checkpoint, in memory.

The policy being evaluated (with its LoRA adapter active) and its tokenizer are wrapped in lm-eval's ``HFLM``
and scored with ``lm_eval.simple_evaluate``, exactly as ``lm_eval --model hf --model_args pretrained=<dir>``
would score the saved checkpoint. The toy world's tasks (``toy_grammar``, ``toy_sentiment``; see
:mod:`harness.toyworld.lmeval_tasks`) ship with the harness and are always included, so the default runs offline; any
task, group or tag lm-eval knows can be named too (its dataset must be reachable or cached).

Options, under ``eval.lm_eval`` (declared in :data:`OPTIONS`, with their defaults): ``tasks``, ``include_path``,
``limit``, ``batch_size``, ``num_fewshot``, ``bootstrap_iters``.

Metrics: ``lm_eval/<task>/<metric>`` for each metric lm-eval reports (``acc``, ``acc_norm``, ...), with
standard errors named the harness's way (``acc_se`` for lm-eval's ``acc_stderr``). Metrics under a filter
other than lm-eval's ``none`` get the filter appended (``lm_eval/gsm8k/exact_match/flexible-extract``).
Group scores appear under the group's name.

Indexing lm-eval's ~15,000 task files takes about 11 s, so task managers are built once per process and
reused for every checkpoint; when every task named is in the include paths (the default), lm-eval's own
tasks are not indexed at all (about 0.1 s). The task objects too are loaded once per process and task settings
(tasks, include paths, limit, few-shot count; :func:`prepared_tasks`), configured as ``simple_evaluate``
configures them, and each task's requests (its documents rendered into prompts, then tokenized) are built once
and reused, so a checkpoint only runs the model on them: :func:`run_lm_eval` does what ``simple_evaluate`` does (same seeds, same
settings) minus the loading and the run report (an environment report that runs ``pip list``; the trial record
holds the library versions instead), and scores the same. Task names are checked before any compute
(``harness_config_validate``), with suggestions for a misspelt name.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import logging
import random
import sys
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from harness.plugin import ConfigError, EvaluatorSpec, Metric, Option, UnknownNameError, hookimpl
from harness.toyworld.lmeval_tasks import TASKS_DIR, TOY_TASKS

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

    from harness.plugin import EvalContext

NAME = "lm_eval"
OPTIONS = [
    Option(
        "tasks",
        [],
        "lm-eval task, group or tag names (or paths to task YAML files); none: no metric (the toy "
        "world's profile runs toy_grammar; toy_grammar and toy_sentiment ship with the harness)",
    ),
    Option(
        "include_path",
        [],
        "extra folders of lm-eval task YAML files (they take precedence over lm-eval's own)",
    ),
    Option(
        "limit",
        100,
        "documents per task: null (all), a count, or a fraction < 1 (lm-eval's --limit)",
        types=(int, float),
        nullable=True,
    ),
    Option(
        "batch_size",
        32,
        "requests per forward pass: an integer or auto (lm-eval's --batch_size)",
        types=(int, str),
    ),
    Option(
        "num_fewshot",
        None,
        "few-shot examples per prompt; null: each task's default (lm-eval's --num_fewshot)",
        nullable=True,
    ),
    Option(
        "bootstrap_iters",
        100000,
        "resamples for the standard errors lm-eval bootstraps (not needed for acc); 0 disables them",
        bounds="[0, inf)",
    ),
]
DEFAULTS: dict[str, Any] = {o.name: o.default for o in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """The ``eval.lm_eval`` config, with defaults filled in and include paths resolved."""

    tasks: tuple[str, ...]
    include_path: tuple[str, ...]  # the shipped toy tasks first, then the user's folders
    limit: int | float | None
    batch_size: int | str
    num_fewshot: int | None
    bootstrap_iters: int


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def read_settings(cfg: DictConfig) -> Settings:
    """``eval.lm_eval`` of ``cfg`` as :class:`Settings`; a one-line ConfigError for an invalid value."""
    section = cfg.eval.get(NAME) if cfg.get("eval") is not None else None
    raw = (
        OmegaConf.to_container(section, resolve=True)
        if isinstance(section, DictConfig)
        else dict(section or {})
    )
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise UnknownNameError("option", f"eval.{NAME}.{unknown[0]}", [f"eval.{NAME}.{k}" for k in DEFAULTS])
    values = {**DEFAULTS, **raw}
    tasks = [str(t) for t in _as_list(values["tasks"])]
    paths = [str(TASKS_DIR)]
    for entry in _as_list(values["include_path"]):
        path = Path(str(entry)).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(
                f"eval.{NAME}.include_path: {entry} is not a folder; give folders of lm-eval task YAML files."
            )
        if str(path) not in paths:
            paths.append(str(path))
    limit = values["limit"]
    if limit is not None and (
        isinstance(limit, bool)
        or not isinstance(limit, Real)
        or limit <= 0
        or (isinstance(limit, float) and limit >= 1 and not limit.is_integer())
    ):
        raise ConfigError(
            f"eval.{NAME}.limit={limit!r} is invalid; use null (all documents), a number of "
            "documents, or a fraction below 1."
        )
    if isinstance(limit, float) and limit >= 1:
        limit = int(limit)
    batch_size = values["batch_size"]
    if not (
        (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1)
        or (isinstance(batch_size, str) and batch_size.startswith("auto"))
    ):
        raise ConfigError(
            f"eval.{NAME}.batch_size={batch_size!r} is invalid; use a positive integer or auto."
        )
    shots = values["num_fewshot"]
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 0):
        raise ConfigError(
            f"eval.{NAME}.num_fewshot={shots!r} is invalid; use null (each task's default) or an "
            "integer >= 0."
        )
    iters = values["bootstrap_iters"]
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ConfigError(f"eval.{NAME}.bootstrap_iters={iters!r} is invalid; use an integer >= 0.")
    return Settings(
        tasks=tuple(tasks),
        include_path=tuple(paths),
        limit=limit,
        batch_size=batch_size,
        num_fewshot=shots,
        bootstrap_iters=iters,
    )


# ---------------------------------------------------------------------------------------------------
# Task managers (indexing is slow) and task objects: one per set of settings per process.
# ---------------------------------------------------------------------------------------------------

_MANAGERS: dict[tuple[tuple[str, ...], bool], TaskManager] = {}


def _build_task_manager(include_path: Sequence[str], include_defaults: bool) -> TaskManager:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(include_path), include_defaults=include_defaults)


def task_manager(include_path: Sequence[str], include_defaults: bool) -> TaskManager:
    """The process-wide TaskManager indexing ``include_path`` (and lm-eval's own tasks if asked)."""
    key = (tuple(include_path), include_defaults)
    if key not in _MANAGERS:
        with quiet_lm_eval(verbose=False):
            _MANAGERS[key] = _build_task_manager(include_path, include_defaults)
    return _MANAGERS[key]


def _known(manager: TaskManager, task: str) -> bool:
    return task in manager.all_tasks or (task.endswith((".yaml", ".yml")) and Path(task).is_file())


def manager_for(settings: Settings) -> TaskManager:
    """A TaskManager that knows every task of ``settings``: the include paths alone when they suffice (fast),
    else with lm-eval's own tasks. Raises a one-line ConfigError naming an unknown task."""
    local = task_manager(settings.include_path, include_defaults=False)
    if all(_known(local, t) for t in settings.tasks):
        return local
    full = task_manager(settings.include_path, include_defaults=True)
    for task in settings.tasks:
        if not _known(full, task):
            close = difflib.get_close_matches(task, full.all_tasks, n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"Unknown lm-eval task '{task}' in eval.{NAME}.tasks.{hint} List them with "
                f"`lm_eval ls tasks`, or add the task's folder to eval.{NAME}.include_path."
            )
    return full


@dataclass
class PreparedTasks:
    """lm-eval's task objects for one set of task settings (``TaskManager.load``'s ``{"tasks", "groups",
    "group_map"}``), configured as ``simple_evaluate`` configures them, and each task's requests once built."""

    loaded: dict[str, Any]
    requests: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    # tokenizer -> (context, continuation, HFLM's encoding settings) -> token ids, while the tokenizer lives
    encodings: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def remember_encodings(self, lm: Any, tokenizer: Any) -> None:
        """Make ``lm`` (an HFLM) tokenize each request once per tokenizer: later checkpoints reuse the token ids."""
        known = self.encodings.setdefault(tokenizer, {})
        encode, how = lm._encode_pair, (getattr(lm, "backend", None), getattr(lm, "add_bos_token", None))

        def encode_pair(context: str, continuation: str) -> Any:
            key = (context, continuation, how)
            return known[key] if key in known else known.setdefault(key, encode(context, continuation))

        lm._encode_pair = encode_pair

    def reuse_requests(self, name: str, task: Any) -> None:
        """Make ``task`` build its requests once: a later build hands back the same requests (lm-eval ``Instance``
        objects: a document, its prompt and continuations), the model's answers cleared."""
        build = task.build_all_requests

        def build_all_requests(**kwargs: Any) -> None:
            key = (name, repr(sorted(kwargs.items())))
            if key not in self.requests:
                build(**kwargs)
                self.requests[key] = list(task.instances)
            for request in self.requests[key]:
                request.resps, request.filtered_resps = [], {}
            task._instances = list(self.requests[key])  # what build_all_requests sets

        task.build_all_requests = build_all_requests


_PREPARED: dict[tuple[Any, ...], PreparedTasks] = {}


def _load_tasks(manager: TaskManager, settings: Settings) -> dict[str, Any]:
    """``settings.tasks`` loaded by ``manager``, configured as ``simple_evaluate`` does (few-shot count and seed)."""
    from lm_eval.defaults import DEFAULT_OTHER_SEED

    loaded = manager.load(list(settings.tasks))
    for task in loaded["tasks"].values():
        if settings.num_fewshot is not None:
            if task.get_config("num_fewshot") != 0:  # a task fixed at 0 shots keeps 0
                task.set_config(key="num_fewshot", value=settings.num_fewshot)
        elif task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=DEFAULT_OTHER_SEED)
    return loaded


def prepared_tasks(settings: Settings) -> PreparedTasks:
    """This process's task objects for ``settings`` (its tasks, include paths, limit and few-shot count), loaded
    on first use; every checkpoint of every trial with the same task settings reuses them and their requests."""
    key = (settings.tasks, settings.include_path, settings.limit, settings.num_fewshot)
    if key not in _PREPARED:
        prepared = _PREPARED[key] = PreparedTasks(_load_tasks(manager_for(settings), settings))
        for name, task in prepared.loaded["tasks"].items():
            prepared.reuse_requests(name, task)
    return _PREPARED[key]


# ---------------------------------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_lm_eval(verbose: bool) -> Iterator[None]:
    """Silence lm-eval's logs and progress bars unless ``verbose``; replay them if an exception escapes.

    lm-eval's progress bars have no switch, so stderr is captured while it runs.
    """
    if verbose:
        from lm_eval.utils import setup_logging

        setup_logging(logging.INFO)
        yield
        return
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Restore Python's, NumPy's and torch's random states afterwards (lm-eval seeds all three)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


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
    model: torch.nn.Module, tokenizer: Any, settings: Settings, verbose: bool = False
) -> dict[str, Any]:
    """Score ``model`` (in memory) on ``settings.tasks`` with lm-eval as ``simple_evaluate`` would (its seeds and
    settings), on this process's task objects and requests (:func:`prepared_tasks`); returns lm-eval's results
    dict (``results``, ``groups``, ``configs``, ...: no run report)."""
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


_FILE_BUILDERS = ("json", "csv", "parquet", "text", "arrow")


def task_datasets(
    manager: TaskManager, name: str, seen: frozenset[str] = frozenset()
) -> list[tuple[str, str, Any]]:
    """``(task, dataset_path, dataset_name)`` of every task ``name`` stands for (a task, a group's tasks, a tag's
    tasks), for the tasks that read a dataset (not a ``custom_dataset`` function or a task file of local data)."""
    if name in seen:
        return []
    seen = seen | {name}
    entry = manager.task_index.get(name)
    if entry is None:  # a tag: the tasks that carry it
        return [
            d
            for key, e in manager.task_index.items()
            if name in (e.tags or ())
            for d in task_datasets(manager, key, seen)
        ]
    cfg = entry.cfg or {}
    if "group" in cfg:
        children = cfg.get("task") or []
        return [
            d
            for child in ([children] if isinstance(children, str) else children)
            if isinstance(child, str)
            for d in task_datasets(manager, child, seen)
        ]
    path = cfg.get("dataset_path")
    if not path or cfg.get("custom_dataset") or path in _FILE_BUILDERS or Path(str(path)).exists():
        return []  # local data (the toy tasks, a task's own files): nothing to download
    return [(name, str(path), cfg.get("dataset_name"))]


def check_dataset_cached(task: str, path: str, name: Any) -> None:
    """A one-line ConfigError when the dataset of lm-eval ``task`` is not in the local Hugging Face cache (the
    harness is offline by default, so the task would fail when the trial starts)."""
    import datasets

    try:
        datasets.load_dataset_builder(path, name)
    except Exception:  # not cached: DatasetNotFoundError, ConnectionError, FileNotFoundError, ... (offline)
        args = f"{path!r}" + (f", {name!r}" if name else "")
        raise ConfigError(
            f"lm-eval task {task!r} reads the dataset {path}{'/' + str(name) if name else ''}, which is "
            f"not in the local Hugging Face cache (offline mode); cache it once with network access: "
            f'HF_DATASETS_OFFLINE=0 python -c "import datasets; datasets.load_dataset({args})", or '
            f"remove {task} from eval.{NAME}.tasks."
        ) from None


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
