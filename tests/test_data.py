"""harness.data: format detection, loading every file type, row-level validation, ties, conversion."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before datasets is imported anywhere in this module
os.environ["HF_DATASETS_OFFLINE"] = "1"

import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from datasets import Dataset, DatasetDict  # noqa: E402

from harness.data import (  # noqa: E402
    DataFormat,
    DataWarning,
    PreferenceData,
    build_preference_dataset,
    data_for_method,
    detect_format,
    extract_prompts,
    load_dataset_from,
    load_preference_data,
    split_common_prefix,
    split_prompt,
    to_unpaired,
    validate,
)
from harness.errors import DataError  # noqa: E402

pytestmark = pytest.mark.unit


def msgs(user: str, assistant: str | None = None) -> list[dict[str, str]]:
    out = [{"role": "user", "content": user}]
    return out + ([{"role": "assistant", "content": assistant}] if assistant is not None else [])


PAIRS = [
    {"prompt": f"Review {i}:", "chosen": f" great film {i}", "rejected": f" awful film {i}"}
    for i in range(10)
]
CONV = [
    {
        "prompt": msgs(f"q{i}"),
        "chosen": [{"role": "assistant", "content": f"yes {i}"}],
        "rejected": [{"role": "assistant", "content": f"no {i}"}],
    }
    for i in range(4)
]
UNPAIRED = [{"prompt": f"p{i}", "completion": f"c{i}", "label": i % 2 == 0} for i in range(6)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows_in(message: str) -> list[int]:
    """The row numbers a DataError message names (after 'row'/'rows')."""
    found = re.findall(r"rows? ((?:\d+(?:, )?)+)", message)
    return [int(n) for group in found for n in group.split(", ")]


@pytest.fixture
def kw(tmp_path: Path) -> dict[str, str]:
    """Keep datasets' cache inside the test's tmp dir."""
    return {"cache_dir": str(tmp_path / "hf-cache")}


# -- format detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (PAIRS[0], DataFormat("pairwise", "standard", False)),
        ({"chosen": "Q: hi A: yes", "rejected": "Q: hi A: no"}, DataFormat("pairwise", "standard", True)),
        (CONV[0], DataFormat("pairwise", "conversational", False)),
        (
            {"chosen": msgs("q", "a"), "rejected": msgs("q", "b")},
            DataFormat("pairwise", "conversational", True),
        ),
        (
            {"prompt": "q", "chosen": msgs("q", "a"), "rejected": msgs("q", "b")},
            DataFormat("pairwise", "conversational", True),
        ),
        (UNPAIRED[0], DataFormat("unpaired", "standard", False)),
        (
            {"prompt": msgs("q"), "completion": [{"role": "assistant", "content": "a"}], "label": True},
            DataFormat("unpaired", "conversational", False),
        ),
    ],
)
def test_detect_format(row: dict[str, Any], expected: DataFormat) -> None:
    assert detect_format(list(row) + ["extra"], {**row, "extra": 1}) == expected


def test_detect_format_unknown_columns() -> None:
    with pytest.raises(DataError) as err:
        detect_format(["question", "answer"], {"question": "q", "answer": "a"})
    message = str(err.value)
    assert "Unrecognised preference data columns ['question', 'answer']" in message
    assert "prompt/chosen/rejected (pairwise)" in message and "prompt/completion/label (unpaired)" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("columns", "missing"), [(["prompt", "chosen"], "['rejected']"), (["prompt", "completion"], "['label']")]
)
def test_detect_format_missing_column(columns: list[str], missing: str) -> None:
    with pytest.raises(DataError, match=re.escape(f"lack {missing}")):
        detect_format(columns, dict.fromkeys(columns, "x"))


def test_detect_format_prompt_messages_with_string_completions() -> None:
    with pytest.raises(DataError, match="message lists in all three"):
        detect_format(["prompt", "chosen", "rejected"], {"prompt": msgs("q"), "chosen": "a", "rejected": "b"})


# -- loading -----------------------------------------------------------------------------------------------


def _write(tmp_path: Path, kind: str) -> Path:
    if kind == "jsonl":
        return write_jsonl(tmp_path / "prefs.jsonl", PAIRS)
    if kind == "json":
        path = tmp_path / "prefs.json"
        path.write_text(json.dumps(PAIRS))
        return path
    if kind == "csv":
        path = tmp_path / "prefs.csv"
        Dataset.from_list(PAIRS).to_csv(str(path), index=False)
        return path
    if kind == "parquet":
        path = tmp_path / "prefs.parquet"
        Dataset.from_list(PAIRS).to_parquet(str(path))
        return path
    if kind == "saved":
        Dataset.from_list(PAIRS).save_to_disk(str(tmp_path / "saved"))
        return tmp_path / "saved"
    if kind == "saved_dict":
        DatasetDict(train=Dataset.from_list(PAIRS), test=Dataset.from_list(PAIRS[:2])).save_to_disk(
            str(tmp_path / "saved_dict")
        )
        return tmp_path / "saved_dict"
    (tmp_path / "files").mkdir()
    write_jsonl(tmp_path / "files" / "train.jsonl", PAIRS)
    write_jsonl(tmp_path / "files" / "test.jsonl", PAIRS[:2])
    return tmp_path / "files"


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet", "saved", "saved_dict", "files"])
def test_load_each_file_type(tmp_path: Path, kw: dict[str, str], kind: str) -> None:
    dataset = load_dataset_from(str(_write(tmp_path, kind)), **kw)
    assert len(dataset) == len(PAIRS)
    assert dataset[3] == PAIRS[3]


@pytest.mark.parametrize("kind", ["saved_dict", "files"])
def test_load_named_split_and_unknown_split(tmp_path: Path, kw: dict[str, str], kind: str) -> None:
    path = str(_write(tmp_path, kind))
    assert len(load_dataset_from(path, split="test", **kw)) == 2
    with pytest.raises(DataError, match="has no split 'validation'.*train"):
        load_dataset_from(path, split="validation", **kw)


def test_load_conversational_jsonl(tmp_path: Path, kw: dict[str, str]) -> None:
    data = load_preference_data(str(write_jsonl(tmp_path / "c.jsonl", CONV)), **kw)
    assert data.format == DataFormat("pairwise", "conversational")
    assert data.train[1]["prompt"] == msgs("q1")


def test_load_missing_file_and_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset_from(str(tmp_path / "nope.jsonl"))
    (tmp_path / "prefs.txt").write_text("hello")
    with pytest.raises(DataError, match=r"Unsupported data file .*\.jsonl, \.json, \.csv, \.parquet"):
        load_dataset_from(str(tmp_path / "prefs.txt"))


def test_load_malformed_json_is_a_data_error(tmp_path: Path, kw: dict[str, str]) -> None:
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "chosen": "b"\n')
    with pytest.raises(DataError, match="Could not read .*bad.jsonl as JSON Lines"):
        load_dataset_from(str(tmp_path / "bad.jsonl"), **kw)


def test_offline_hub_id_not_cached() -> None:
    with pytest.raises(DataError) as err:
        load_dataset_from("harness-tests/no-such-dataset")
    message = str(err.value)
    assert "'harness-tests/no-such-dataset' is not cached locally" in message
    assert "offline" in message and "download it" in message and "local" in message and "\n" not in message


# -- validation ----------------------------------------------------------------------------------------------


def _validate(rows: list[dict[str, Any]]) -> tuple[Dataset, Any]:
    dataset = Dataset.from_list(rows)
    return validate(dataset, detect_format(dataset.column_names, rows[0]), "prefs.jsonl")


def test_empty_and_missing_fields_name_rows() -> None:
    rows = [dict(r) for r in PAIRS]
    rows[1]["chosen"], rows[4]["chosen"], rows[6]["rejected"] = "   ", "", None
    with pytest.raises(DataError) as err:
        _validate(rows)
    message = str(err.value)
    assert message.startswith("prefs.jsonl: invalid preference data")
    assert "column 'chosen' is empty or whitespace-only in rows 2, 5" in message
    assert "column 'rejected' is null in row 7" in message  # a None in a dataset is a null, not a missing key
    assert "\n" not in message


def test_missing_key_in_jsonl_names_row(tmp_path: Path, kw: dict[str, str]) -> None:
    rows = [dict(r) for r in PAIRS]
    del rows[2]["rejected"]
    with pytest.raises(DataError, match="column 'rejected' is missing in row 3;"):
        load_preference_data(str(write_jsonl(tmp_path / "p.jsonl", rows)), **kw)


def test_non_string_field_and_and_n_more(tmp_path: Path, kw: dict[str, str]) -> None:
    rows = [{**r, "chosen": i} for i, r in enumerate(PAIRS)]  # every chosen is a number
    with pytest.raises(DataError) as err:
        load_preference_data(str(write_jsonl(tmp_path / "p.jsonl", rows)), **kw)
    assert "column 'chosen' is not a string in rows 1, 2, 3, 4, 5 and 5 more" in str(err.value)
    mixed = [dict(r) for r in PAIRS]
    mixed[8]["rejected"] = 3.5
    with pytest.raises(DataError, match="column 'rejected' is not a string in row 9;"):
        load_preference_data(str(write_jsonl(tmp_path / "m.jsonl", mixed)), **kw)


def test_bad_message_lists(tmp_path: Path, kw: dict[str, str]) -> None:
    rows = [dict(r) for r in CONV]
    rows[1]["chosen"] = [{"role": "assistant"}]  # no content
    rows[2]["rejected"] = [{"role": "bot", "content": "no"}]
    rows[3]["prompt"] = "a string, not messages"
    with pytest.raises(DataError) as err:
        load_preference_data(str(write_jsonl(tmp_path / "c.jsonl", rows)), **kw)
    message = str(err.value)
    assert "column 'chosen' has a message that is not {'role': str, 'content': str} in row 2" in message
    assert "column 'rejected' has a message with unknown role 'bot'" in message and "in row 3" in message
    assert "column 'prompt' is not a message list in row 4" in message


def test_non_bool_label(tmp_path: Path, kw: dict[str, str]) -> None:
    rows = [dict(r) for r in UNPAIRED]
    rows[1]["label"], rows[4]["label"] = 1, "yes"
    with pytest.raises(DataError) as err:
        load_preference_data(str(write_jsonl(tmp_path / "u.jsonl", rows)), **kw)
    assert "column 'label' is not a boolean (use true/false) in rows 2, 5" in str(err.value)
    assert rows_in(str(err.value)) == [2, 5]


def test_ties_dropped_with_count() -> None:
    rows = [dict(r) for r in PAIRS]
    rows[2]["rejected"] = rows[2]["chosen"] + "  "
    rows[7]["rejected"] = " " + rows[7]["chosen"]
    with pytest.warns(DataWarning, match="dropped 2 tied pairs"):
        clean, report = _validate(rows)
    assert (report.rows_in, report.rows_out, report.ties_dropped) == (10, 8, 2)
    assert [r["prompt"] for r in clean] == [r["prompt"] for i, r in enumerate(PAIRS) if i not in (2, 7)]
    conv = [dict(r) for r in CONV]
    conv[0]["rejected"] = [{"role": "assistant", "content": "yes 0 "}]
    with pytest.warns(DataWarning, match="dropped 1 tied pairs"):
        assert _validate(conv)[1].ties_dropped == 1


# -- implicit prompts, conversion ----------------------------------------------------------------------------


def test_split_common_prefix_cuts_at_words() -> None:
    assert split_common_prefix("The sky is blue", "The sky is bright") == ("The sky is", " blue", " bright")
    assert split_common_prefix("Q: hi\nA: yes", "Q: hi\nA: no") == ("Q: hi\nA:", " yes", " no")
    assert split_common_prefix("The sky is blue", "The sky is blue and green")[0] == "The sky is"


def test_split_prompt_hh_transcripts_at_the_last_assistant_marker() -> None:
    hh = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: more?\n\nAssistant:"
    assert split_prompt(hh + " Sure, yes", hh + " Sure, no") == (hh, " Sure, yes", " Sure, no")
    assert split_prompt("Q: hi A: Sure, yes", "Q: hi A: Sure, no") == ("Q: hi A: Sure,", " yes", " no")


def test_implicit_prompt_extraction(tmp_path: Path, kw: dict[str, str]) -> None:
    rows = [{"chosen": f"Review {i}: great film", "rejected": f"Review {i}: awful film"} for i in range(4)]
    data = load_preference_data(str(write_jsonl(tmp_path / "i.jsonl", rows)), **kw)
    assert data.report.format.implicit_prompt and not data.format.implicit_prompt
    assert data.train[0] == {"prompt": "Review 0:", "chosen": " great film", "rejected": " awful film"}
    conv = [{"chosen": msgs(f"q{i}", "yes"), "rejected": msgs(f"q{i}", "no")} for i in range(3)]
    out = extract_prompts(Dataset.from_list(conv))
    assert out[2] == {
        "prompt": msgs("q2"),
        "chosen": [{"role": "assistant", "content": "yes"}],
        "rejected": [{"role": "assistant", "content": "no"}],
    }
    bad = rows + [{"chosen": "yes", "rejected": "no"}]
    with pytest.raises(
        DataError, match="column 'prompt' cannot be extracted .* in row 5;.*add a 'prompt' column"
    ):
        load_preference_data(str(write_jsonl(tmp_path / "b.jsonl", bad)), **kw)


def test_eval_fraction_holds_out_whole_prompts(tmp_path: Path, kw: dict[str, str]) -> None:
    rows = [{**r, "prompt": f"P{i % 5}"} for i, r in enumerate(PAIRS)]  # 5 prompts, 2 pairs each
    path = str(write_jsonl(tmp_path / "p.jsonl", rows))
    data = load_preference_data(path, eval_fraction=0.4, seed=3, **kw)
    assert isinstance(data, PreferenceData) and data.eval is not None
    assert len(data.eval_prompts) == 2 and len(data.eval) == 4 and len(data.train) == 6
    assert not set(data.eval_prompts) & set(data.train["prompt"])
    assert data.eval_prompts == list(dict.fromkeys(data.eval["prompt"]))
    assert load_preference_data(path, eval_fraction=0.4, seed=3, **kw).eval_prompts == data.eval_prompts
    assert load_preference_data(path, **kw).eval is None


def test_eval_split(tmp_path: Path, kw: dict[str, str]) -> None:
    data = load_preference_data(str(_write(tmp_path, "files")), eval_split="test", **kw)
    assert len(data.train) == 10 and len(data.eval) == 2
    assert data.eval_prompts == ["Review 0:", "Review 1:"]
    assert (data.report.rows_in, data.report.rows_out, data.report.ties_dropped) == (10, 10, 0)


def test_to_unpaired() -> None:
    unpaired = to_unpaired(Dataset.from_list(PAIRS[:3]))
    assert len(unpaired) == 6 and sorted(unpaired.column_names) == ["completion", "label", "prompt"]
    assert sum(unpaired["label"]) == 3
    rows = {(r["prompt"], r["completion"], r["label"]) for r in unpaired}
    assert ("Review 1:", " great film 1", True) in rows and ("Review 1:", " awful film 1", False) in rows
    implicit = to_unpaired(Dataset.from_list([{"chosen": "Q: a yes", "rejected": "Q: a no"}]))
    assert implicit[0] == {"completion": " yes", "label": True, "prompt": "Q: a"}
    assert to_unpaired(Dataset.from_list(UNPAIRED)).num_rows == len(UNPAIRED)


def test_data_for_method_passes_only_the_kinds_columns() -> None:
    rows = [{**r, "prompt_id": str(i), "score": 1.0} for i, r in enumerate(PAIRS)]
    data = PreferenceData(
        train=Dataset.from_list(rows), eval=None, eval_prompts=[], format=DataFormat("pairwise"), report=None
    )  # type: ignore[arg-type]
    train, held_out = data_for_method(data, "pairwise")
    assert train.column_names == ["prompt", "chosen", "rejected"] and held_out is None
    assert data_for_method(data, "unpaired")[0].column_names == ["prompt", "completion", "label"]
    assert data_for_method(data, "prompts")[0].to_dict() == {"prompt": [r["prompt"] for r in PAIRS]}
    with pytest.raises(DataError, match="method m declares data_kind='pairs'; use one of"):
        data_for_method(data, "pairs", "m")


def test_build_preference_dataset() -> None:
    with pytest.warns(DataWarning, match="dropped 1 tied pairs"):
        ds = build_preference_dataset(
            ["p1", "p2", "p3"], ["good", "bad", "same"], ["bad", "good", " same"], ["a", "b", "a"]
        )
    assert ds.to_list() == [
        {"prompt": "p1", "chosen": "good", "rejected": "bad"},
        {"prompt": "p2", "chosen": "good", "rejected": "bad"},
    ]
    with pytest.raises(DataError, match="equally long"):
        build_preference_dataset(["p"], ["a"], ["b"], ["a", "b"])
    with pytest.raises(DataError, match=r"column 'labels' is not 'a' or 'b' in rows 2, 3;"):
        build_preference_dataset(["p"] * 3, ["x"] * 3, ["y"] * 3, ["a", "B", None])
