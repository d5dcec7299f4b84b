"""What the reports say about how checkpoints were chosen: on selection prompts, or on the reported ones.

Each trial's checkpoint is chosen on selection prompts with their own sampling seed and reported on test
prompts disjoint from them (:mod:`harness.trial.selection`); the record says what was used
(``record.selection``). :func:`selection_sentence` turns that into the one sentence the reports' introductions
carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.records import TrialRecord


def _setup(records: Sequence[TrialRecord]) -> dict[str, Any] | None:
    """Selection and test settings of the first record that was evaluated (None: no record was)."""
    for record in records:
        if not record.checkpoints or record.eval_prompts is None:
            continue
        eval_cfg = (record.config or {}).get("eval") or {}
        return {
            "selection": record.selection,
            "test_prompts": record.eval_prompts,
            "test_seed": eval_cfg.get("seed"),
        }
    return None


def selection_sentence(records: Sequence[TrialRecord]) -> str:
    """One sentence: checkpoints chosen on N selection prompts (seed s), every score from M disjoint test
    prompts (seed t); or that choosing and reporting shared prompts, so that the scores are optimistic. ''
    without any evaluated record."""
    setup = _setup(records)
    if setup is None:
        return ""
    selection, m = setup["selection"], setup["test_prompts"]
    t = f" (sampling seed {setup['test_seed']})" if setup["test_seed"] is not None else ""
    if selection is None or not selection.num_prompts:
        why = (
            "eval.selection.num_prompts=0"
            if selection is not None
            else "these records predate selection prompts"
        )
        return (
            f"Checkpoints are chosen on the same {m} prompts{t} that every score shown comes from ({why}), "
            "so the scores of checkpoints chosen before the final one are optimistic."
        )
    n, s = selection.num_prompts, selection.seed
    if not selection.disjoint:
        return (
            f"Checkpoints are chosen on {n} selection prompts (sampling seed {s}) that are not disjoint from "
            f"the {m} test prompts{t} every score shown comes from (too few held-out prompts), so the scores "
            "are optimistic."
        )
    return (
        f"Checkpoints are chosen on {n} selection prompts (sampling seed {s}); every score shown comes from "
        f"{m} disjoint test prompts{t.replace('sampling seed', 'seed')}."
    )
