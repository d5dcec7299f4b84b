"""Human-readable summaries of one trial, printed when a trial ends."""

from __future__ import annotations

from typing import Any

from harness.records import TrialRecord


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def trial_summary(record: TrialRecord) -> str:
    """A few lines: status, hyperparameters, the final metrics beside the reference model's,
    cost, record path."""
    hp = ", ".join(f"{k}={v}" for k, v in record.hyperparameters.items() if not k.startswith("trl."))
    lines = [f"[harness] {record.method} ({hp}): {record.status}"]
    if record.error is not None:
        lines.append(f"  reason: {record.error.message}")
    final_entry = record.final_checkpoint()
    final = final_entry.metrics if final_entry is not None else {}
    reference = record.reference_metrics or {}
    keys = [k for k in dict.fromkeys([*reference, *final]) if not k.endswith("_se")]
    if keys:
        width = max(22, *(len(k) + 2 for k in keys))
        lines.append(f"  {'metric':<{width}}{'reference':>12}{'final':>12}")
        for key in keys:
            se = final.get(f"{key}_se")
            suffix = f"  ± {se:.3f}" if isinstance(se, float) else ""
            lines.append(f"  {key:<{width}}{_num(reference.get(key)):>12}{_num(final.get(key)):>12}{suffix}")
        lines.append(f"  on {record.eval_prompts} held-out prompts; kl in nats per sequence")
    for flag in record.health or []:
        lines.append(f"  health: {flag['flag']}: {flag['message']}; fix: {flag['fix']}")
    t = record.timings
    memory = record.peak_memory
    peak = (memory.cuda_peak_mb or memory.rss_peak_mb) if memory is not None else None
    lines.append(
        f"  steps {record.train.steps}, train {t.get('train_s', 0):.1f} s, "
        f"total {t.get('total_s', 0):.1f} s, peak memory {peak} MB"
    )
    where = record.path or f"{record.trial_dir or ''}/trial.json"
    lines.append(f"  record: {where}")
    return "\n".join(lines)
