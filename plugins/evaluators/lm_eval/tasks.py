"""lm-eval's task managers and task objects, built once per process and set of task settings.

Indexing lm-eval's ~15,000 task files takes about 11 s, so task managers are built once per process and reused
for every checkpoint; when every task named is in the include paths (the default), lm-eval's own tasks are not
indexed at all (about 0.1 s). The task objects too are loaded once per process and task settings
(:func:`prepared_tasks`), configured as ``simple_evaluate`` configures them, and each task's requests (its
documents rendered into prompts, then tokenized) are built once and reused (:class:`PreparedTasks`).
"""

from __future__ import annotations

import difflib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.evaluators.lm_eval.isolation import quiet_lm_eval
from harness_plugins.evaluators.lm_eval.settings import NAME, Settings

from harness.plugin import ConfigError

if TYPE_CHECKING:
    from lm_eval.api.task import Task
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import PreTrainedTokenizerBase

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
    """lm-eval's task objects for one set of task settings (``TaskManager.load``'s
    ``{"tasks", "groups", "group_map"}``), configured as ``simple_evaluate`` configures them, and each task's
    requests once built."""

    loaded: dict[str, Any]
    requests: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    # tokenizer -> (context, continuation, HFLM's encoding settings) -> token ids, while the tokenizer lives
    encodings: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def remember_encodings(self, lm: HFLM, tokenizer: PreTrainedTokenizerBase) -> None:
        """Make ``lm`` (an HFLM) tokenize each request once per tokenizer:
        later checkpoints reuse the token ids."""
        known = self.encodings.setdefault(tokenizer, {})
        encode, how = lm._encode_pair, (getattr(lm, "backend", None), getattr(lm, "add_bos_token", None))

        def encode_pair(context: str, continuation: str) -> Any:
            key = (context, continuation, how)
            return known[key] if key in known else known.setdefault(key, encode(context, continuation))

        lm._encode_pair = encode_pair

    def reuse_requests(self, name: str, task: Task) -> None:
        """Make ``task`` build its requests once: a later build hands back the same requests (lm-eval
        ``Instance`` objects: a document, its prompt and continuations), the model's answers cleared."""
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
    """``settings.tasks`` loaded by ``manager``, configured as ``simple_evaluate`` does
    (few-shot count and seed)."""
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
    """This process's task objects for ``settings`` (its tasks, include paths, limit and few-shot count),
    loaded on first use; every checkpoint of every trial with the same task settings reuses them and their
    requests."""
    key = (settings.tasks, settings.include_path, settings.limit, settings.num_fewshot)
    if key not in _PREPARED:
        prepared = _PREPARED[key] = PreparedTasks(_load_tasks(manager_for(settings), settings))
        for name, task in prepared.loaded["tasks"].items():
            prepared.reuse_requests(name, task)
    return _PREPARED[key]
