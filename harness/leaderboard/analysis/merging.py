"""Whether trial records can share one leaderboard: the same model, data and evaluation settings.

Sweeps run on different days (one per method family, say) merge into one leaderboard when what they were
compared on is the same: the model (and any stage it was trained in first, such as an SFT stage), the data
(and the toy world's spec), and the evaluation settings. What was swept (method, hyperparameters, seed) and
how trials were trained may differ. Records that differ in what is compared are split into groups and never
ranked together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from harness.records import TrialRecord

# Config sections that define the comparison; "eval.evaluators", "eval.extra", "eval.checkpoints" and
# "eval.readable_samples" only choose what is reported and when, "eval.cache*" only how, so they may differ
# between merged sweeps. "model.lora" is how the policy trains (an adapter or all weights), a setting to
# compare like a hyperparameter (the trials' lora.* columns); the base model, and so the reference, is the
# same either way.
COMPARED = ("model", "data", "toyworld", "eval")
NOT_COMPARED = {
    ("model", "lora"),
    ("eval", "evaluators"),
    ("eval", "extra"),
    ("eval", "checkpoints"),
    ("eval", "cache"),
    ("eval", "cache_dir"),
    ("toyworld", "cache_dir"),
    ("eval", "logprob_batch_size"),
    ("eval", "batch_size"),
    ("eval", "readable_samples"),
}


def comparison_settings(record: TrialRecord) -> dict[str, Any]:
    """The settings of ``record`` that must match for trials to be compared (flattened, dotted keys),
    including the stages its model was trained in first (``record.stages``, e.g. an SFT stage: their method
    and full settings; not their cache key or directory, which differ between machines)."""
    config = record.config or {}
    flat: dict[str, Any] = {}
    for section in COMPARED:
        for key, value in _flatten(config.get(section) or {}, (section,)).items():
            if key[:2] not in NOT_COMPARED:
                flat[".".join(key)] = value
    for name, stage in (record.stages or {}).items():
        compared = {"method": stage.get("method"), "settings": stage.get("settings") or {}}
        flat.update(
            {".".join(key): value for key, value in _flatten(compared, ("stages", str(name))).items()}
        )
    return flat


def _flatten(mapping: dict[str, Any], prefix: tuple[str, ...]) -> dict[tuple[str, ...], Any]:
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, (*prefix, str(key))))
        else:
            flat[(*prefix, str(key))] = value
    return flat


def setting_key(record: TrialRecord) -> str:
    """A short hash of :func:`comparison_settings` (records with equal keys can be merged)."""
    payload = json.dumps(comparison_settings(record), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def group_records(records: Sequence[TrialRecord]) -> dict[str, list[TrialRecord]]:
    """Records grouped by :func:`setting_key`, largest group first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(setting_key(r), []).append(r)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def differing_settings(groups: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """For several groups: each setting whose value differs between them, with one value per group."""
    settings = [comparison_settings(g[0]) for g in groups.values()]
    keys = sorted({k for s in settings for k in s})
    return {
        k: [s.get(k) for s in settings]
        for k in keys
        if len({json.dumps(s.get(k), default=str) for s in settings}) > 1
    }
