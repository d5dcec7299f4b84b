"""Data source ``files``: preference data from a local file or directory, or a Hub dataset id.

Loading goes through :func:`harness.data.load_preference_data` (``data.columns`` and the recognised schemas,
format detection, validation with row numbers, ties dropped). The file is read and validated when the config
is validated, so malformed data stops the run before any compute; the result is memoised, so each trial of a
sweep does not read it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache

from omegaconf import DictConfig

from harness.plugin import ConfigError, PreferenceData, hookimpl, load_preference_data

SOURCE = "files"


@lru_cache(maxsize=8)
def _load(
    path: str,
    split: str,
    eval_split: str | None,
    eval_fraction: float,
    seed: int,
    columns: tuple[tuple[str, str | None], ...],
    limits: tuple[tuple[str, int | None], ...] = (),
) -> PreferenceData:
    return load_preference_data(
        path,
        split=split,
        eval_split=eval_split,
        eval_fraction=eval_fraction,
        seed=seed,
        columns=dict(columns) or None,
        limits=dict(limits),
    )


#: The data.* settings that bound what is read (harness.data.limits.DataLimits).
LIMITS = ("max_rows", "max_row_bytes", "max_field_bytes", "max_depth")


def _load_cfg(cfg: DictConfig) -> PreferenceData:
    d = cfg.data
    if d.get("path") in (None, "", "???"):
        raise ConfigError(
            "data=files needs data.path=<.jsonl/.json/.csv/.parquet file, dataset dir or Hub id>."
        )
    fraction = float(d.get("eval_fraction") or 0.0)
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"data.eval_fraction={fraction} is invalid; use a fraction in [0, 1).")
    columns = d.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise ConfigError(
            f"data.columns={columns!r} is invalid; give a mapping of your columns to the harness's, e.g. "
            "data.columns={question: prompt, response_j: chosen, response_k: rejected}."
        )
    mapping = tuple((str(k), None if v is None else str(v)) for k, v in columns.items())
    split = str(d.get("split") or "train")
    limits = tuple((key, d.get(key)) for key in LIMITS)
    data = _load(str(d.path), split, d.get("eval_split"), fraction, int(cfg.seed), mapping, limits)
    limit = d.get("max_train_examples")
    if limit:
        data = replace(data, train=data.train.select(range(min(int(limit), len(data.train)))))
    return data


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """Read and validate the data file now, before any compute."""
    if cfg.data.source == SOURCE:
        data = _load_cfg(cfg)
        if not data.eval_prompts:
            raise ConfigError(
                f"data {cfg.data.path!r} has no held-out prompts to evaluate on; set "
                "data.eval_split=<split> or data.eval_fraction=0.05."
            )


@hookimpl
def harness_data_load(cfg: DictConfig) -> PreferenceData | None:
    """The configured file's preference data, or None if ``data.source`` is not ``files``."""
    if cfg.data.source != SOURCE:
        return None
    return _load_cfg(cfg)
