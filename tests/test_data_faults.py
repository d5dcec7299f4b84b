"""Faults in a user's data file end in one line naming the file, where (row or line, from 1) and the fix,
before any compute: an empty file, a file that is not UTF-8, rows and lines counted from 1, a null told from a
missing key, prompts longer than the trial's max length (a warning line, not an error), and a held-out split
that honours ``data.eval_fraction`` by whole prompts."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before datasets is imported anywhere in this module
os.environ["HF_DATASETS_OFFLINE"] = "1"

import json  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from datasets import Dataset  # noqa: E402

from harness.data import count_lengths, fit_to_length, load_preference_data  # noqa: E402
from harness.data import files as data_files  # noqa: E402
from harness.errors import DataError  # noqa: E402
from tests.helpers import cli_error_line  # noqa: E402

pytestmark = pytest.mark.unit

PAIRS = [
    {"prompt": f"Review {i}:", "chosen": f" great film {i}", "rejected": f" awful film {i}"}
    for i in range(10)
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def kw(tmp_path: Path) -> dict[str, str]:
    """Keep datasets' cache inside the test's tmp dir."""
    return {"cache_dir": str(tmp_path / "hf-cache")}


def cli_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> str:
    """The one error line of ``python -m harness args`` (see :func:`tests.helpers.cli_error_line`), without
    its ``harness: error:`` prefix."""
    return cli_error_line(tmp_path, monkeypatch, capsys, args).removeprefix("harness: error: ")


# -- 1. an empty file ----------------------------------------------------------------------------------------


def test_an_empty_file_is_one_line_naming_it_and_the_fix(tmp_path, monkeypatch, capsys):
    """Through the command line once (one line, exit 2, nothing run); every format and kind of emptiness
    through the check the command line calls (composing a config per case would cost the unit tier
    seconds)."""
    from harness.data.files import check_data_file
    from harness.errors import DataError

    path = tmp_path / "prefs.jsonl"
    path.write_bytes(b"")
    message = cli_error(tmp_path, monkeypatch, capsys, ["data=files", f"data.path={path}"])
    assert message.startswith(f"Data file {path} is empty (0 bytes); fill it with preference data (")
    assert 'one JSON object per line, e.g. {"prompt": "...", "chosen": "...", "rejected": "..."}' in message
    for ext in ("jsonl", "json", "csv", "parquet"):
        for content, why in ((b"", "(0 bytes)"), (b" \n\t\n  ", "(6 bytes of whitespace only)")):
            path = tmp_path / f"prefs.{ext}"
            path.write_bytes(content)
            with pytest.raises(DataError) as raised:
                check_data_file(path)
            text = str(raised.value)
            assert text.startswith(f"Data file {path} is empty {why}; fill it with preference data (")
            assert text.endswith("or point data.path at the file that holds it.")


@pytest.mark.parametrize(
    ("name", "content"), [("prefs.json", "[]"), ("prefs.csv", "prompt,chosen,rejected\n")]
)
def test_a_file_with_no_records_says_so(tmp_path, kw, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError) as err:
        load_preference_data(str(tmp_path / name), **kw)
    assert str(err.value) == (
        f"{tmp_path / name} holds no records (e.g. an empty JSON array, or a CSV header "
        "alone); write the preference data into it."
    )


# -- 2. not UTF-8 --------------------------------------------------------------------------------------------


def _latin1_jsonl(path: Path) -> tuple[Path, str]:
    """A JSON Lines file whose third line holds a Latin-1 'é'; returns it and where the error must point."""
    rows = [dict(r) for r in PAIRS[:5]]
    rows[2]["chosen"] = " a café film"
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("latin-1")
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    line = data[:offset].count(b"\n") + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    assert line == 3
    return path, f"byte 0xe9 at line {line}, column {column} (byte {offset + 1} of the file)"


def test_a_file_that_is_not_utf8_names_the_line_the_byte_and_the_fix(tmp_path, monkeypatch, capsys):
    path, where = _latin1_jsonl(tmp_path / "prefs.jsonl")
    message = cli_error(tmp_path, monkeypatch, capsys, ["data=files", f"data.path={path}"])
    assert message == (
        f"Data file {path} is not UTF-8 text: {where} is not valid UTF-8; re-save the file as UTF-8 "
        "(e.g. iconv -f latin1 -t utf-8 prefs.jsonl > utf8-prefs.jsonl, or 'Save as UTF-8' in an "
        "editor)."
    )


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 22])
def test_the_bad_byte_is_located_the_same_whatever_the_read_size(tmp_path, monkeypatch, chunk):
    path, where = _latin1_jsonl(tmp_path / "prefs.jsonl")
    monkeypatch.setattr(data_files, "_CHUNK", chunk)
    with pytest.raises(DataError, match=f"not UTF-8 text: {where.replace('(', '[(]').replace(')', '[)]')}"):
        data_files.check_data_file(path)
    good = tmp_path / "good.csv"
    good.write_text(
        "prompt,chosen,rejected\ncafé,é,è\n", encoding="utf-8"
    )  # multi-byte characters across reads
    data_files.check_data_file(good)
    cut = tmp_path / "cut.csv"
    cut.write_bytes(b"prompt,chosen\nab,caf" + "é".encode()[:1])  # ends inside a character
    with pytest.raises(DataError, match=r"byte 0xc3 at line 2, column 7 \(byte 21 of the file\)"):
        data_files.check_data_file(cut)


def test_a_csv_file_that_is_not_utf8_is_located_too(tmp_path, kw):
    path = tmp_path / "prefs.csv"
    path.write_bytes("prompt,chosen,rejected\nq,a,b\nq2,très bien,non\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        load_preference_data(str(path), **kw)
    assert str(err.value).startswith(
        f"Data file {path} is not UTF-8 text: byte 0xe8 at line 3, column 6 (byte 35 "
        "of the file) is not valid UTF-8; re-save the file as UTF-8"
    )


# -- 3. rows and lines count from 1 --------------------------------------------------------------------------


def test_a_jsonl_syntax_error_names_its_line_from_1(tmp_path, monkeypatch, capsys):
    path = tmp_path / "prefs.jsonl"
    lines = [json.dumps(r) for r in PAIRS[:3]]
    lines[1] = '{"prompt": "a", "chosen" "b", "rejected": "c"}'  # line 2: no colon
    path.write_text("\n".join(lines) + "\n")
    message = cli_error(tmp_path, monkeypatch, capsys, ["data=files", f"data.path={path}"])
    assert message == (
        f"Could not read {path} as JSON Lines: line 2, column 26: Expecting ':' delimiter; fix the "
        "file so that it is valid JSON Lines."
    )


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        (
            "prefs.json",
            '[{"prompt": "a", "chosen": "b", "rejected": "c"},\n {"prompt": "a", "chosen": "b"\n]',
            "line 3, column 1: Expecting ',' delimiter",
        ),
        (
            "prefs.jsonl",
            '{"prompt": "a", "chosen": "b", "rejected": "c"}\n\n["a", "b"]\n',
            "line 3: an array, not a JSON object (one record per line)",
        ),
        ("prefs.csv", 'prompt,chosen,rejected\na,b,c\n"d,e,f\n', "EOF inside string starting at line 3"),
    ],
)
def test_parse_errors_count_lines_from_1(tmp_path, kw, name, content, where):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError) as err:
        load_preference_data(str(tmp_path / name), **kw)
    assert where in str(err.value) and "row 0" not in str(err.value) and "\n" not in str(err.value)


def test_rows_after_a_dropped_tie_keep_their_own_numbers(tmp_path, kw):
    rows = [{"chosen": f"Review {i}: great", "rejected": f"Review {i}: awful"} for i in range(4)]
    rows[1]["rejected"] = rows[1]["chosen"]  # row 2: a tie, dropped
    rows.append({"chosen": "yes", "rejected": "no"})  # row 5: no shared prompt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError) as err:
            load_preference_data(str(write_jsonl(tmp_path / "p.jsonl", rows)), **kw)
    assert "column 'prompt' cannot be extracted (chosen and rejected share no prefix) in row 5;" in str(
        err.value
    )


# -- 4. a null is not a missing key --------------------------------------------------------------------------


def test_a_null_and_a_missing_key_are_told_apart(tmp_path, monkeypatch, capsys):
    rows = [dict(r) for r in PAIRS]
    rows[2]["prompt"] = None  # row 3: "prompt": null
    del rows[3]["prompt"]  # row 4: no "prompt" key
    rows[6]["rejected"] = None  # row 7
    path = write_jsonl(tmp_path / "prefs.jsonl", rows)
    message = cli_error(tmp_path, monkeypatch, capsys, ["data=files", f"data.path={path}"])
    assert message == (
        f"{path}: invalid preference data: column 'prompt' is null in row 3; column 'prompt' is missing "
        "in row 4; column 'rejected' is null in row 7; fix or remove these rows (rows are numbered "
        "from 1)."
    )


def test_nulls_in_a_json_array_a_label_and_a_csv_cell(tmp_path, kw):
    unpaired = [{"prompt": f"p{i}", "completion": f"c{i}", "label": True} for i in range(4)]
    unpaired[1]["label"] = None
    del unpaired[2]["label"]
    (tmp_path / "u.json").write_text(json.dumps(unpaired))
    with pytest.raises(DataError) as err:
        load_preference_data(str(tmp_path / "u.json"), **kw)
    assert "column 'label' is null in row 2; column 'label' is missing in row 3;" in str(err.value)
    (tmp_path / "p.csv").write_text("prompt,chosen,rejected\nq,a,b\nq2,,b\n")
    with pytest.raises(DataError, match="column 'chosen' is an empty cell in row 2;"):
        load_preference_data(str(tmp_path / "p.csv"), **kw)


# -- 5. prompts longer than the max length: one warning line -------------------------------------------------


class Words:
    """A whitespace tokenizer."""

    eos_token = "</s>"

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> dict[str, list[list[str]]]:
        return {"input_ids": [t.split() for t in texts]}


LONG = Dataset.from_list(
    [
        {"prompt": "a b", "chosen": " c", "rejected": " d"},  # 2 + 2 tokens: fits 6
        {"prompt": "a b c d", "chosen": " e f g", "rejected": " h"},  # 4 + 3 = 7 > 6: truncated
        {"prompt": "a b c d e f g", "chosen": " h", "rejected": " i"},  # the prompt alone reaches 6: dropped
        {"prompt": "a", "chosen": " b", "rejected": " c"},
    ]
)


def test_rows_longer_than_max_length_get_one_warning_line_with_count_share_and_fix():
    report = count_lengths(LONG, Words(), 6)[0]
    assert report.warning("method.trl.max_length") == (
        "training data: 1 of 4 rows (25.0%) have a prompt + completion longer than method.trl.max_length=6 "
        "tokens and will be truncated to it; dropped 1 of 4 rows (25.0%) whose prompt alone has at least "
        "method.trl.max_length=6 tokens (the longest: 7), leaving no room for a completion; raise "
        "method.trl.max_length or filter the long rows out of the data."
    )
    truncated_only = count_lengths(LONG.select([0, 1, 3]), Words(), 6)[0]
    assert truncated_only.warning("method.trl.max_length") == (
        "training data: 1 of 3 rows (33.3%) have a prompt + completion longer than "
        "method.trl.max_length=6 tokens and will be truncated to it; raise "
        "method.trl.max_length or filter the long rows out of the data."
    )
    assert count_lengths(LONG, Words(), 100)[0].warning() is None


def test_the_trial_prints_the_truncation_warning_once_before_training(tmp_path, capsys):
    """Where the trial knows both the tokenizer and the max length (harness.trial.setup.fit_length), nothing
    is tokenized twice and one warning line is printed."""
    from harness.config.compose import compose_job
    from harness.plugin.manager import get_plugin_manager
    from harness.records import DataSummary
    from harness.trial.setup import fit_length

    cfg = compose_job(["method=dpo", "method.trl.max_length=6"], {})
    summary = DataSummary()
    kept = fit_length(cfg, get_plugin_manager().method("dpo"), LONG.select([0, 1, 3]), Words(), summary)
    assert len(kept) == 3 and summary.truncated == 1 and summary.train_examples == 3
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "harness: warning: training data: 1 of 3 rows (33.3%) have a prompt + completion longer than "
        "method.trl.max_length=6 tokens and will be truncated to it; raise method.trl.max_length or "
        "filter the long rows out of the data."
    ]
    _, report = fit_to_length(LONG.select([0, 3]), Words(), 6)
    assert report.warning() is None


# -- 6. the held-out split honours eval_fraction, by whole prompts -------------------------------------------


def _grouped(path: Path, sizes: list[int]) -> Path:
    rows = [
        {"prompt": f"P{g}", "chosen": f" good {g}.{i}", "rejected": f" bad {g}.{i}"}
        for g, size in enumerate(sizes)
        for i in range(size)
    ]
    return write_jsonl(path, rows)


@pytest.mark.parametrize("seed", range(8))
def test_few_prompts_of_unequal_size_hold_out_close_to_eval_fraction(tmp_path, kw, seed):
    path = str(_grouped(tmp_path / "p.jsonl", [18, 2]))  # two prompts: 90% and 10% of the rows
    data = load_preference_data(path, eval_fraction=0.1, seed=seed, **kw)
    assert data.eval_prompts == ["P1"] and len(data.eval) == 2 and len(data.train) == 18
    data = load_preference_data(
        str(_grouped(tmp_path / "q.jsonl", [6, 5, 4, 3, 2])), eval_fraction=0.25, seed=seed, **kw
    )
    assert abs(len(data.eval) - 5) <= 1  # a quarter of 20 rows, in whole prompts
    assert not set(data.eval["prompt"]) & set(data.train["prompt"])


def test_equal_prompts_hold_out_the_rounded_fraction_and_keep_one_for_training(tmp_path, kw):
    singles = str(_grouped(tmp_path / "s.jsonl", [1] * 20))
    assert len(load_preference_data(singles, eval_fraction=0.05, **kw).eval_prompts) == 1
    assert len(load_preference_data(singles, eval_fraction=0.1, **kw).eval_prompts) == 2
    assert len(load_preference_data(singles, eval_fraction=0.02, **kw).eval_prompts) == 1  # at least one
    three = load_preference_data(str(_grouped(tmp_path / "t.jsonl", [4, 4, 4])), eval_fraction=0.9, **kw)
    assert len(three.eval_prompts) == 2 and len(three.train) == 4  # at least one prompt left to train on


def test_a_single_prompt_cannot_be_held_out_in_one_line(tmp_path, monkeypatch, capsys):
    path = _grouped(tmp_path / "prefs.jsonl", [12])
    message = cli_error(
        tmp_path, monkeypatch, capsys, ["data=files", f"data.path={path}", "data.eval_fraction=0.1"]
    )
    assert message == (
        f"{path}: all 12 rows have the same prompt, so eval_fraction=0.1 cannot hold out a prompt that "
        "training does not see; add rows with other prompts, or set data.eval_split to a held-out "
        "split."
    )
