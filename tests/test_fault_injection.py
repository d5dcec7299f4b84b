"""The fault-injection suite: one grid in which trials raise, produce NaN (loss or weights), fail in a plugin
hook, are SIGKILLed, SIGINTed and SIGTERMed, and hit a full disk, run again with the same command until it
completes.

Every trial ends completed or recorded with its reason, no completed result is lost or written twice, and no
temporary file is left behind. The counts are printed (``pytest -s``) for the README and the closing note."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow

FAULTS = ["none", "raise", "nan_loss", "nan_weights", "hook", "kill", "sigint", "sigterm", "enospc"]
# What each run of the same command ends with: the kill takes the process, the signals end it with the shell's
# status, the full disk stops the sweep (status 1), and the last run completes what is left.
EXIT_CODES = [-9, 130, 143, 1, 0]
FINAL = {
    "none": "completed",
    "raise": "failed",
    "nan_loss": "failed",
    "nan_weights": "failed",
    "hook": "completed",
    "kill": "completed",
    "sigint": "completed",
    "sigterm": "completed",
    "enospc": "completed",
}


def _records(sweep):
    return {
        int(d.name): json.loads((d / "trial.json").read_text())
        for d in sweep.iterdir()
        if (d / "trial.json").exists()
    }


def test_a_grid_with_every_fault_ends_with_every_trial_recorded_and_nothing_lost(tiny_world, tmp_path):
    env = {"PYTHONPATH": str(REPO / "tests" / "fixtures")}
    args = [
        "-m",
        "method=fault_demo",
        "plugins=[fault_plugin]",
        f"method.fault={','.join(FAULTS)}",
        "sweep_name=faults",
        "train.num_checkpoints=2",
        "eval.evaluators=[gold_reward,kl]",
        "eval.num_prompts=8",
        "eval.selection.num_prompts=8",
        "eval.max_new_tokens=8",
        "leaderboard.print=false",
        *tiny_world,
    ]
    sweep = tmp_path / "multirun" / "faults"
    codes, first_completed = [], {}
    for _ in EXIT_CODES:
        result = run_cli(args, cwd=tmp_path, env=env)
        codes.append(result.returncode)
        records = _records(sweep)
        for num, record in records.items():
            if record["status"] == "completed":
                first_completed.setdefault(num, record["finished_at"])
                assert record["finished_at"] == first_completed[num], (
                    f"trial {num} was run again after completing"
                )
        if result.returncode in (130, 143, 1):  # one line says what happened and how to go on
            line = [x for x in result.stderr.splitlines() if x.startswith("harness: ")][-1]
            assert (
                "run the same command again to resume" in line
                and "leaderboard of the completed trials" in line
            )
    assert codes == EXIT_CODES
    records = _records(sweep)
    statuses = {FAULTS[n]: r["status"] for n, r in records.items()}
    assert statuses == FINAL
    reasons = {FAULTS[n]: (r.get("error") or {}).get("message", "") for n, r in records.items()}
    assert reasons["raise"] == "injected failure"
    assert reasons["nan_loss"].startswith("training loss became nan at step 2")
    assert reasons["nan_weights"].startswith("training diverged: the weights became NaN/inf by step 2")
    attempts = {FAULTS[n]: [a["status"] for a in r.get("attempts") or []] for n, r in records.items()}
    assert attempts["kill"] == ["running"] and attempts["sigint"] == ["interrupted"]
    assert attempts["sigterm"] == ["interrupted"] and attempts["enospc"] == ["failed"]
    hook = records[FAULTS.index("hook")]
    assert hook["plugin_errors"] == [
        {
            "plugin": "fault_plugin",
            "hook": "harness_trial_end",
            "type": "ValueError",
            "message": "injected hook failure",
        }
    ]
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert len(records) == len(FAULTS) and len(list(sweep.glob("*/trial.json"))) == len(FAULTS)
    board = (tmp_path / "leaderboards" / "faults" / "leaderboard.md").read_text()
    assert board.count("fault_demo") >= len(FAULTS)
    print(
        f"\nfault injection: {len(FAULTS) - 1} faults injected into {len(FAULTS)} trials "
        f"over {len(codes)} runs (exit codes {codes}); trials recorded {len(records)} of "
        f"{len(FAULTS)} ({sum(s == 'completed' for s in statuses.values())} completed, "
        f"{sum(s == 'failed' for s in statuses.values())} failed with their reason); "
        f"results lost 0; duplicates {len(list(sweep.glob('*/trial.json'))) - len(FAULTS)}; "
        f"temporary files left {len(leftovers)}"
    )
