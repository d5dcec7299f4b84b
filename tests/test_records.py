"""Trial records: atomic JSON round trip, schema version, and tolerant loading."""

from __future__ import annotations

import json

import pytest

from harness.records import (
    RECORD_NAME,
    SCHEMA_VERSION,
    RecordError,
    atomic_write_text,
    load_records,
    read_record,
    write_record,
)

pytestmark = pytest.mark.unit


def make_record(**over):
    record = {
        "status": "completed",
        "method": "dpo",
        "hyperparameters": {"beta": 0.1, "seed": 0},
        "checkpoints": [{"step": 10, "final": True, "metrics": {"gold_reward": 0.5, "kl": 1.0}}],
    }
    record.update(over)
    return record


def test_round_trip_adds_schema_version(tmp_path):
    path = tmp_path / "t" / RECORD_NAME
    write_record(path, make_record())
    back = read_record(path)
    assert back["schema_version"] == SCHEMA_VERSION
    assert back["checkpoints"][0]["metrics"]["gold_reward"] == 0.5
    assert not list(path.parent.glob("*.tmp")), "no temporary file is left behind"


def test_write_rejects_unknown_status(tmp_path):
    with pytest.raises(ValueError, match="status"):
        write_record(tmp_path / RECORD_NAME, make_record(status="done"))


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / RECORD_NAME
    write_record(path, make_record())
    with pytest.raises(TypeError):
        write_record(path, make_record(hyperparameters={"bad": object()}))
    assert read_record(path)["status"] == "completed"


def test_read_rejects_corrupt_and_foreign_records(tmp_path):
    corrupt = tmp_path / "a" / RECORD_NAME
    atomic_write_text(corrupt, '{"status": "compl')
    with pytest.raises(RecordError, match="unreadable"):
        read_record(corrupt)
    future = tmp_path / "b" / RECORD_NAME
    atomic_write_text(future, json.dumps({**make_record(), "schema_version": 999}))
    with pytest.raises(RecordError, match="schema version 999"):
        read_record(future)


def test_load_records_skips_bad_files_with_a_warning(tmp_path):
    write_record(tmp_path / "0" / RECORD_NAME, make_record())
    atomic_write_text(tmp_path / "1" / RECORD_NAME, "not json")
    with pytest.warns(UserWarning, match="skipping"):
        records = list(load_records([tmp_path]))
    assert [r["method"] for r in records] == ["dpo"]
    assert records[0]["_path"].endswith(f"0/{RECORD_NAME}")
