"""Experiment trackers (``tracking.report_to``): one trial of the tiny world is one run in TensorBoard, MLflow
(a local sqlite store), W&B (offline) and trackio (each when installed), holding TRL's training logs, every
evaluation from step 0 on, the trial's hyperparameters and its summary; a tracker that is unknown or not
installed is refused with one line before any compute."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import struct
from pathlib import Path

import pytest
from harness_plugins.tracking import trackers

from harness.config.compose import compose_job
from harness.config.validation import validate_method
from harness.errors import ConfigError
from harness.plugin import TrackingRun, tracking_report_to
from harness.plugin.manager import get_plugin_manager
from tests.conftest import run_cli
from tests.helpers import checkpoint, cli_error_line, make_record

FAST = [
    "method.max_steps=4",
    "train.num_checkpoints=2",
    "method.batch_size=4",
    "eval.num_prompts=4",
    "eval.max_new_tokens=8",
    "eval.selection.num_prompts=4",
    "eval.evaluators=[gold_reward,kl]",
    "train.logging_steps=1",
    "train.num_threads=1",
]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --- pure logic ---------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_report_to_takes_a_name_a_list_or_none_and_each_run_is_named_after_its_trial(tmp_path):
    assert tracking_report_to(None) == tracking_report_to("none") == tracking_report_to([]) == []
    assert tracking_report_to("wandb") == ["wandb"]
    assert tracking_report_to(["tensorboard", "none", "mlflow", "tensorboard"]) == ["tensorboard", "mlflow"]
    with pytest.raises(ConfigError, match=r"tracking.report_to=3 is invalid; give a tracker or a list"):
        tracking_report_to(3)
    run = TrackingRun.of(
        {"report_to": ["mlflow"], "project": "lab", "dir": None}, tmp_path / "multirun" / "s1" / "3"
    )
    assert (run.name, run.directory, run.project) == (
        "s1/3",
        tmp_path / "multirun" / "s1" / "3" / "tracking",
        "lab",
    )
    shared = TrackingRun.of({"dir": str(tmp_path / "tb")}, tmp_path / "multirun" / "s1" / "3")
    assert (shared.directory, shared.project) == (tmp_path / "tb" / "s1" / "3", "harness")


@pytest.mark.unit
def test_the_trainer_reports_to_the_trials_run_only_when_asked(tmp_path):
    from harness.trial.context import TrainContext

    def arguments(overrides):
        cfg = compose_job(["method=dpo", *overrides], {})
        ctx = TrainContext(
            cfg=cfg,
            spec=None,
            tokenizer=None,
            policy=None,
            reference=None,
            peft_config=None,
            train_data=None,
            eval_data=None,
            output_dir=tmp_path / "sweep" / "7" / "trainer",
            device=None,
            precision="fp32",
            checkpointer=None,
        )
        return ctx.tracking_arguments()

    assert arguments([]) == {"report_to": []}
    args = arguments(["tracking.report_to=[tensorboard,wandb]", "tracking.project=lab"])
    assert args["report_to"] == ["tensorboard", "wandb"] and args["run_name"] == "sweep/7"
    assert args.get("project", "lab") == "lab"  # a field of transformers >= 5
    assert args.get("logging_dir", str(tmp_path / "sweep" / "7" / "tracking")) == str(
        tmp_path / "sweep" / "7" / "tracking"
    )


@pytest.mark.unit
def test_method_trl_report_to_points_to_tracking_report_to():
    cfg = compose_job(["method=dpo", "method.trl.report_to=[tensorboard]"], {})
    with pytest.raises(
        ConfigError,
        match=r"^method.trl.report_to is managed by the harness for every method; set "
        r"tracking.report_to instead \(docs/how-to/scaling-out.md, Experiment trackers\).$",
    ):
        validate_method(cfg, get_plugin_manager())


@pytest.mark.unit
def test_an_unknown_or_missing_tracker_is_one_line_naming_the_fix(monkeypatch):
    with pytest.raises(
        ConfigError,
        match=r"Unknown tracker in tracking.report_to 'tensorbord'. Did you mean: "
        r"tensorboard\?",
    ):
        trackers.check_trackers(["tensorbord"])
    monkeypatch.setitem(trackers.TRACKERS, "mlflow", (("no_such_module_here",), "pip install mlflow-skinny"))
    with pytest.raises(ConfigError) as caught:
        trackers.check_trackers(["mlflow"])
    assert str(caught.value) == (
        "tracking.report_to names mlflow, which is not installed; pip install mlflow-skinny "
        "(or pip install 'harness[trackers]'), or remove mlflow from tracking.report_to."
    )
    monkeypatch.setitem(trackers.TRACKERS, "mlflow", (("json",), "pip install mlflow-skinny"))
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123abcd")
    with pytest.raises(
        ConfigError, match=r"^MLFLOW_RUN_ID is set, so every trial would log into that one run; unset"
    ):
        trackers.check_trackers(["mlflow"])


@pytest.mark.unit
def test_a_missing_tracker_stops_the_command_line_before_any_compute(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(trackers.TRACKERS, "wandb", (("no_such_module_here",), "pip install wandb"))
    line = cli_error_line(tmp_path, monkeypatch, capsys, ["tracking.report_to=[wandb]"])
    assert line == (
        "harness: error: tracking.report_to names wandb, which is not installed; pip install wandb "
        "(or pip install 'harness[trackers]'), or remove wandb from tracking.report_to."
    )


@pytest.mark.unit
def test_evaluations_are_prefixed_and_the_summary_holds_the_outcome():
    assert trackers.evaluation_values(
        {"kl": 0.5, "lm_eval/x (acc)": 1, "bad": float("nan"), "flag": True}, {"kl": 0.25}
    ) == {"harness_test/kl": 0.5, "harness_test/lm_eval/x _acc_": 1.0, "harness_selection/kl": 0.25}
    record = make_record(
        train={"steps": 30},
        timings={"train_s": 1.5, "total_s": 3.0},
        checkpoints=[checkpoint(10, {"gold_reward": 1.0}), checkpoint(30, {"gold_reward": 2.0}, final=True)],
    )
    numbers, texts, step = trackers.summary(record)
    assert numbers == {
        "harness_summary/steps": 30.0,
        "harness_summary/final_step": 30.0,
        "harness_summary/train_s": 1.5,
        "harness_summary/total_s": 3.0,
    }
    assert texts == {"harness_summary/status": "completed"}
    assert step == 30
    failed = make_record(status="failed", error={"message": "boom"})
    assert trackers.summary(failed) == (
        {},
        {"harness_summary/status": "failed", "harness_summary/error": "boom"},
        0,
    )


# --- one trial, read back from each tracker -----------------------------------------------------------------


def tensorboard_events(directory: Path) -> list:
    """Every event of the TFRecord event files in ``directory``
    (length, crc, event, crc; checksums not checked)."""
    try:
        from tensorboardX.proto.event_pb2 import Event
    except ImportError:
        from tensorboard.compat.proto.event_pb2 import Event
    events = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            events.append(Event.FromString(data[pos + 12 : pos + 12 + length]))
            pos += 12 + length + 4
    return events


def tensorboard_run(directory: Path) -> tuple[dict[str, dict[int, float]], dict[str, bytes]]:
    """Scalars (tag -> step -> value) and the other summaries' contents (tag -> bytes)
    of a TensorBoard run."""
    scalars: dict[str, dict[int, float]] = {}
    other: dict[str, bytes] = {}
    for event in tensorboard_events(directory):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
            else:
                content = value.metadata.plugin_data.content or b"".join(value.tensor.string_val)
                other[value.tag] = content
    return scalars, other


def wandb_history(run_dir: Path) -> tuple[dict, list[dict], dict, dict]:
    """The run record, history rows, config and summary of an offline W&B run (its ``run-<id>.wandb`` file:
    W&B's LevelDB-style log of protobuf records in 32 KiB blocks after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    data = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    chunks, pos, pieces = [], 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pieces = chunk if kind in (1, 2) else pieces + chunk
        if kind in (1, 4):  # a full record, or a record's last piece
            chunks.append(pieces)
    run, history, config, summary = None, [], {}, {}
    for chunk in chunks:
        record = wandb_internal_pb2.Record.FromString(chunk)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            history.append(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            )
        elif kind == "summary":
            summary.update(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.summary.update}
            )
    return run, history, config, summary


def by_step(rows: list[dict], key: str) -> dict[int, float]:
    """``{train/global_step: value}`` of the rows holding ``key`` (W&B and trackio rows)."""
    return {row["train/global_step"]: row[key] for row in rows if key in row}


@pytest.fixture(scope="module")
def tracked_trial(tiny_world, tmp_path_factory):
    """One DPO trial of a one-job multirun (sweep ``tracked``) reporting to every installed tracker."""
    cwd = tmp_path_factory.mktemp("tracked")
    names = [
        name
        for name in ("tensorboard", "mlflow", "wandb", "trackio")
        if any(installed(module) for module in trackers.TRACKERS[name][0])
    ]
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "TRACKIO_DIR": str(cwd / "trackio"),
        "OMP_NUM_THREADS": "1",
    }
    result = run_cli(
        [
            "-m",
            *tiny_world,
            *FAST,
            "sweep_name=tracked",
            f"tracking.report_to=[{','.join(names)}]",
            "tracking.project=lab",
            "leaderboard.print=false",
        ],
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    record = json.loads((cwd / "multirun" / "tracked" / "0" / "trial.json").read_text())
    assert record["status"] == "completed" and not record.get("plugin_errors"), record.get("plugin_errors")
    steps = [0, *(c["step"] for c in record["checkpoints"])]  # the reference, then every checkpoint
    losses = {entry["step"]: entry["loss"] for entry in record["train"]["log_history"] if "loss" in entry}
    assert len(steps) == 3 and len(losses) == 4
    return cwd, names, record, steps, losses


def test_tensorboard_holds_the_training_loss_every_evaluation_and_the_hyperparameters(tracked_trial):
    cwd, names, record, steps, losses = tracked_trial
    if "tensorboard" not in names:
        pytest.skip("neither tensorboard nor tensorboardX is installed")
    scalars, other = tensorboard_run(cwd / "multirun" / "tracked" / "0" / "tracking")
    assert scalars["train/loss"] == pytest.approx(losses)  # TRL's callback, in the same run directory
    gold = record["reference"]["metrics"]["gold_reward"]
    assert sorted(scalars["harness_test/gold_reward"]) == steps
    assert scalars["harness_test/gold_reward"][0] == pytest.approx(gold)
    assert sorted(scalars["harness_selection/kl"]) == steps
    assert scalars["harness_summary/final_step"] == {4: 4.0}  # logged once, at the last step
    assert b"harness.beta" in other["harness/hyperparameters/text_summary"]
    assert b"harness.beta" in other["_hparams_/session_start_info"]  # the HParams dashboard's row of this run
    assert b"completed" in other["harness_summary/status/text_summary"]


def test_mlflow_holds_one_run_named_after_the_trial(tracked_trial):
    cwd, names, record, steps, losses = tracked_trial
    if "mlflow" not in names:
        pytest.skip("mlflow is not installed")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("lab").experiment_id])
    assert (run.info.run_name, run.info.status) == ("tracked/0", "FINISHED")
    assert run.data.params["harness.beta"] == str(record["hyperparameters"]["beta"])
    assert run.data.params["harness.method"] == "dpo" and "learning_rate" in run.data.params  # TRL's own too

    def history(key):
        return {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}

    assert history("loss") == pytest.approx(losses)
    assert (
        sorted(history("harness_test/gold_reward"))
        == steps
        == sorted(history("harness_selection/gold_reward"))
    )
    assert history("harness_test/kl")[0] == 0.0  # the reference
    assert run.data.tags["harness_summary/status"] == "completed"
    assert run.data.metrics["harness_summary/total_s"] == pytest.approx(record["timings"]["total_s"])


def test_wandb_offline_holds_one_run_named_after_the_trial(tracked_trial):
    cwd, names, record, steps, losses = tracked_trial
    if "wandb" not in names:
        pytest.skip("wandb is not installed")
    [run_dir] = (cwd / "multirun" / "tracked" / "0" / "tracking" / "wandb").glob("offline-run-*")
    run, history, config, summary = wandb_history(run_dir)
    assert (run.display_name, run.project, run.run_group) == ("tracked/0", "lab", "tracked")
    assert by_step(history, "train/loss") == pytest.approx(losses)
    assert sorted(by_step(history, "harness_test/gold_reward")) == steps
    assert sorted(by_step(history, "harness_selection/kl")) == steps
    assert config["harness.beta"] == record["hyperparameters"]["beta"] and "learning_rate" in config
    assert summary["harness_summary/status"] == "completed" and summary["harness_summary/final_step"] == 4


def test_trackio_holds_one_run_named_after_the_trial(tracked_trial):
    cwd, names, record, steps, losses = tracked_trial
    if "trackio" not in names:
        pytest.skip("trackio is not installed")
    with sqlite3.connect(cwd / "trackio" / "lab.db") as db:
        rows = db.execute("SELECT run_id, run_name, metrics FROM metrics ORDER BY id").fetchall()
        [(config,)] = db.execute("SELECT config FROM configs").fetchall()
    assert {(run_id, name) for run_id, name, _ in rows} == {(rows[0][0], "tracked/0")}  # one run, resumed
    logged = [json.loads(metrics) for _, _, metrics in rows]
    assert by_step(logged, "train/loss") == pytest.approx(losses)
    assert sorted(by_step(logged, "harness_test/gold_reward")) == steps
    assert json.loads(config)["harness.beta"] == record["hyperparameters"]["beta"]
