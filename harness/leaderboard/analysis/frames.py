"""Trial records as pandas tables: one row per evaluated checkpoint, and the trials they belong to.

This module only reshapes records (tolerating partial ones: a record without checkpoints, hyperparameters or
timings still gives a row); choosing each trial's best checkpoint and ranking live in
:mod:`harness.leaderboard.analysis.ranking`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Number
from typing import Any

import pandas as pd

from harness.leaderboard.analysis import columns, knobs
from harness.records import TrialRecord

#: Prefix of the checkpoint columns measured on the selection prompts (``sel_gold_reward``, ``sel_kl``, ...).
SELECTION_PREFIX = "sel_"


def trial_id(record: TrialRecord) -> str:
    """A trial's identifier: its record's trial_id, else its directory, else the file it was read from."""
    return str(record.trial_id or record.trial_dir or (str(record.path) if record.path else None) or "?")


def _overridden_keys(record: TrialRecord) -> set[str]:
    """Hyperparameter names the trial's command line set (``method.<key>=...``, ``model.lora.<key>=...`` or
    ``seed=...``)."""
    keys = set()
    for override in record.overrides or []:
        key = str(override).lstrip("+~").split("=", 1)[0]
        if key.startswith("method."):
            keys.add(key[len("method.") :])
        elif key.startswith("model.lora."):
            keys.add(key[len("model.") :])
        elif key == "seed":
            keys.add(key)
    return keys


def varying_hyperparameters(records: Sequence[TrialRecord]) -> list[str]:
    """Hyperparameter names a sweep varied: those that differ between the trials of one method (or that only
    some of them have), and those set on the trials' command lines whose values differ between trials.
    Settings that differ only because the methods' own defaults differ are not swept; :func:`method_settings`
    lists them."""
    by_method: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        by_method.setdefault(r.method, []).append(r.hyperparameters or {})
    swept: set[str] = set()
    for hps in by_method.values():
        for k in {k for hp in hps for k in hp}:
            if any(k not in hp for hp in hps) or len({repr(hp[k]) for hp in hps}) > 1:
                swept.add(k)
    for k in set().union(*(_overridden_keys(r) for r in records)) - swept:
        values = {repr((r.hyperparameters or {}).get(k)) for r in records}
        if len(values) > 1:
            swept.add(k)
    return sorted(swept)


def method_settings(records: Sequence[TrialRecord], swept: Sequence[str]) -> pd.DataFrame:
    """One row per method: its hyperparameters that are the same in all its trials (the swept ones are the
    trials' own columns), as ``key=value`` text (``key (paper's name)=value`` where the method's paper names
    it otherwise), so that methods compared at their defaults show them."""
    by_method: dict[Any, dict[str, Any]] = {}
    names = knobs.paper_names(records)
    for r in records:
        fixed = {k: v for k, v in (r.hyperparameters or {}).items() if k not in swept}
        by_method.setdefault(r.method, fixed)
    rows = [
        {
            "method": method,
            "settings": ", ".join(
                f"{knobs.label(k, names.get(str(method)))}={format_value(v)}"
                for k, v in sorted(fixed.items())
            ),
        }
        for method, fixed in sorted(by_method.items(), key=lambda item: str(item[0]))
    ]
    return pd.DataFrame(rows)


def checkpoints_frame(
    records: Sequence[TrialRecord], swept: Sequence[str], declared: columns.Declarations
) -> pd.DataFrame:
    """One row per evaluated checkpoint of every record: trial, method, step, final, swept values, every
    metric (by its column, see :mod:`harness.leaderboard.analysis.columns`), every metric on the selection
    prompts (``sel_<column>``, when the checkpoint has them: ``checkpoints[i].selection``), health flags."""
    rows = []
    for r in records:
        hp = r.hyperparameters or {}
        for c in r.checkpoints or []:
            if not c.metrics:
                continue
            selection = columns.metric_row(c.selection_metrics or {}, declared)
            rows.append(
                {
                    "trial_id": trial_id(r),
                    "method": r.method,
                    "step": c.step,
                    "final": bool(c.final),
                    **{k: hp.get(k) for k in swept},
                    **columns.metric_row(c.metrics, declared),
                    **{f"{SELECTION_PREFIX}{k}": v for k, v in selection.items()},
                    "health": ", ".join(c.health or []),
                }
            )
    return pd.DataFrame(rows)


def samples_frame(records: Sequence[TrialRecord]) -> pd.DataFrame:
    """One row per readable sample of every checkpoint that has them (``checkpoints[i].samples``, see
    :mod:`harness.evaluation.readable`): trial_id, method, step, prompt_index (the held-out prompt's
    position), prompt, reference and policy completions, then per score ``reference_<name>`` and
    ``policy_<name>`` (a side the score does not have is left out). Records without samples give no rows."""
    rows = []
    for r in records:
        for c in r.checkpoints or []:
            for index, sample in enumerate(c.samples or []):
                row = {
                    "trial_id": trial_id(r),
                    "method": r.method,
                    "step": c.step,
                    "prompt_index": index,
                    "prompt": sample.get("prompt"),
                    "reference": sample.get("reference"),
                    "policy": sample.get("policy"),
                }
                for name, sides in (sample.get("scores") or {}).items():
                    row.update(
                        {f"{side}_{name}": sides[side] for side in ("reference", "policy") if side in sides}
                    )
                rows.append(row)
    return pd.DataFrame(rows)


def trial_info(record: TrialRecord, swept: Sequence[str]) -> dict[str, Any]:
    """The per-trial values that do not depend on which checkpoint is chosen (the reference's metrics, cost,
    status, how to reproduce it)."""
    hp = record.hyperparameters or {}
    memory = record.peak_memory
    return {
        "trial_id": trial_id(record),
        "method": record.method,
        **{k: hp.get(k) for k in swept},
        "base": record.reference_metrics
        or {},  # the reference's metrics: the objective's is base_<objective>
        "health": ", ".join(f["flag"] for f in record.health or []),
        "train_s": (record.timings or {}).get("train_s"),
        "peak_mem_mb": (memory.cuda_peak_mb or memory.rss_peak_mb) if memory is not None else None,
        "models": record.models_in_memory,
        "status": record.status,
        "reason": record.error_message,
        "eval_prompts": record.eval_prompts,
        "overrides": " ".join(record.overrides or []),
        "record": str(record.path) if record.path else None,
    }


def is_missing(value: Any) -> bool:
    """Whether a table cell is empty (None, NaN, NA); strings and containers never are."""
    if value is None or isinstance(value, (str, bytes, list, tuple, dict)):
        return value is None
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def is_number(value: Any) -> bool:
    """Whether a cell holds a number (booleans are not numbers here)."""
    return isinstance(value, Number) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """A cell's text: blank for missing values, integers as such, floats to three decimals (three
    significant digits below 0.001), anything else as ``str``."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_number(value):
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            return str(number)
        if number == int(number) and abs(number) < 1e15 and not isinstance(value, float):
            return str(int(number))
        if number != 0 and abs(number) < 1e-3:
            return f"{number:.3g}"
        return f"{number:.3f}".rstrip("0").rstrip(".")
    return str(value)


def reference_values(
    records: Sequence[TrialRecord], objective: str | None, declared: columns.Declarations
) -> tuple[float | None, float | None]:
    """The reference (untrained) model's ``objective`` on the test and on the selection prompts, from the
    first record that has each (every trial of one leaderboard shares the reference evaluation); None where
    unknown."""
    found: list[float | None] = [None, None]
    for record in records if objective else []:
        selection = record.reference.selection if record.reference is not None else None
        for i, metrics in enumerate((record.reference_metrics, selection.metrics if selection else None)):
            value = columns.metric_row(metrics or {}, declared).get(objective) if found[i] is None else None
            if isinstance(value, int | float) and math.isfinite(value):
                found[i] = float(value)
    return found[0], found[1]


#: A method's setting when no swept key has a value of its own.
ONE_SETTING = "(one setting)"


def setting_text(keys: Sequence[str], values: Sequence[Any], names: Mapping[str, str] | None = None) -> str:
    """A setting's swept values as the reports name it, ``beta (tau)=0.5`` (each key with its paper's name,
    ``names``); the method and a key the method has no value of (another method's knob) are left out."""
    parts = [
        f"{knobs.label(k, names)}={format_value(v)}"
        for k, v in zip(keys, values, strict=True)
        if k != "method" and not is_missing(v) and v != ""
    ]
    return ", ".join(parts) or ONE_SETTING
