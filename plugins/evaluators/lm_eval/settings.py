"""The ``eval.lm_eval`` settings of the lm_eval evaluator: their declarations (:data:`OPTIONS`), and
:func:`read_settings`, which fills in the defaults, resolves the include paths and checks every value.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.plugin import ConfigError, Option, UnknownNameError
from harness.toyworld.lmeval_tasks import TASKS_DIR

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
