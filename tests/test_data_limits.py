"""Hostile and broken data, part of the fault-injection suite: limits that hold while a file is read (rows,
bytes per line and per text value, nesting depth), control characters, text the tokenizer cannot represent,
and Ctrl-C while the data is read or tokenized. Each bad input is one line naming the file, the row and the
setting to raise, exit 2, before any compute; reading stays within a stated memory bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import Dataset

from harness.data.limits import DataLimits, check_file_limits, check_table_limits
from harness.data.validate import check_messages, check_text
from harness.errors import DataError
from tests.helpers import cli_error_line

GOOD = [{"prompt": f"p{i}", "chosen": "good answer", "rejected": "bad"} for i in range(40)]
ARGS = ["data=files", "method.max_steps=1", "eval.num_prompts=2"]


def _jsonl(path: Path, rows: list[object], raw_last: str | None = None) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows) + (raw_last + "\n" if raw_last else "")
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path, limits: DataLimits) -> str:
    with pytest.raises(DataError) as caught:
        check_file_limits(path, limits)
    return str(caught.value)


# -- the three files, through the command line: one line, exit 2, nothing run ------------------------


def test_json_nested_100000_deep_is_one_line_naming_the_row_and_the_setting(tmp_path, monkeypatch, capsys):
    deep = '{"prompt": "p", "chosen": ' + "[" * 100_000 + "]" * 100_000 + ', "rejected": "r"}'
    path = _jsonl(tmp_path / "deep.jsonl", GOOD, deep)
    line = cli_error_line(tmp_path, monkeypatch, capsys, [*ARGS, f"data.path={path}"])
    assert f"{path}: row 41 nests arrays/objects 100001 levels deep, over data.max_depth=100" in line
    assert "raise data.max_depth" in line and "RecursionError" not in line


def test_a_line_over_max_row_bytes_is_refused_before_it_is_read_whole(tmp_path, monkeypatch, capsys):
    long = json.dumps({"prompt": "x" * 50_000, "chosen": "a", "rejected": "b"})
    path = _jsonl(tmp_path / "long.jsonl", GOOD, long)
    args = [*ARGS, f"data.path={path}", "data.max_row_bytes=10000"]
    line = cli_error_line(tmp_path, monkeypatch, capsys, args)
    assert f"{path}: row 41 is longer than 10000 bytes, over data.max_row_bytes=10000" in line


def test_control_characters_are_refused_naming_the_character_and_the_row(tmp_path, monkeypatch, capsys):
    path = _jsonl(tmp_path / "ctrl.jsonl", [*GOOD, {"prompt": "a\x00b\x07", "chosen": "c", "rejected": "d"}])
    line = cli_error_line(tmp_path, monkeypatch, capsys, [*ARGS, f"data.path={path}"])
    assert (
        f"{path}: invalid preference data: column 'prompt' holds control character U+0000 (NUL) in row 41"
        in line
    )


# -- every limit, every text format ------------------------------------------------------------


@pytest.mark.unit
def test_jsonl_limits_name_the_row_and_count_rows_not_blank_lines(tmp_path):
    path = _jsonl(tmp_path / "rows.jsonl", GOOD[:3])
    path.write_text("\n" + path.read_text())  # a blank first line: row 3 is line 4
    assert "more than data.max_rows=2 rows (row 3 (line 4) is one more)" in _refused(
        path, DataLimits(max_rows=2)
    )
    big = _jsonl(tmp_path / "field.jsonl", [*GOOD[:2], {"prompt": "p", "chosen": "é" * 600, "rejected": "r"}])
    message = _refused(big, DataLimits(max_field_bytes=1000))
    assert "row 3 has a text value of 1200 bytes, over data.max_field_bytes=1000" in message
    check_file_limits(
        big, DataLimits(max_field_bytes=1200)
    )  # escapes (\u00e9) count as the bytes they decode to
    deep = _jsonl(tmp_path / "deep.jsonl", [{"prompt": "p", "chosen": [[[["a"]]]], "rejected": "[[[[[[["}])
    assert "row 1 nests arrays/objects 5 levels deep, over data.max_depth=4" in _refused(
        deep, DataLimits(max_depth=4)
    )
    check_file_limits(deep, DataLimits(max_depth=5))  # brackets inside strings are text


@pytest.mark.unit
@pytest.mark.parametrize("chunk", [7, 64, 1 << 22])
def test_a_json_array_is_scanned_in_chunks_with_the_same_answers(tmp_path, monkeypatch, chunk):
    from harness.data import limits

    monkeypatch.setattr(limits, "_CHUNK", chunk)
    rows = [*GOOD[:3], {"prompt": "p", "chosen": 'say \\"' + "y" * 300 + '\\"', "rejected": "r"}]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(rows))
    assert "record 4 has a text value over 200 bytes" in _refused(path, DataLimits(max_field_bytes=200))
    check_file_limits(path, DataLimits(max_field_bytes=400))
    assert "more than data.max_rows=3 rows (record 4 is one more)" in _refused(path, DataLimits(max_rows=3))
    path.write_text(json.dumps([{"prompt": "p", "chosen": [[["x"]]], "rejected": "r"}]))
    assert "record 1 nests arrays/objects over 3 levels deep" in _refused(path, DataLimits(max_depth=3))


@pytest.mark.unit
def test_a_csv_line_over_the_limit_names_its_row_and_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("prompt,chosen,rejected\np,a,b\np," + "z" * 500 + ",b\n")
    assert "row 2 (line 3) is longer than 100 bytes" in _refused(path, DataLimits(max_row_bytes=100))


@pytest.mark.unit
def test_a_loaded_table_is_checked_too_parquet_and_message_lists(tmp_path):
    rows = [
        {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "ok"}]}
        for _ in range(3)
    ]
    rows[2]["chosen"][0]["content"] = "w" * 300
    data = Dataset.from_list(rows)
    with pytest.raises(DataError, match=r"x.parquet: row 3, column 'chosen', has a text value of 300 bytes"):
        check_table_limits(data, DataLimits(max_field_bytes=200), "x.parquet")
    with pytest.raises(DataError, match=r"column 'prompt' nests 3 levels deep, over data.max_depth=2"):
        check_table_limits(data, DataLimits(max_depth=2), "x.parquet")
    with pytest.raises(DataError, match=r"more than data.max_rows=2 rows \(it has 3\)"):
        check_table_limits(data, DataLimits(max_rows=2), "x.parquet")
    check_table_limits(data, DataLimits(), "x.parquet")


@pytest.mark.unit
def test_the_defaults_fit_real_rows_and_bad_settings_are_refused():
    real = {
        "prompt": [{"role": "user", "content": "q" * 100_000}],
        "chosen": [{"role": "assistant", "content": "a"}],
    }
    check_table_limits(Dataset.from_list([real]), DataLimits(), "real")
    with pytest.raises(DataError, match=r"data.max_depth=0 is invalid; use a whole number of at least 1"):
        DataLimits.from_settings({"max_depth": 0})
    assert DataLimits.from_settings({"max_rows": None, "max_row_bytes": 5}).max_row_bytes == 5


@pytest.mark.unit
def test_control_characters_but_tab_newline_and_return_are_refused_in_text_and_messages():
    assert check_text("a\tb\nc\r\n") is None
    assert check_text("ansi \x1b[31m red") == "holds control character U+001B (ESC)"
    assert check_text("del \x7f") == "holds control character U+007F (DEL)"
    bad = [{"role": "user", "content": "hi\x07"}]
    assert check_messages(bad) == "has a 'user' message that holds control character U+0007 (BEL)"


# -- text the tokenizer cannot represent ------------------------------------------------------------


@pytest.mark.unit
def test_text_the_toy_tokenizer_cannot_represent_gets_one_warning_with_counts(capsys):
    from harness.config.compose import compose_job
    from harness.data.coverage import tokenizer_coverage
    from harness.plugin.manager import get_plugin_manager
    from harness.records import DataSummary
    from harness.toyworld.tokenizer import build_tokenizer
    from harness.trial.setup import fit_length

    tokenizer = build_tokenizer()
    cjk = Dataset.from_list(
        [{"prompt": f"评论 {i} 😀", "chosen": "很好", "rejected": "糟糕 🎬"} for i in range(40)]
    )
    coverage = tokenizer_coverage(cjk, tokenizer)
    assert (coverage.rows, coverage.rows_lossy, coverage.unknown_tokens) == (40, 40, coverage.tokens)
    cfg = compose_job(["method=dpo"], {})
    fit_length(cfg, get_plugin_manager().method("dpo"), cjk, tokenizer, DataSummary())
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "harness: warning: training data: the tokenizer cannot represent part of the text: 40 of 40 sampled "
        "rows (100.0%) lose text; "
    )
    assert "are the unknown token" in lines[0] and "do not survive encoding" in lines[0]
    plain = Dataset.from_list([{"prompt": "the movie was", "chosen": " great", "rejected": " bad"}] * 10)
    assert tokenizer_coverage(plain, tokenizer).warning() is None


# -- bounded memory, and Ctrl-C while the data is read or tokenized (subprocesses: slow) ---------------

_PEAK = """
import resource, sys
from harness.data.load import load_dataset_from
from harness.errors import DataError
try:
    load_dataset_from(sys.argv[1], cache_dir=sys.argv[2])
except DataError as exc:
    print(exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
#: The most reading a refused 64 MB line may add to the process's peak: the line is read 8 MiB
#: (data.max_row_bytes) + 1 byte at a time, its rest 4 MiB at a time, never whole.
PEAK_BOUND_KB = 48 * 1024


@pytest.mark.slow
def test_a_64_mb_line_is_refused_without_growing_memory_beyond_the_bound(tmp_path):
    small = _jsonl(tmp_path / "small.jsonl", GOOD)
    huge = _jsonl(
        tmp_path / "huge.jsonl",
        GOOD,
        json.dumps({"prompt": "x" * (64 << 20), "chosen": "a", "rejected": "b"}),
    )

    def peak(path: Path) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", _PEAK, str(path), str(tmp_path / "hf")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        return out[0] if len(out) > 1 else "", int(out[-1])

    _, baseline = peak(small)
    refused, grown = peak(huge)
    assert refused.startswith(f"{huge}: row 41 is longer than")
    assert grown - baseline < PEAK_BOUND_KB, (baseline, grown)


def _big_file(path: Path, rows: int) -> Path:
    with path.open("w") as handle:
        for i in range(rows):
            handle.write(
                json.dumps({"prompt": f"the movie {i} was", "chosen": " great", "rejected": " bad"}) + "\n"
            )
    return path


def _interrupt(command: list[str], cwd: Path, when) -> tuple[int, float]:
    """Run ``command``, SIGINT it once ``when()`` holds; returns its exit status and the seconds it took to
    exit after the signal."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # Ctrl-C as at a terminal, even when this test runs in a background job
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not when() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    process.wait(timeout=60)
    return process.returncode, time.monotonic() - sent


@pytest.mark.slow
def test_ctrl_c_while_the_data_is_read_or_tokenized_ends_in_seconds(tmp_path, tiny_world):
    """While the command line reads the file (before any trial: nothing written), and while the trial
    tokenizes it (the record says interrupted): exit 130 within seconds, never a hang or a 'running'
    record."""
    data = _big_file(tmp_path / "big.jsonl", 300_000)
    command = [
        sys.executable,
        "-m",
        "harness",
        *tiny_world,
        "data=files",
        f"data.path={data}",
        "method.max_steps=1",
    ]
    code, took = _interrupt(command, tmp_path, lambda: time.sleep(3) or True)  # reading takes longer
    assert code == 130 and took < 10, (code, took)
    assert not (tmp_path / "outputs").exists()

    records = lambda: list((tmp_path / "outputs").rglob("trial.json"))  # noqa: E731
    running = lambda: bool(records()) and json.loads(records()[0].read_text()).get("status") == "running"  # noqa: E731
    code, took = _interrupt(command, tmp_path, running)
    assert code == 130 and took < 10, (code, took)
    assert json.loads(records()[0].read_text())["status"] == "interrupted"
