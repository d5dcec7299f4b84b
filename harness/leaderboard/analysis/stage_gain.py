"""What a stage before training gained over the base model: with ``model.sft`` the trials' reference (the
baseline every checkpoint is compared with) is the SFT model, so the base -> SFT gain is read here instead.

The stage is a trial of its own, trained once per sweep; its reference is the base model, evaluated on the
same prompts with the same evaluators (through the reference-evaluation cache) and its final checkpoint is the
SFT model, evaluated against the base (KL to it, win rate over it). :meth:`harness.plugin.Stage.note_in`
copies both into each trial's record (``stages.<name>.base_metrics`` and ``stages.<name>.metrics``); this
module tabulates them, from the first record that has them (every trial of a leaderboard shares its stages,
:mod:`harness.leaderboard.analysis.merging`), as the baseline of the ranked trials is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.leaderboard.analysis import columns
from harness.records import TrialRecord

#: The label of the base model's row; a stage's row is ``<name> (stage)``.
BASE = "base model"


def stage_evaluations(records: Sequence[TrialRecord]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each stage's (base model's metrics, stage model's metrics), by stage name, from the first record that
    has both."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for record in records:
        for name, stage in (record.stages or {}).items():
            base, final = stage.get("base_metrics"), stage.get("metrics")
            if name not in found and base and final:
                found[str(name)] = (dict(base), dict(final))
    return found


def stage_gain_table(
    records: Sequence[TrialRecord], declared: columns.Declarations, shown: Sequence[str]
) -> pd.DataFrame:
    """Per stage, a row for the base model and one for the stage's model (``sft (stage)``), with the metric
    columns of ``shown`` (the ranked trials' columns, in their order) that either row has; empty without a
    stage evaluation."""
    rows = []
    for name, (base, final) in stage_evaluations(records).items():
        rows.append({"model": BASE, **columns.metric_row(base, declared)})
        rows.append({"model": f"{name} (stage)", **columns.metric_row(final, declared)})
    if not rows:
        return pd.DataFrame()
    present = {key for row in rows for key in row}
    return pd.DataFrame(rows, columns=["model", *(c for c in shown if c in present and c != "model")])


def gain_sentence(table: pd.DataFrame, objective: str | None) -> str:
    """One sentence on the objective: the base model's value, the stage model's and the difference, and its KL
    from the base ('' when the table lacks the objective)."""
    if table.empty or not objective or objective not in table.columns or len(table) < 2:
        return ""
    base, stage = table.iloc[0], table.iloc[1]
    before, after = base[objective], stage[objective]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (before, after)):
        return ""
    kl = stage.get("kl")
    at = f", at a KL of {kl:.3g} nats from the base model" if isinstance(kl, (int, float)) else ""
    name = str(stage["model"]).replace(" (stage)", " stage")
    return f"The {name} moved **{objective}** from {before:.3f} to {after:.3f} ({after - before:+.3f}){at}."
