"""Secrets stay out of what the harness prints and writes: messages, trial records and their reports."""

from __future__ import annotations

import json

import pytest

from harness.records import parse_record, record_json
from harness.records.redaction import MASK, is_secret_name, redact, redact_value
from harness.sweep.resume import config_hash
from tests.helpers import cli_error_line, make_record

pytestmark = pytest.mark.unit

KEY = "sk-live0123456789abcdefXYZ"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("eval.judge.base_url=http://user:hunter2@host/v1", "eval.judge.base_url=http://user:***@host/v1"),
        ("https://h/x?api_key=abc123&n=1", "https://h/x?api_key=***&n=1"),
        ("api_key=abcdef and password: pw1", "api_key=*** and password: ***"),
        (f"Authorization: Bearer {KEY}", "Authorization: Bearer ***"),
        (f"the key {KEY} failed", "the key *** failed"),
        ('{"hf_token": "hf_abcdefghijklmnopqrstuvwxyz"}', '{"hf_token": "***"}'),
        ("AKIAABCDEFGHIJKLMNOP in a log", "*** in a log"),
    ],
)
def test_secrets_are_masked_and_the_rest_of_the_message_stays(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://optuna@db.internal:5432/studies",  # a user name is not a secret
        "eval.judge.api_key_env=OPENAI_API_KEY",  # names a variable
        "model.pad_token=<pad> eval.max_new_tokens=128",
        "eval.judge.base_url=http://127.0.0.1:8000/v1",
        "data.path=/data/tokens/prefs.jsonl",
    ],
)
def test_what_is_not_a_secret_is_left_as_it_is(text):
    assert redact(text) == text


def test_a_mapping_masks_values_of_keys_named_like_a_key_and_is_left_unchanged():
    config = {"eval": {"judge": {"api_key": "abc", "api_key_env": "VAR", "base_url": "http://u:p@h/v1"}}}
    assert redact_value(config) == {
        "eval": {"judge": {"api_key": MASK, "api_key_env": "VAR", "base_url": f"http://u:{MASK}@h/v1"}}
    }
    assert config["eval"]["judge"]["api_key"] == "abc"
    assert (
        is_secret_name("hf_token") and not is_secret_name("api_key_env") and not is_secret_name("pad_token")
    )


def test_a_trial_record_is_written_without_the_secrets_it_was_given():
    record = make_record(
        overrides=["eval.judge.base_url=http://user:hunter2@judge/v1", f"tracking.note={KEY}"],
        config={"eval": {"judge": {"base_url": "http://user:hunter2@judge/v1", "api_key": "plain"}}},
        error={"type": "TrialFailed", "message": f"POST http://user:hunter2@judge/v1 with {KEY} failed"},
        status="failed",
    )
    text = record_json(record)
    assert "hunter2" not in text and KEY not in text and '"plain"' not in text
    back = parse_record(json.loads(text))
    assert back.overrides[0] == "eval.judge.base_url=http://user:***@judge/v1"
    assert back.error.message == "POST http://user:***@judge/v1 with *** failed"
    # the record's config and the live config hash alike, so a re-run is recognised as the same trial
    assert config_hash(back.config) == config_hash(record.config)


def test_a_key_in_the_judge_url_is_refused_in_one_line_without_printing_it(tmp_path, monkeypatch, capsys):
    line = cli_error_line(
        tmp_path,
        monkeypatch,
        capsys,
        [
            "eval.extra=[judge]",
            "eval.judge.model=m",
            "eval.judge.base_url=http://user:hunter2@127.0.0.1:9/v1",
        ],
    )
    assert "hunter2" not in line and "user:***@127.0.0.1:9" in line
    assert "holds credentials" in line and "unreachable" not in line and "api_key_env" in line
