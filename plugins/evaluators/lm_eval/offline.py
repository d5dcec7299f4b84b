"""Which datasets lm-eval tasks read, and a one-line error before any compute when one is not cached (the
harness runs offline by default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.evaluators.lm_eval.settings import NAME

from harness.plugin import ConfigError

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

_FILE_BUILDERS = ("json", "csv", "parquet", "text", "arrow")


def task_datasets(
    manager: TaskManager, name: str, seen: frozenset[str] = frozenset()
) -> list[tuple[str, str, Any]]:
    """``(task, dataset_path, dataset_name)`` of every task ``name`` stands for (a task, a group's tasks, a
    tag's tasks), for the tasks that read a dataset (not a ``custom_dataset`` function or a task file of local
    data)."""
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


def check_dataset_cached(task: str, path: str, name: str | None) -> None:
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
