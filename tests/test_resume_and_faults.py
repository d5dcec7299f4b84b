"""Nothing lost, nothing half-written: resumable grids, locks, interruptions, plugin hooks that fail, a full
disk, diverged weights, names that become paths, and Markdown that shows names instead of running them."""

from __future__ import annotations

import errno
import signal
from dataclasses import replace

import pytest
import torch

from harness import leaderboard
from harness.config.sweep_checks import check_sweep_name
from harness.errors import ConfigError, TrialFailed, TrialInterrupted, TrialPruned, disk_full
from harness.plugin import hookimpl
from harness.plugin.manager import HarnessPluginManager
from harness.records import write_record
from harness.sweep import resume
from harness.trial.checkpoints import Checkpointer, save_weights
from harness.trial.lifecycle import call_hook, failure, interrupts_raise
from tests.helpers import make_record
from tests.test_conclusions import seeded, trial

pytestmark = pytest.mark.unit


def _record(config, status="completed"):
    return make_record(
        status=status,
        method=config["method"]["name"],
        hyperparameters={},
        checkpoints=[],
        config=config,
        error=None if status == "completed" else {"message": "boom", "step": 3},
    )


def test_a_completed_trial_of_the_same_config_is_skipped_and_another_config_is_refused(tmp_path):
    a = {"method": {"name": "dpo", "beta": 0.1}, "seed": 1, "sweep_name": "x", "leaderboard": {"print": True}}
    b = {**a, "method": {"name": "simpo", "beta": 2.0}}
    write_record(tmp_path / "0" / "trial.json", _record(a))
    write_record(tmp_path / "1" / "trial.json", _record(b, status="failed"))
    # the same config (a different sweep_name or report setting does not matter): one to skip
    assert resume.check_sweep_dir(tmp_path, [{**a, "sweep_name": "y", "leaderboard": {}}, b], "missing") == 1
    with pytest.raises(
        ConfigError,
        match=r"0/trial.json is a completed trial of another config \(method=dpo seed=1; "
        r"job 0 is now method=simpo seed=1; changed: method.beta: 0.1 -> 2.0; "
        r"method.name: 'dpo' -> 'simpo'\).*--force",
    ):
        resume.check_sweep_dir(tmp_path, [b, b], "missing")
    assert resume.check_sweep_dir(tmp_path, [b, b], "all") == 0  # --force: run them all again
    (attempt,) = resume.earlier_attempts(tmp_path / "1")
    assert attempt["status"] == "failed" and attempt["reason"] == "boom" and attempt["step"] == 3
    # a third run keeps both earlier ones, oldest first
    second = {**_record(b, status="interrupted").to_dict(), "attempts": [attempt]}
    write_record(tmp_path / "1" / "trial.json", second)
    history = resume.earlier_attempts(tmp_path / "1")
    assert [a["status"] for a in history] == ["failed", "interrupted"] and history[0] == attempt
    assert resume.earlier_attempts(tmp_path / "3") == []
    assert resume.completed_record(tmp_path / "1") is None and resume.completed_record(tmp_path / "2") is None


def test_a_live_lock_names_its_holder_and_a_dead_ones_lock_is_free(tmp_path):
    locked = pytest.raises(resume.Locked, match=r"being written by another harness process \(pid \d+\)")
    with resume.trial_lock(tmp_path), locked, resume.trial_lock(tmp_path):
        pass
    with resume.trial_lock(tmp_path):  # released: free again
        pass


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", ".hidden", "a..b", ""])
def test_a_sweep_name_that_would_write_elsewhere_is_refused(name):
    with pytest.raises(ConfigError, match="is not a plain directory name"):
        check_sweep_name(name)


def test_sweep_names_people_use_pass():
    for name in ("2026-11-30_12-00-00", "dpo-vs-simpo", "optuna-dpo-simpo-1a2b3c4d", "beta=0.1,lr=3e-4"):
        assert check_sweep_name(name) == name


def test_signals_raise_trial_interrupted_with_the_shells_exit_status():
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        with pytest.raises(TrialInterrupted) as caught, interrupts_raise():
            signal.raise_signal(signum)
        assert caught.value.exit_code == code
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


class _Good:
    @staticmethod
    @hookimpl
    def harness_trial_end(record):
        record.stages = {"seen_by_good": {}}


class _Bad:
    @staticmethod
    @hookimpl
    def harness_trial_end(record):
        raise ValueError("oops\nsecond line")


class _Pruner:
    @staticmethod
    @hookimpl
    def harness_checkpoint_evaluated(cfg, step, metrics, selection):
        raise TrialPruned("pruned at step 2")


def test_a_failing_plugin_hook_is_recorded_and_named_and_the_others_still_run(capsys):
    pm = HarnessPluginManager()
    for plugin, name in ((_Good, "good"), (_Bad, "bad")):
        pm.register(plugin, name=name)
    record = make_record()
    call_hook(pm, "harness_trial_end", record, record=record)
    assert record.stages == {"seen_by_good": {}}
    assert (
        record["plugin_errors"]
        == record.plugin_errors
        == [{"plugin": "bad", "hook": "harness_trial_end", "type": "ValueError", "message": "oops"}]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "harness: warning: plugin 'bad' failed in harness_trial_end: ValueError: oops (recorded on the "
        "trial; fix or remove the plugin)"
    ]
    pm.register(_Pruner, name="pruner")
    with pytest.raises(TrialPruned):  # pruning is how a hook is meant to stop a trial
        call_hook(pm, "harness_checkpoint_evaluated", record, cfg=None, step=2, metrics={}, selection=None)


def test_a_full_disk_is_recognised_and_said_with_the_fix():
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/run/checkpoints/step-4/model.safetensors")
    assert disk_full(exc) and not disk_full(OSError(errno.EACCES, "Permission denied"))
    try:
        raise RuntimeError("safetensors failed") from exc  # wrapped by a library
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
    error = failure(exc)
    assert error.disk_full and error.message.startswith(
        "disk full (no space left on device writing "
        "/data/run/checkpoints/step-4/model.safetensors); free space"
    )


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)

    def save_pretrained(self, directory):
        (directory / "model.safetensors").write_bytes(b"\0" * 10)  # a partial file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "model.safetensors"))


def test_nan_weights_fail_the_trial_with_the_step_and_a_failed_save_leaves_no_temporary_files(tmp_path):
    model = _Tiny()
    checkpointer = Checkpointer(every=0, directory=tmp_path / "checkpoints", save=False)
    checkpointer.last_loss = 0.69
    with torch.no_grad():
        model.linear.weight[0, 0] = float("nan")
    with pytest.raises(
        TrialFailed,
        match=r"weights became NaN/inf by step 7 \(first: linear.weight\); the last "
        r"logged loss was 0.69; lower the learning rate",
    ):
        checkpointer.checkpoint(7, model, final=True)
    with pytest.raises(OSError):
        save_weights(_Tiny(), None, tmp_path / "checkpoints" / "step-4")
    assert list((tmp_path / "checkpoints").iterdir()) == []


def test_markdown_shows_names_instead_of_running_them_and_explains_a_negative_kl(tmp_path):
    records = [replace(r, method="<script>x|y</script>") for r in seeded("dpo", [0.4, 0.41])]
    records += [
        trial("orpo", 0.1, 1, kl=-0.02),
        {
            **trial("kto", None, 1, status="interrupted"),
            "error": {"message": "interrupted by SIGTERM at step 3"},
        },
    ]
    board = leaderboard.build(records, title="<b>sweep</b>")
    leaderboard.write_reports(board, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    assert (
        "<script>" not in md and "&lt;script>x\\|y&lt;/script>" in md and "# Leaderboard: &lt;b>sweep" in md
    )
    assert "A negative `kl` (1 trial, down to -0.02) is sampling noise around 0" in md
    assert "- **kto** (interrupted): interrupted by SIGTERM at step 3" in md
    assert "<script>x" not in (tmp_path / "leaderboard.html").read_text()


def test_an_internal_error_is_one_line_and_its_traceback_comes_with_verbose(monkeypatch, capsys, tmp_path):
    import harness.config.compose as compose
    from harness.cli import app

    def broken(*args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(compose, "validated_jobs", broken)
    with pytest.raises(SystemExit) as exited:
        app.main(["method=dpo"])
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "harness: internal error: RuntimeError: boom (a bug in the harness or a plugin; run again "
        "with verbose=true for the traceback, and report it)"
    ]
    with pytest.raises(RuntimeError, match="boom"):
        app.main(["method=dpo", "verbose=true"])
