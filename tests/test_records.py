"""Trial records: the typed record, atomic JSON round trip, schema version and migration, tolerant loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.records import (
    RECORD_NAME,
    SCHEMA_VERSION,
    Checkpoint,
    DataSummary,
    RecordError,
    SelectionPlan,
    TrainSummary,
    TrialError,
    TrialRecord,
    atomic_write_text,
    load_records,
    parse_record,
    read_record,
    write_record,
)
from tests.helpers import checkpoint, make_record

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures"
V1_COMPLETED = (
    FIXTURES / "trial_v1_completed.json"
)  # the main job's DPO trial, as written by schema version 1
V1_RUNNING = FIXTURES / "trial_v1_running.json"  # a trial killed while it trained (status still "running")


def one_checkpoint_record(**over):
    return make_record(
        hyperparameters={"beta": 0.1, "seed": 0},
        checkpoints=[checkpoint(10, {"gold_reward": 0.5, "kl": 1.0}, final=True)],
        **over,
    )


def test_round_trip_adds_schema_version(tmp_path):
    path = tmp_path / "t" / RECORD_NAME
    write_record(path, one_checkpoint_record())
    back = read_record(path)
    assert back["schema_version"] == SCHEMA_VERSION == json.loads(path.read_text())["schema_version"] == 2
    assert back.checkpoints[0].metrics["gold_reward"] == 0.5
    assert back["checkpoints"][0]["metrics"]["gold_reward"] == 0.5
    assert not list(path.parent.glob("*.tmp")), "no temporary file is left behind"


def test_a_full_record_round_trips_equal(tmp_path):
    record = make_record(
        trial_id="s/0",
        status="pruned",
        error={"type": "TrialPruned", "message": "pruned at step 5", "step": 5},
        reference={"metrics": {"kl": 0.0}, "cache_dir": None, "selection": {"metrics": {"kl": 0.0}}},
        checkpoints=[
            checkpoint(5, {"kl": 1}, selection={"metrics": {"kl": 2}, "eval_seconds": 0.1}, health=[]),
            checkpoint(10, final=True, path="/x/step-10"),
        ],
        train={"parameters": 10, "steps": 5},
        data={"train_examples": 3, "eval_prompts": 2, "format": "pairwise", "rows_in": 3, "ties_dropped": 0},
        selection={"num_prompts": 0, "seed": None, "disjoint": False},
        attempts=[{"status": "failed", "reason": "boom"}],
        plugin_errors=[{"plugin": "p", "hook": "harness_trial_end", "type": "E", "message": "m"}],
        stages={"sft": {"method": "sft"}},
        a_future_key={"kept": True},
    )
    path = tmp_path / RECORD_NAME
    write_record(path, record)
    back = read_record(path)
    assert back == record and back.to_dict() == record.to_dict() == json.loads(path.read_text())
    assert isinstance(back.error, TrialError) and back.error.step == 5
    assert isinstance(back.checkpoints[0], Checkpoint) and back.checkpoints[0].selection_metrics == {"kl": 2}
    assert back.checkpoints[0].metrics == {"kl": 1}  # values are never coerced: 1 stays 1, not 1.0
    assert back.extra == {"a_future_key": {"kept": True}} and back["a_future_key"] == {"kept": True}
    assert isinstance(back.train, TrainSummary) and back.train.steps == 5
    assert isinstance(back.data, DataSummary) and "max_length" not in back["data"]  # not fitted yet
    assert isinstance(back.selection, SelectionPlan) and back["selection"] == {
        "num_prompts": 0,
        "seed": None,
        "disjoint": False,
    }


def test_the_dict_view_returns_what_the_file_holds_and_is_read_only():
    record = one_checkpoint_record()
    assert record["status"] == "completed" and record.get("nothing") is None and "eval_prompts" not in record
    assert record["checkpoints"] == [
        {"step": 10, "final": True, "path": None, "metrics": {"gold_reward": 0.5, "kl": 1.0}}
    ]
    assert dict(record) == record.to_dict()
    assert "plugin_errors" not in record and "attempts" not in record  # written only when not empty
    with pytest.raises(TypeError):
        record["status"] = "failed"  # type: ignore[index]
    record.status = "failed"
    record.error = TrialError(type="E", message="boom")
    assert record["error"] == {"type": "E", "message": "boom"} and record.error_message == "boom"


def test_final_checkpoint_is_the_final_one_else_the_last_evaluated():
    assert one_checkpoint_record().final_checkpoint().step == 10
    record = make_record(
        checkpoints=[checkpoint(5, {"kl": 1.0}), checkpoint(10, {"kl": 2.0}), checkpoint(15)]
    )
    assert record.final_checkpoint().step == 10 and record.checkpoint_at(15).metrics == {}
    assert make_record().final_checkpoint() is None


def test_write_rejects_unknown_status(tmp_path):
    with pytest.raises(ValueError, match="status"):
        write_record(tmp_path / RECORD_NAME, one_checkpoint_record(status="done"))


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / RECORD_NAME
    write_record(path, one_checkpoint_record())
    with pytest.raises(TypeError):
        write_record(path, one_checkpoint_record(hyperparameters={"bad": object()}))
    assert read_record(path)["status"] == "completed"


def test_read_rejects_corrupt_and_foreign_records(tmp_path):
    corrupt = tmp_path / "a" / RECORD_NAME
    atomic_write_text(corrupt, '{"status": "compl')
    with pytest.raises(RecordError, match="unreadable"):
        read_record(corrupt)
    future = tmp_path / "b" / RECORD_NAME
    atomic_write_text(future, json.dumps({**one_checkpoint_record().to_dict(), "schema_version": 999}))
    with pytest.raises(RecordError, match="schema version 999 is not supported"):
        read_record(future)
    foreign = tmp_path / "c" / RECORD_NAME
    atomic_write_text(foreign, json.dumps({"status": "completed", "method": "dpo"}))  # no schema_version
    with pytest.raises(RecordError, match="schema version None"):
        read_record(foreign)
    for text, match in [
        ("[1, 2]", "JSON object"),
        ('{"schema_version": 2, "status": "completed"}', "no 'method'"),
    ]:
        atomic_write_text(foreign, text)
        with pytest.raises(RecordError, match=match):
            read_record(foreign)
    malformed = {
        **one_checkpoint_record().to_dict(),
        "checkpoints": [{"final": True}],
    }  # a checkpoint with no step
    atomic_write_text(foreign, json.dumps(malformed))
    with pytest.raises(RecordError, match="malformed"):
        read_record(foreign)


def test_load_records_skips_bad_files_with_a_warning(tmp_path):
    write_record(tmp_path / "0" / RECORD_NAME, one_checkpoint_record())
    atomic_write_text(tmp_path / "1" / RECORD_NAME, "not json")
    atomic_write_text(tmp_path / "2" / RECORD_NAME, json.dumps({"schema_version": 999}))
    with pytest.warns(UserWarning, match="skipping"):
        records = list(load_records([tmp_path]))
    assert [r.method for r in records] == ["dpo"] and isinstance(records[0], TrialRecord)
    assert (
        records[0]["_path"].endswith(f"0/{RECORD_NAME}") and records[0].path == tmp_path / "0" / RECORD_NAME
    )


# --- schema version 1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", [V1_COMPLETED, V1_RUNNING])
def test_a_version_1_record_migrates_to_the_same_keys_and_values(fixture, tmp_path):
    v1 = json.loads(fixture.read_text())
    assert v1["schema_version"] == 1
    record = read_record(fixture)
    assert record.to_dict() == {**v1, "schema_version": SCHEMA_VERSION}  # the layout is the same
    assert list(record.to_dict()) == list(v1)  # in the same order
    assert {k: record[k] for k in v1 if k != "schema_version"} == {
        k: v for k, v in v1.items() if k != "schema_version"
    }
    rewritten = tmp_path / RECORD_NAME
    write_record(rewritten, record)
    assert read_record(rewritten) == record


def test_a_version_1_record_reads_as_typed_parts():
    record = read_record(V1_COMPLETED)
    assert (record.status, record.method, record.trial_id) == ("completed", "dpo", "2026-12-07_15-08-41/0")
    assert [c.step for c in record.checkpoints] == [94, 188, 281, 375] and record.final_checkpoint().final
    assert record.reference is not None and record.reference.metrics["kl"] == 0.0
    assert record.reference.selection is not None and record.reference.selection.cache_key
    assert record.train.steps == 375 and record.train.log_history and record.train.prepared_data
    assert record.data is not None and record.data.max_length == 64 and record.data.mean_tokens == 41.931
    assert record.selection is not None and record.selection.evaluators == ["gold_reward", "kl"]
    assert record.peak_memory is not None and record.peak_memory.cuda_peak_mb is None
    assert record.host is not None and record.host.processes == 1
    assert record.timings["train_s"] == 53.875 and record.versions["trl"] == "1.16.0"
    running = read_record(V1_RUNNING)
    assert running.status == "running" and running.reference is None and running.train == TrainSummary()


def test_a_version_1_record_missing_later_keys_reads_with_defaults():
    """Records written before a key existed (schema version 1 grew keys) read with empty or null values."""
    old = {
        "schema_version": 1,
        "status": "completed",
        "method": "dpo",
        "hyperparameters": {},
        "checkpoints": [],
    }
    record = parse_record(old)
    assert record.paper_names == {} and record.loss_notes is None and record.metric_declarations is None
    assert (
        record["paper_names"] == {}
        and record.get("loss_notes") is None
        and "metric_declarations" not in record
    )
    assert parse_record({k: v for k, v in old.items() if k != "schema_version"}, default_version=1) == record


def test_the_leaderboard_is_the_same_from_version_1_and_version_2_records(tmp_path):
    from harness import leaderboard

    sweep = tmp_path / "sweep"
    for job, source in enumerate([V1_COMPLETED, V1_RUNNING]):
        (sweep / str(job)).mkdir(parents=True)
        shutil.copy(source, sweep / str(job) / RECORD_NAME)
    leaderboard.write_reports(leaderboard.load_leaderboard([sweep], title="t"), tmp_path / "v1")
    for path in sweep.rglob(RECORD_NAME):
        write_record(path, read_record(path))
    assert all(json.loads(p.read_text())["schema_version"] == 2 for p in sweep.rglob(RECORD_NAME))
    leaderboard.write_reports(leaderboard.load_leaderboard([sweep], title="t"), tmp_path / "v2")
    written = sorted(p.name for p in (tmp_path / "v1").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "v2").iterdir()) and "leaderboard.md" in written
    for name in written:
        assert (tmp_path / "v1" / name).read_bytes() == (tmp_path / "v2" / name).read_bytes(), name
