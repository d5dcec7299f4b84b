"""The Optuna study's bookkeeping: objective values by the leaderboard's rule, lost trials and their retry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace

import optuna
import pytest
from optuna.trial import TrialState

from harness.records import Host, read_record, write_record
from harness.sweep import study as st
from harness.sweep.liveness import lost_reason, this_process
from harness.sweep.stored import decode_record
from harness.sweep.trials import counted_trials, finish_trial, recover_lost_trials, reuse_twin
from tests.helpers import checkpoint as make_checkpoint
from tests.helpers import make_record

optuna.logging.set_verbosity(optuna.logging.WARNING)


def record(status, checkpoints=(), **extra):
    return make_record(status=status, checkpoints=list(checkpoints), **extra)


def checkpoint(step, gold, kl, final=False):
    return make_checkpoint(step, {"gold_reward": gold, "kl": kl}, final=final)


def settings(tmp_path, **kw):
    return st.StudySettings(
        study_name="s",
        storage=str(tmp_path / "optuna.journal"),
        objectives=["gold_reward"],
        directions=["maximize"],
        **kw,
    )


@pytest.mark.unit
def test_a_trials_value_is_its_best_checkpoint_within_the_kl_budget(tmp_path):
    cps = [checkpoint(10, 0.2, 1.0), checkpoint(20, 0.5, 4.0), checkpoint(30, 0.9, 12.0, final=True)]
    assert st.objective_values(cps, settings(tmp_path, kl_budget=10.0)) == ([0.5], 20)
    assert st.objective_values(cps, settings(tmp_path, kl_budget=None)) == ([0.9], 30)
    assert st.objective_values(cps, settings(tmp_path, kl_budget=0.5)) == (
        [0.9],
        30,
    )  # none inside: the final one
    two = st.StudySettings("s", "x", ["auto", "kl"], ["maximize", "minimize"], kl_budget=10.0)
    assert st.objective_values(cps, two) == ([0.5, 4.0], 20)
    assert st.objective_values([], two) == (None, None)
    with pytest.raises(Exception, match="give one direction per objective"):
        st.check_objectives(["auto", "kl", "win_rate"], ["maximize", "minimize"])


@pytest.mark.unit
def test_objectives_take_their_declared_direction_unless_directions_are_given():
    from harness.errors import UnknownNameError
    from harness.plugin.manager import get_plugin_manager
    from harness.sweep.preflight import declared_directions

    pm = get_plugin_manager([])
    evaluators = [pm.evaluator("gold_reward"), pm.evaluator("kl"), pm.evaluator("preference_accuracy")]
    assert declared_directions(["kl"], evaluators) == ["minimize"]
    assert declared_directions(["gold_reward", "pref_acc"], evaluators) == [
        "maximize",
        "maximize",
    ]  # by column
    assert st.check_objectives(["kl"], None, ["minimize"]) == (["kl"], ["minimize"])
    assert st.check_objectives(["kl"], ["maximize"], ["minimize"]) == (["kl"], ["maximize"])  # given wins
    assert st.check_objectives(["gold_reward", "kl"], [], ["maximize", "minimize"])[1] == [
        "maximize",
        "minimize",
    ]
    with pytest.raises(UnknownNameError, match="Unknown metric for hydra.sweeper.objectives 'rep_token'"):
        declared_directions(["rep_token"], evaluators)
    with pytest.raises(Exception, match=r"objectives=\[auto\] means gold_reward here") as info:
        declared_directions(["gold_reward"], [pm.evaluator("kl")], auto_first=True)
    assert "\n" not in str(info.value)


@pytest.fixture()
def dead_process():
    """The identity of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    import psutil

    identity = {
        "host": socket.gethostname(),
        "pid": proc.pid,
        "started": psutil.Process(proc.pid).create_time(),
    }
    proc.kill()
    proc.wait()
    return identity


def frozen(user_attrs):
    return optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=user_attrs)


def test_liveness_by_process_and_by_heartbeat(dead_process):
    now = time.time()
    assert lost_reason(frozen({st.ATTR_OWNER: dead_process}), 600) is not None
    assert lost_reason(frozen({st.ATTR_OWNER: this_process()}), 600) is None
    assert lost_reason(frozen({st.ATTR_OWNER: dead_process, st.ATTR_RUNNER: this_process()}), 600) is None
    elsewhere = {"host": "another-machine", "pid": 1, "started": 0.0}
    assert lost_reason(frozen({st.ATTR_RUNNER: elsewhere, st.ATTR_HEARTBEAT: now - 10}), 600) is None
    assert "no heartbeat for" in lost_reason(
        frozen({st.ATTR_RUNNER: elsewhere, st.ATTR_HEARTBEAT: now - 700}), 600
    )


def _running_trial(study, trial_dir, owner):
    trial = study.ask()
    trial.suggest_float("dpo.beta", 0.01, 1.0)  # an enqueued retry gets its fixed value back
    trial.set_user_attr(st.ATTR_OWNER, owner)
    trial.set_user_attr(st.ATTR_DIR, str(trial_dir))
    trial_dir.mkdir(parents=True, exist_ok=True)
    write_record(trial_dir / "trial.json", record("running"))
    return trial


def test_a_lost_trial_is_failed_retried_once_with_its_parameters_and_never_duplicated(tmp_path, dead_process):
    cfg = settings(tmp_path)
    study = optuna.create_study(study_name="s", storage=st.open_storage(cfg.storage))
    lost = _running_trial(study, tmp_path / "0", dead_process)
    assert recover_lost_trials(study, cfg, stale_after_s=600, max_retries=1) == [0]
    # A second worker finding the same trial does nothing more.
    assert recover_lost_trials(study, cfg, stale_after_s=600, max_retries=1) == []
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[0].user_attrs[st.ATTR_LOST].startswith("its process")
    assert trials[1].params == {} and trials[1].user_attrs[st.ATTR_RETRY_OF] == 0
    assert [t.number for t in counted_trials(study)] == [1]  # the lost one no longer counts toward the plan
    rewritten = read_record(tmp_path / "0" / "trial.json")
    assert rewritten["status"] == "failed" and "retried" in rewritten["error"]["message"]
    assert decode_record(trials[0].system_attrs) == rewritten  # the failed record travels with the study

    retry = study.ask()
    assert retry.number == 1 and retry.suggest_float("dpo.beta", 0.01, 1.0) == lost.params["dpo.beta"]
    retry.set_user_attr(st.ATTR_OWNER, dead_process)
    retry.set_user_attr(st.ATTR_DIR, str(tmp_path / "1"))
    assert recover_lost_trials(study, cfg, stale_after_s=600, max_retries=1) == [1]
    # Lost again: failed for good, counted, not queued a third time.
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.FAIL]
    assert [t.number for t in counted_trials(study)] == [1]


def test_a_dead_trial_whose_record_is_complete_is_told_its_result_not_rerun(tmp_path, dead_process):
    cfg = settings(tmp_path)
    study = optuna.create_study(study_name="s", storage=st.open_storage(cfg.storage))
    _running_trial(study, tmp_path / "0", dead_process)
    write_record(
        tmp_path / "0" / "trial.json",
        record("completed", [checkpoint(4, 0.25, 1.5), checkpoint(8, 0.4, 2.5, final=True)]),
    )
    assert recover_lost_trials(study, cfg, stale_after_s=600, max_retries=1) == [0]
    (t,) = study.get_trials()
    assert t.state == TrialState.COMPLETE and t.value == 0.4 and t.user_attrs[st.ATTR_STEP] == 8


@pytest.mark.unit
def test_finish_trial_tells_pruned_failed_and_the_kl_constraint(tmp_path):
    cfg = settings(tmp_path, kl_budget=2.0, kl_constraint=True)
    study = optuna.create_study(study_name="s", storage=st.open_storage(cfg.storage))
    outcomes = {
        "completed": record("completed", [checkpoint(4, 0.3, 3.0, final=True)]),
        "pruned": record("pruned", error={"message": "pruned", "step": 4}),
        "failed": record("failed", error={"message": "loss became nan"}),
    }
    for expected, rec in outcomes.items():
        assert finish_trial(study, study.ask(), cfg, record=rec) == expected
    done, pruned, failed = study.get_trials()
    assert done.state == TrialState.COMPLETE and done.value == 0.3
    assert optuna.trial.Trial(study, done._trial_id).constraints == {
        "kl": pytest.approx(1.0)
    }  # KL 3 > budget 2
    assert pruned.state == TrialState.PRUNED and pruned.user_attrs[st.ATTR_STEP] == 4
    assert failed.state == TrialState.FAIL and failed.user_attrs[st.ATTR_ERROR] == "loss became nan"


@pytest.mark.unit
def test_parameters_a_completed_trial_had_reuse_its_result_without_training(tmp_path):
    cfg = settings(tmp_path)
    study = optuna.create_study(study_name="s", storage=st.open_storage(cfg.storage))
    first = study.ask({"dpo.beta": optuna.distributions.CategoricalDistribution([0.1, 0.3])})
    first.set_user_attr(st.ATTR_DIR, str(tmp_path / "0"))
    write_record(tmp_path / "0" / "trial.json", record("completed", [checkpoint(8, 0.4, 2.0, final=True)]))
    finish_trial(study, first, cfg)
    study.enqueue_trial(first.params)
    again = study.ask({"dpo.beta": optuna.distributions.CategoricalDistribution([0.1, 0.3])})
    assert reuse_twin(study, again, cfg)
    twin = study.get_trials()[1]
    assert twin.state == TrialState.COMPLETE and twin.value == 0.4 and twin.user_attrs[st.ATTR_SAME_AS] == 0
    study.enqueue_trial({"dpo.beta": 0.1 if first.params["dpo.beta"] == 0.3 else 0.3})
    other = study.ask({"dpo.beta": optuna.distributions.CategoricalDistribution([0.1, 0.3])})
    assert not reuse_twin(study, other, cfg)


@pytest.mark.unit
def test_repeats_do_not_count_toward_the_plan_up_to_as_many_as_planned(tmp_path):
    study = optuna.create_study(study_name="r", storage=st.open_storage(settings(tmp_path).storage))
    for number, repeat in enumerate([False, True, False, True, True]):
        trial = study.ask()
        if repeat:
            trial.set_user_attr(st.ATTR_SAME_AS, 0)
        study.tell(trial, float(number))
    assert [t.number for t in counted_trials(study)] == [0, 1, 2, 3, 4]  # the plain count: every trial
    assert [t.number for t in counted_trials(study, 5)] == [0, 2]  # trained settings only
    assert [t.number for t in counted_trials(study, 2)] == [
        0,
        2,
        4,
    ]  # the third repeat counts: space exhausted


# ---------------------------------------------------------------------------------------------------
# Shared studies: records in the storage, the report from the storage alone, waiting for other workers.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_a_finished_trial_s_record_travels_with_the_study_in_parts(tmp_path, monkeypatch):
    from harness.sweep import stored

    monkeypatch.setattr(stored, "PART_CHARS", 50)  # MySQL's TEXT holds 64 KiB: a record is kept in parts
    cfg = settings(tmp_path)
    study = optuna.create_study(study_name="s", storage=st.open_storage(cfg.storage))
    rec = record("completed", [checkpoint(8, 0.4, 2.0, final=True)], trial_id="s/0", notes="x" * 2000)
    finish_trial(study, study.ask(), cfg, record=rec)
    (t,) = study.get_trials()
    assert t.system_attrs[stored.ATTR_RECORD]["parts"] > 1 and stored.decode_record(t.system_attrs) == rec
    assert not any(k.startswith("harness.record") for k in t.user_attrs)  # out of optuna-dashboard's view
    settings_back = stored.store_settings(study, cfg) or stored.stored_settings(study)
    assert settings_back == cfg


def _finished(study, number_dir, rec, cfg, runner=None):
    trial = study.ask()
    trial.set_user_attr(st.ATTR_DIR, str(number_dir))
    if runner:
        trial.set_user_attr(st.ATTR_RUNNER, runner)
    if rec is None:
        study.tell(trial, state=TrialState.FAIL)
    else:
        finish_trial(study, trial, cfg, record=rec)


@pytest.mark.unit
def test_the_report_reads_records_from_the_storage_and_names_missing_ones(tmp_path):
    from harness.sweep.collect import collect

    cfg = settings(tmp_path)
    study = optuna.create_study(study_name="s", storage=st.open_storage(cfg.storage))
    done = record("completed", [checkpoint(8, 0.4, 2.0, final=True)])
    write_record(tmp_path / "0" / "trial.json", replace(done, trial_id="s/0", extra={"notes": "on disk"}))
    _finished(study, tmp_path / "0", replace(done, trial_id="s/0"), cfg)
    elsewhere = {"host": "machine-b", "pid": 1, "started": 0.0}
    _finished(
        study,
        "/elsewhere/s/1",
        replace(done, trial_id="s/1", host=Host(hostname="machine-b")),
        cfg,
        elsewhere,
    )
    _finished(study, "/elsewhere/s/2", None, cfg, elsewhere)  # finished, its record nowhere to be found
    with pytest.warns(
        UserWarning, match=r"3 finished trials but only 2 records.*trial 2 \(machine-b:/elsewhere/s/2"
    ):
        found = collect([cfg.storage])
    by_id = {r["trial_id"]: r for r in found.records}
    assert sorted(by_id) == ["s/0", "s/1"] and by_id["s/0"]["notes"] == "on disk"  # the disk's record first
    assert by_id["s/1"]["_path"] == "/elsewhere/s/1/trial.json"
    (summary,) = found.summaries
    assert [(r["trial"], r["host"], r["dir"]) for r in summary["remote"]] == [
        ("s/1", "machine-b", "/elsewhere/s/1")
    ]
    assert [m["number"] for m in summary["missing"]] == [2] and summary["counts"] == {
        "complete": 2,
        "fail": 1,
    }


@pytest.mark.unit
def test_storage_urls_hide_their_password_and_name_the_missing_driver(monkeypatch):
    from omegaconf import OmegaConf

    from harness.errors import ConfigError
    from harness.sweep import storage as pg
    from harness.sweep.sweeper import OptunaSweep

    url = "postgresql://me:s3cret@db.example:5432/studies"
    assert pg.redact(url) == "postgresql://me:***@db.example:5432/studies" and pg.label(url) == "studies"
    assert pg.dashboard_form(url) == "postgresql://me@db.example:5432/studies"
    assert pg.scrub(f"failed: {url} (password s3cret)", url) == f"failed: {pg.redact(url)} (password ***)"
    monkeypatch.setattr(pg, "_known", {})
    monkeypatch.delenv(pg.ENV_STORAGE, raising=False)
    assert pg.connect_url(pg.redact(url)).endswith(
        "://me@db.example:5432/studies"
    )  # libpq: PGPASSWORD/.pgpass
    monkeypatch.setenv(pg.ENV_STORAGE, url)  # a trial's process: the full URL from the sweeper's environment
    assert "me:s3cret@" in pg.connect_url(pg.redact(url))
    monkeypatch.setattr(
        pg, "_POSTGRES_DRIVERS", (("psycopg", "no_such_psycopg"), ("psycopg2", "no_such_psycopg2"))
    )
    with pytest.raises(
        ConfigError,
        match=r"needs a PostgreSQL driver and none is installed; run pip install "
        r"'harness\[postgres\]'",
    ) as info:
        pg.check_storage(url)
    assert "s3cret" not in str(info.value)

    sweep = OptunaSweep(sampler=None, pruner=None, storage=url)  # what Hydra writes gets the redacted URL
    sweep.config = OmegaConf.create(
        {
            "hydra": {
                "sweeper": {"storage": url},
                "overrides": {"hydra": [f"hydra.sweeper.storage={url}", "hydra.sweeper.n_trials=3"]},
            }
        }
    )
    OmegaConf.set_readonly(sweep.config.hydra, True)
    sweep._hide_password()
    assert "s3cret" not in OmegaConf.to_yaml(
        sweep.config
    ) and sweep.config.hydra.sweeper.storage == pg.redact(url)
    assert sweep.config.hydra.overrides.hydra[0] == f"hydra.sweeper.storage='{pg.redact(url)}'"
    assert os.environ[pg.ENV_STORAGE] == url  # the trials' processes inherit it; Hydra never writes it


def test_a_worker_waits_for_other_workers_trials_and_runs_the_retry_of_a_lost_one(
    tmp_path, dead_process, capsys
):
    import threading

    from harness.sweep.sweeper import OptunaSweep

    cfg = settings(tmp_path)
    study = optuna.create_study(study_name="s", storage=st.open_storage(cfg.storage))
    sweep = OptunaSweep(sampler=None, pruner=None, n_trials=2, heartbeat_s=0.2)
    study.tell(study.ask(), 0.1)
    _running_trial(study, tmp_path / "1", this_process())  # alive: waited for until it ends
    threading.Timer(0.6, lambda: study.tell(1, 0.2)).start()
    assert sweep._wait_for_others(study, cfg) is False  # the plan is complete once it has ended
    assert capsys.readouterr().out.count("waiting for 1 trial(s) running in other workers (1)") == 1

    sweep.n_trials = 3
    _running_trial(
        study, tmp_path / "2", dead_process
    )  # its worker was killed: settled, and queued again here
    assert sweep._wait_for_others(study, cfg) is True
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2 + [
        TrialState.FAIL,
        TrialState.WAITING,
    ]


@pytest.mark.unit
def test_the_pruner_sees_the_value_so_far_the_latest_or_a_moving_average(tmp_path):
    from harness.sweep.reporter import pruning_value

    cps = [
        checkpoint(10, 0.2, 1.0),
        checkpoint(20, 0.8, 4.0),
        checkpoint(30, 0.4, 12.0),
    ]  # the last over budget

    def reports(kind):
        seen, previous = [], None
        for i in range(len(cps)):
            previous = pruning_value(
                cps[: i + 1], settings(tmp_path, kl_budget=10.0, prune_value=kind), {}, previous
            )
            seen.append(previous)
        return seen

    assert reports("best") == pytest.approx([0.2, 0.8, 0.8])  # the leaderboard's value so far: never falls
    assert reports("last") == pytest.approx([0.2, 0.8, 0.4])
    assert reports("ema") == pytest.approx([0.2, 0.5, 0.45])  # half on the latest checkpoint
    assert reports("peak") == pytest.approx([0.2, 0.8, 0.8])
    # peak ignores the KL budget: a trial whose KL overshoots the budget, then comes back under it,
    # is not cut for it
    cps[:] = [checkpoint(10, 0.2, 1.0), checkpoint(20, 0.9, 15.0), checkpoint(30, 0.5, 9.0)]
    assert reports("best") == pytest.approx([0.2, 0.2, 0.5])
    assert reports("peak") == pytest.approx([0.2, 0.9, 0.9])
