"""Optuna sweeps end to end through the command line (hydra/sweeper=optuna) on the tiny toy world.

Resume, SIGKILL mid-trial, two workers on one study, parallel trials through the joblib launcher, pruning from
the trial's process, a two-objective study whose Pareto front the leaderboard marks, optuna-dashboard, and
configuration errors that stop the sweep before any compute.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from harness.leaderboard.analysis import ranking
from harness.sweep import study as st
from harness.sweep.trials import counted_trials
from tests.conftest import run_cli

optuna.logging.set_verbosity(optuna.logging.WARNING)

QUICK = [
    "method.max_steps=8",
    "train.num_checkpoints=2",
    "method.batch_size=4",
    "eval.num_prompts=8",
    "eval.max_new_tokens=12",
    "eval.evaluators=[gold_reward,kl]",
    "eval.checkpoints=all",
    "train.save_checkpoints=false",
    "leaderboard.print=false",
]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def replaced(args, *later):
    """``args`` with ``later`` overrides replacing those of the same keys (the command line refuses a key
    given twice)."""
    keys = {_key(o) for o in later}
    return [a for a in args if _key(a) not in keys] + list(later)


def sweep_args(tiny_world, *extra):
    return ["-m", "hydra/sweeper=optuna", *tiny_world, *replaced(QUICK, *extra)]


def load(sweep_dir: Path):
    settings = st.StudySettings.load(sweep_dir / st.SETTINGS_NAME)
    return optuna.load_study(study_name=settings.study_name, storage=st.open_storage(settings.storage))


def records(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("*/trial.json")}


@pytest.mark.slow
def test_resume_runs_only_missing_trials_and_the_report_has_importances_and_a_dashboard(tiny_world, tmp_path):
    args = sweep_args(
        tiny_world,
        "method=dpo",
        "hydra.sweeper.n_trials=3",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.sampler.seed=0",
    )
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "multirun").iterdir()  # the default name is stable: optuna-dpo-<digest>
    assert sweep_dir.name.startswith("optuna-dpo-") and "0 of 3 planned trials done" in first.stdout
    assert (
        "search dpo: method.beta: log [0.02, 0.5]" in first.stdout
    )  # DPO's suggested space, from its plugin

    again = run_cli(args, cwd=tmp_path)  # the same command: nothing left to do
    assert again.returncode == 0 and "3 of 3 planned trials done" in again.stdout
    assert "Launching" not in again.stdout + again.stderr
    more = run_cli(replaced(args, "hydra.sweeper.n_trials=4"), cwd=tmp_path)  # resume, extend the study
    assert more.returncode == 0, more.stderr[-3000:]
    assert "3 of 4 planned trials done" in more.stdout and list((tmp_path / "multirun").iterdir()) == [
        sweep_dir
    ]

    study = load(sweep_dir)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({(t.params["dpo.beta"], t.params["dpo.learning_rate"]) for t in trials}) == 4
    recs = records(sweep_dir)
    assert sorted(recs) == [0, 1, 2, 3] and all(r["status"] == "completed" for r in recs.values())
    for t in trials:  # the record is the trial it claims to be, and Optuna's value is the leaderboard's
        assert recs[t.number]["hyperparameters"]["beta"] == t.params["dpo.beta"]
    table = pd.read_csv(tmp_path / "leaderboards" / sweep_dir.name / "leaderboard.csv")
    # Optuna's value is the leaderboard's chosen checkpoint's value on the selection prompts (never a test
    # score); the leaderboard ranks by the test value of that same checkpoint.
    by_id = dict(zip(table["trial_id"], table["selection_objective"], strict=True))
    for t in trials:
        assert by_id[f"{sweep_dir.name}/{t.number}"] == pytest.approx(t.value)
    best = table.loc[table["selection_objective"].idxmax(), "trial_id"]
    assert best == f"{sweep_dir.name}/{study.best_trial.number}"

    md = (tmp_path / "leaderboards" / sweep_dir.name / "leaderboard.md").read_text()
    assert "## Optuna study" in md and "4 complete" in md and "maximize gold_reward" in md
    importances = pd.read_csv(tmp_path / "leaderboards" / sweep_dir.name / "importances.csv")
    assert set(importances["param"]) == {"beta", "learning_rate"} and set(importances["method"]) == {"dpo"}
    assert importances["importance"].sum() == pytest.approx(1.0)

    # The study's storage names its trials too: the same leaderboard, rebuilt from the journal file alone.
    rebuilt = run_cli(
        [str(sweep_dir / st.JOURNAL_NAME), "--out", "from-journal"],
        cwd=tmp_path,
        module="harness.leaderboard",
    )
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    again_table = pd.read_csv(tmp_path / "from-journal" / "leaderboard.csv")
    assert sorted(again_table["trial_id"]) == sorted(table["trial_id"])

    _check_dashboard(sweep_dir / st.JOURNAL_NAME, study.study_name, 4)


def _check_dashboard(journal: Path, study_name: str, n_trials: int) -> None:
    """optuna-dashboard (the real package) serves the study from the journal file."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = Path(sys.executable).with_name("optuna-dashboard")  # the package's own command line
    server = subprocess.Popen(
        [str(command), str(journal), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.load(response)["study_summaries"]
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "optuna-dashboard did not start"
                time.sleep(0.5)
        (summary,) = [s for s in studies if s["study_name"] == study_name]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=30
        ) as r:
            detail = json.load(r)
        assert len(detail["trials"]) == n_trials
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_sweep_killed_mid_trial_resumes_without_duplicates_or_lost_results(tiny_world, tmp_path):
    args = sweep_args(
        tiny_world,
        "method=dpo",
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/pruner=none",
        "method.max_steps=30",
        "sweep_name=killed",
    )
    sweep_dir = tmp_path / "multirun" / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:  # kill it once the second trial is training
        deadline = time.time() + 300
        while not (
            records(sweep_dir).get(1, {}).get("status") == "running"
            and (sweep_dir / "1" / "trainer").exists()
        ):
            assert time.time() < deadline and proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert records(sweep_dir)[0]["status"] == "completed" and records(sweep_dir)[1]["status"] == "running"

    resumed = run_cli(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Optuna trial 1 was lost" in resumed.stdout and "queued again" in resumed.stdout

    study = load(sweep_dir)
    counted = counted_trials(study)
    assert len(counted) == 2 and all(t.state == TrialState.COMPLETE for t in counted)
    lost = study.trials[1]
    assert lost.state == TrialState.FAIL and st.ATTR_LOST in lost.user_attrs
    (retry,) = [t for t in counted if t.user_attrs.get(st.ATTR_RETRY_OF) == 1]
    assert retry.params == lost.params
    recs = records(sweep_dir)
    completed = sorted(n for n, r in recs.items() if r["status"] == "completed")
    assert completed == sorted(t.number for t in counted)  # one completed record per counted trial, no more
    assert recs[1]["status"] == "failed" and recs[1]["error"]["type"] == "ProcessLost"
    table = pd.read_csv(tmp_path / "leaderboards" / "killed" / "leaderboard.csv")
    assert (table["status"] == "completed").sum() == 2 and (table["status"] == "failed").sum() == 1


@pytest.mark.slow  # about 30 s; run by .ci/run (pytest -m slow)
def test_two_workers_share_one_study_safely(tiny_world, tmp_path):
    args = sweep_args(
        tiny_world,
        "method=dpo,simpo",
        "hydra.sweeper.n_trials=4",
        "hydra/sweeper/pruner=none",
        "sweep_name=shared",
    )
    command = [sys.executable, "-m", "harness", *args]
    workers = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
        assert "Traceback" not in err and "StorageInternalError" not in err
    study = load(tmp_path / "multirun" / "shared")
    counted = counted_trials(study)
    assert len(counted) == 4 and all(t.state == TrialState.COMPLETE for t in counted)
    recs = records(tmp_path / "multirun" / "shared")
    assert sorted(n for n, r in recs.items() if r["status"] == "completed") == sorted(
        t.number for t in counted
    )
    owners = {t.user_attrs[st.ATTR_OWNER]["pid"] for t in counted}
    assert owners <= {
        w.pid for w in workers
    }  # each trial was run by one of the two workers (usually both work)


@pytest.mark.slow  # about 30 s; run by .ci/run (pytest -m slow)
def test_parallel_trials_run_in_their_own_processes_through_the_joblib_launcher(tiny_world, tmp_path):
    args = sweep_args(
        tiny_world,
        "method=dpo",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        "hydra/sweeper/pruner=none",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "sweep_name=parallel",
    )
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load(tmp_path / "multirun" / "parallel").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    runners = {t.user_attrs[st.ATTR_RUNNER]["pid"] for t in trials}
    owner = trials[0].user_attrs[st.ATTR_OWNER]["pid"]
    assert len(runners) == 2 and owner not in runners


def test_the_pruner_stops_trials_from_their_own_process(tiny_world, tmp_path):
    # A threshold no objective reaches prunes every trial at its first evaluated checkpoint.
    args = sweep_args(
        tiny_world,
        "method=dpo",
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
        "+hydra.sweeper.pruner.lower=1e9",
        "sweep_name=pruned",
    )
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    study = load(tmp_path / "multirun" / "pruned")
    recs = records(tmp_path / "multirun" / "pruned")
    for t in study.get_trials():
        assert t.state == TrialState.PRUNED and list(t.intermediate_values) == [4]
        # The pruner sees the value on the selection prompts, not the reported (test) one.
        selection = recs[t.number]["checkpoints"][0]["selection"]["metrics"]["gold_reward"]
        assert t.intermediate_values[4] == pytest.approx(selection)
    for r in recs.values():
        assert r["status"] == "pruned" and r["error"]["step"] == 4 and r["train"]["steps"] == 4
        assert [c["step"] for c in r["checkpoints"]] == [4]  # training stopped: no final checkpoint at step 8
    md = (tmp_path / "leaderboards" / "pruned" / "leaderboard.md").read_text()
    assert "(pruned): pruned at step 4 by ThresholdPruner (objective so far" in md


@pytest.mark.slow
def test_a_step_budget_stops_the_search_before_n_trials(tiny_world, tmp_path):
    args = sweep_args(
        tiny_world,
        "method=dpo",
        "hydra.sweeper.n_trials=10",
        "hydra.sweeper.budget_steps=12",
        "hydra/sweeper/pruner=none",
        "sweep_name=budget",
    )
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the budget of 12 training steps is spent (16 steps)" in result.stdout
    study = load(tmp_path / "multirun" / "budget")
    assert [t.state for t in study.get_trials()] == [
        TrialState.COMPLETE
    ] * 2  # 8 + 8 steps: the budget is spent


@pytest.mark.slow  # about 30 s; run by .ci/run (pytest -m slow)
def test_a_two_objective_study_s_pareto_front_is_the_front_of_the_selection_values(tiny_world, tmp_path):
    args = sweep_args(
        tiny_world,
        "method=dpo,simpo",
        "hydra.sweeper.n_trials=5",
        "hydra/sweeper/sampler=nsga2",
        "hydra.sweeper.objectives=[auto,kl]",
        "hydra.sweeper.directions=[maximize,minimize]",
        "hydra.sweeper.sampler.seed=0",
        "sweep_name=pareto",
    )
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "does not prune multi-objective studies" in result.stdout
    study = load(tmp_path / "multirun" / "pareto")
    front = {f"pareto/{t.number}" for t in study.best_trials}
    # Optuna's front is on the selection prompts (it never sees a test score);
    # the leaderboard's ★ on the test ones.
    table = pd.read_csv(tmp_path / "leaderboards" / "pareto" / "leaderboard.csv")
    points = pd.read_csv(tmp_path / "leaderboards" / "pareto" / "checkpoints.csv")
    chosen = table[["trial_id", "step"]].merge(points, on=["trial_id", "step"])
    on_selection = ranking.pareto_front(chosen["sel_gold_reward"], chosen["sel_kl"])
    assert front and set(chosen.loc[on_selection, "trial_id"]) == front
    assert table["pareto"].any()
    md = (tmp_path / "leaderboards" / "pareto" / "leaderboard.md").read_text()
    assert "maximize gold_reward, minimize kl" in md and "★" in md


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["method=dpo", "method.beta=interval(-1.0, 0.5)"], "method.beta=-1.0 is invalid for method dpo"),
        # the same path in a fresh process each (seconds of imports): the slow tier runs the rest
        pytest.param(
            ["method=dpo,simpo", "hydra/sweeper/sampler=grid"],
            "grid sampler cannot search a conditional space",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["method=dpo", "eval.checkpoints=final"],
            "Pruning needs every checkpoint evaluated",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["method=dpo", "method.bta=interval(0.1, 0.5)"],
            "has the option method.bta",
            marks=pytest.mark.slow,
        ),
        (
            ["method=dpo", "hydra.sweeper.objectives=[rep_token]"],
            "Unknown metric for hydra.sweeper.objectives 'rep_token'",
        ),
        pytest.param(
            ["method=dpo", "hydra.sweeper.objectives=[kl,auto]"],
            "'auto' may only be the first objective",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["method=dpo", "hydra.sweeper.prune_warmup=1.5"],
            "hydra.sweeper.prune_warmup=1.5 is invalid",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["method=dpo", "hydra.sweeper.prune_value=median"],
            "hydra.sweeper.prune_value='median' is invalid",
            marks=pytest.mark.slow,
        ),
        # a database driver that is not installed: named with the fix, the URL's password hidden
        pytest.param(
            ["method=dpo", "hydra.sweeper.storage=postgresql+pg8000://me:s3cret@127.0.0.1:1/db"],
            "storage postgresql+pg8000://me:***@127.0.0.1:1/db needs the pg8000 driver",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_sweeps_stop_before_any_compute_with_one_line(tiny_world, tmp_path, extra, message):
    result = run_cli([*sweep_args(tiny_world, *extra)], cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("harness: error: ") and message in last
    assert result.stderr.count("harness: error: ") == 1
    assert not list(tmp_path.glob("multirun/*/0"))


def test_an_objective_alone_is_optimised_in_its_declared_direction(tiny_world, tmp_path):
    args = sweep_args(
        tiny_world,
        "method=dpo",
        "hydra.sweeper.n_trials=1",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.objectives=[kl]",
        "sweep_name=kl",
    )
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "minimize kl" in result.stdout
    assert st.StudySettings.load(tmp_path / "multirun" / "kl" / st.SETTINGS_NAME).directions == ["minimize"]
    assert [d.name for d in load(tmp_path / "multirun" / "kl").directions] == ["MINIMIZE"]
