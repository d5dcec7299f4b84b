"""The columns users bring and the model's chat template (issue 29): recognised schemas, ``data.columns``, the
system column, empty system messages, ``data.chat_template=auto|always|never``.

Each pins a failure seen on real data: an orca file whose answers all start with "Sure! " trained with
"Sure! ..." as its prompt, a ``system`` column dropped silently, empty system messages refused, string prompts
never given the chat template of a chat model. The pure-logic tests build no model; the training tests run
the CLI on the session's tiny real-architecture models (tests/realworld.py) and read the recorded prompts.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset

from harness.config.compose import compose_job
from harness.data import DataFormat, load_preference_data
from harness.data.chat_data import (
    CHAT_TEMPLATE_MODES,
    ChatRendering,
    apply_rendering,
    choose_rendering,
    prompt_messages,
)
from harness.data.schemas import map_columns
from harness.data.validate import DataWarning
from harness.errors import ConfigError, DataError
from tests.conftest import run_cli

SYSTEM = "You are a careful assistant."
FAST = [
    "method=dpo",
    "method.max_steps=2",
    "method.batch_size=4",
    "method.grad_accum=1",
    "train.num_checkpoints=1",
    "eval.num_prompts=4",
    "eval.selection.num_prompts=0",
    "eval.max_new_tokens=4",
    "eval.readable_samples=4",
    "eval.evaluators=[kl]",
    "train.num_threads=0",
    "data.eval_fraction=0.25",
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def orca_rows(n: int = 16) -> list[dict[str, Any]]:
    """Orca-style pairs whose answers all start with "Sure! " (a third with an empty system message)."""
    return [
        {
            "system": "" if i % 3 == 0 else SYSTEM,
            "question": f"What is {i} plus {i}?",
            "chosen": f"Sure! {i} plus {i} is {2 * i}.",
            "rejected": f"Sure! It is {i + 1}.",
            "id": i,
        }
        for i in range(n)
    ]


def alpaca_rows(n: int = 16) -> list[dict[str, Any]]:
    return [
        {
            "instruction": f"Repair the item number {i}.",
            "input": "" if i % 2 else f"The {i} shelf is loose.",
            "chosen": "Tighten the screws.",
            "rejected": "Throw it away.",
        }
        for i in range(n)
    ]


def _loaded(tmp_path: Path, rows: list[dict[str, Any]], **kw: Any):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return load_preference_data(str(_jsonl(tmp_path / "d.jsonl", rows)), **kw)


# -- recognised schemas --------------------------------------------------------------------------------------


@pytest.mark.unit
def test_an_orca_file_gives_its_question_as_the_prompt_not_the_answers_shared_start(tmp_path):
    data = _loaded(tmp_path, orca_rows())
    row = data.train[0]
    assert row["prompt"] == "What is 0 plus 0?" and row["chosen"].startswith("Sure! ")
    assert row["system"] == ""  # kept for the system turn; empty is accepted
    assert data.columns.schema.startswith("orca") and data.columns.renamed == {"question": "prompt"}
    assert data.columns.unused == ("id",)
    assert not any("Sure" in p for p in data.train["prompt"])


@pytest.mark.unit
@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (  # argilla/distilabel-intel-orca-dpo-pairs
            {"system": "", "input": "Q?", "chosen": "Sure! a", "rejected": "Sure! b", "rating": [1, 2]},
            {"prompt": "Q?", "chosen": "Sure! a", "rejected": "Sure! b"},
        ),
        (  # argilla/ultrafeedback-binarized-preferences
            {"instruction": "Q?", "chosen_response": "a", "rejected_response": "b", "chosen_avg_rating": 5.0},
            {"prompt": "Q?", "chosen": "a", "rejected": "b"},
        ),
        (  # instruction/input with a pair
            {"instruction": "Sum these.", "input": "1, 2", "chosen": "3", "rejected": "4"},
            {"prompt": "Sum these.\n\n1, 2", "chosen": "3", "rejected": "4"},
        ),
        (  # instruction/input/output with a label: unpaired
            {"instruction": "Sum these.", "input": "", "output": "3", "label": True},
            {"prompt": "Sum these.", "completion": "3", "label": True},
        ),
    ],
)
def test_common_schemas_are_read_as_trls_columns(row, expected):
    other = {k: (f"{v} too" if isinstance(v, str) and v else v) for k, v in row.items()}
    dataset, mapping = map_columns(Dataset.from_list([row, other]), announce=False)
    assert {k: dataset[0][k] for k in expected} == expected and mapping.schema


@pytest.mark.unit
@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"instruction": "Q?", "completions": [{"response": "a"}]}, "raw UltraFeedback"),
        ({"instruction": "Q?", "input": "", "output": "a"}, "no preference"),
    ],
)
def test_schemas_without_a_preference_are_refused_in_one_line(tmp_path, row, message):
    with pytest.raises(DataError, match=message) as err:
        _loaded(tmp_path, [row, {**row, "instruction": "R?"}])
    assert "\n" not in str(err.value)


@pytest.mark.unit
def test_columns_not_read_are_named_once_in_one_line(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", orca_rows())
    with pytest.warns(DataWarning) as caught:
        load_preference_data(str(path), eval_fraction=0.25)
    lines = [str(w.message) for w in caught if "not read" in str(w.message)]
    assert len(lines) == 1 and "columns not read: id" in lines[0] and "\n" not in lines[0]


# -- data.columns --------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_data_columns_maps_the_users_columns(tmp_path):
    rows = [
        {"question": f"Q{i}?", "response_j": f"good {i}", "response_k": f"bad {i}", "x": 1} for i in range(4)
    ]
    data = _loaded(
        tmp_path,
        rows,
        columns={"question": "prompt", "response_j": "chosen", "response_k": "rejected", "x": None},
    )
    assert data.train[1] == {"prompt": "Q1?", "chosen": "good 1", "rejected": "bad 1"}
    assert data.columns.schema == "data.columns" and data.columns.unused == ()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("columns", "error", "message"),
    [
        (
            {"questoin": "prompt"},
            DataError,
            "maps 'questoin', which the data does not have (its columns: system, question, chosen",
        ),
        ({"question": "answer"}, ConfigError, "maps 'question' to 'answer', which the harness does not read"),
        ({"question": "prompt", "id": "prompt"}, ConfigError, "all to 'prompt'"),
        ({"id": "chosen"}, DataError, "has a 'chosen' column already"),
    ],
)
def test_a_bad_mapping_is_one_line_naming_the_fix(tmp_path, columns, error, message):
    with pytest.raises(error) as err:
        _loaded(tmp_path, orca_rows(4), columns=columns)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- system turns and message contents -----------------------------------------------------------------------


@pytest.mark.unit
def test_empty_system_messages_are_accepted_and_content_errors_name_the_role(tmp_path):
    rows = [
        {
            "prompt": [{"role": "system", "content": ""}, {"role": "user", "content": f"Q{i}?"}],
            "chosen": [{"role": "assistant", "content": "yes"}],
            "rejected": [{"role": "assistant", "content": "no"}],
        }
        for i in range(4)
    ]
    assert len(_loaded(tmp_path, rows).train) == 4
    rows[1]["prompt"][1]["content"] = " "
    with pytest.raises(
        DataError,
        match=r"column 'prompt' has a 'user' message with empty content \(only a system message may be "
        r"empty\) in row 2",
    ):
        _loaded(tmp_path, rows)
    bad_system = [{**r, "system": 3} for r in orca_rows(4)]
    with pytest.raises(DataError, match="column 'system' is not a string in rows 1, 2, 3, 4"):
        _loaded(tmp_path, bad_system)


@pytest.mark.unit
def test_the_system_column_is_the_system_turn_or_plain_text_before_the_prompt(tmp_path):
    data = _loaded(tmp_path, orca_rows(), eval_fraction=0.25)
    chat = apply_rendering(data, ChatRendering("auto", True))
    assert str(chat.format) == "pairwise conversational" and "system" not in chat.train.column_names
    with_system = next(r for r in chat.train if r["prompt"][0]["role"] == "system")
    assert with_system["prompt"][0]["content"] == SYSTEM and with_system["prompt"][1]["role"] == "user"
    assert with_system["chosen"] == [{"role": "assistant", "content": with_system["chosen"][0]["content"]}]
    assert all(len(r["prompt"]) == 1 for r in chat.train if r["id"] % 3 == 0)  # empty system: no turn
    assert len(chat.eval_prompts) == len(data.eval) and all(isinstance(p, list) for p in chat.eval_prompts)
    plain = apply_rendering(data, ChatRendering("never", False))
    texts = {r["id"]: r["prompt"] for r in plain.train}
    some = next(i for i in texts if i % 3)
    assert (
        texts[some] == f"{SYSTEM}\n\nWhat is {some} plus {some}?" and str(plain.format) == "pairwise standard"
    )


@pytest.mark.unit
def test_hh_transcripts_become_their_turns():
    prompt = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant:"
    assert prompt_messages(prompt, "Be kind.") == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and?"},
    ]
    assert prompt_messages("Just text") == [{"role": "user", "content": "Just text"}]


# -- data.chat_template --------------------------------------------------------------------------------------


class _Tok:
    def __init__(self, template: str | None) -> None:
        self.chat_template, self.name_or_path = template, "tok"


@pytest.mark.unit
def test_chat_template_modes():
    from harness.config.validation import CHAT_TEMPLATE_MODES as CHECKED

    assert CHECKED == CHAT_TEMPLATE_MODES
    std, chat = DataFormat("pairwise"), DataFormat("pairwise", "conversational")
    assert choose_rendering("auto", _Tok("t"), std).describe() == (
        "applied to string prompts (auto: the tokenizer has a chat template)"
    )
    assert not choose_rendering("auto", _Tok(None), std).applied
    assert not choose_rendering("auto", _Tok("t"), std, plain_text_model=True).applied
    assert not choose_rendering("never", _Tok("t"), std).applied
    assert choose_rendering("never", _Tok("t"), chat).applied  # message lists always use the template
    with pytest.raises(
        DataError, match="data.chat_template=always but the tokenizer of tok has no chat template"
    ):
        choose_rendering("always", _Tok(None), std)


@pytest.mark.unit
@pytest.mark.parametrize("overrides", [["method=dpo"], ["method=orpo", "data=files", "data.path=x.jsonl"]])
def test_the_toy_world_resolves_to_never(overrides):
    """The toy model was pretrained on plain text: its string data never gets its tokenizer's template
    (data=toy says never; any data on a model with the toy profile resolves auto to not applied), so its
    results stay."""
    from harness.trial.setup import PLAIN_TEXT_PROFILES

    cfg = compose_job(overrides, {})
    plain = cfg.model.profile in PLAIN_TEXT_PROFILES
    rendering = choose_rendering(
        str(cfg.data.chat_template), _Tok("t"), DataFormat("pairwise"), plain_text_model=plain
    )
    assert not rendering.applied
    if "data=files" not in overrides:
        assert cfg.data.chat_template == "never"


# -- through the CLI, on a tiny real model -------------------------------------------------------------------


def _no_template_model(real_world, tmp_path: Path) -> Path:
    model = tmp_path / "plain-model"
    shutil.copytree(real_world.qwen2, model)
    (model / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    return model


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.columns={questoin: prompt}"], "data.columns maps 'questoin', which the data does not have"),
        # the same path in a fresh process each (seconds of imports): the slow tier runs the rest
        pytest.param(
            ["data.columns={question: answer}"],
            "data.columns maps 'question' to 'answer'",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["data.chat_template=sometimes"],
            "data.chat_template='sometimes' is invalid",
            marks=pytest.mark.slow,
        ),
        (["data.chat_template=always", "PLAIN"], "data.chat_template=always but the tokenizer of"),
    ],
)
def test_bad_data_settings_exit_2_in_one_line_before_compute(real_world, tmp_path, overrides, message):
    path = _jsonl(tmp_path / "orca.jsonl", orca_rows())
    model = _no_template_model(real_world, tmp_path) if "PLAIN" in overrides else real_world.qwen2
    args = ["model=hf", f"model.name_or_path={model}", "data=files", f"data.path={path}", *FAST]
    result = run_cli(
        [*args, *(o for o in overrides if o != "PLAIN"), f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if message in line]
    assert len(errors) == 1, result.stderr[-2000:]
    assert not list(tmp_path.rglob("trial.json"))


def _system_csv(path: Path) -> Path:
    import pandas as pd

    rows = [
        {
            "prompt": f"How do I fix the fence {i}?",
            "chosen": "Sure! Replace the post.",
            "rejected": "Sure! Paint it.",
            "system": SYSTEM if i % 2 else None,
        }
        for i in range(16)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(  # one real trial each; the slow tier runs the two that repeat the path
    "kind",
    [
        "orca",
        pytest.param("alpaca", marks=pytest.mark.slow),
        pytest.param("system_csv", marks=pytest.mark.slow),
    ],
)
def test_real_files_train_with_the_right_prompt(real_world, cache_dir, tmp_path, kind):
    """A real trial through the CLI: the recorded prompts (readable samples) hold the question, and the
    system text as a system turn, never the answers' shared "Sure! "."""
    if kind == "orca":
        path = _jsonl(tmp_path / "orca.jsonl", orca_rows())
    elif kind == "alpaca":
        path = _jsonl(tmp_path / "alpaca.jsonl", alpaca_rows())
    else:
        path = _system_csv(tmp_path / "system.csv")
    args = ["model=hf", f"model.name_or_path={real_world.qwen2}", "data=files", f"data.path={path}", *FAST]
    result = run_cli([*args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (trial,) = tmp_path.rglob("trial.json")
    record = json.loads(trial.read_text())
    assert record["status"] == "completed", record.get("error")
    data = record["data"]
    assert data["chat_template"] == "applied to string prompts (auto: the tokenizer has a chat template)"
    prompts = [s["prompt"] for s in record["reference"]["samples"]]
    assert prompts and not any("Sure" in p for p in prompts)
    if kind == "orca":
        assert data["columns"] == "orca (system/question/chosen/rejected): question -> prompt"
        assert data["columns_not_read"] == ["id"]
        assert all("plus" in p for p in prompts)
        assert any(p.startswith(f"system: {SYSTEM}\n\nuser: What is ") for p in prompts)
    elif kind == "alpaca":
        assert data["columns"].startswith(
            "instruction/input with chosen/rejected: instruction+input -> prompt"
        )
        assert all(p.startswith("Repair the item number") for p in prompts)
        assert any("\n\nThe " in p and "shelf is loose." in p for p in prompts)
    else:
        assert any(p.startswith(f"system: {SYSTEM}\n\nuser: How do I fix the fence ") for p in prompts)
        assert any(p.startswith("How do I fix the fence") for p in prompts)  # no system text: no system turn


@pytest.mark.unit
def test_the_report_says_what_the_chat_template_did():
    from harness import leaderboard
    from harness.leaderboard.markdown import to_markdown
    from harness.records import DataSummary
    from tests.test_conclusions import trial

    applied = "applied to string prompts (auto: the tokenizer has a chat template)"
    records = [trial("dpo", 0.5, 0), trial("orpo", 0.4, 0)]
    for record in records:
        record.data = DataSummary(chat_template=applied)
    assert f"Chat template: {applied}." in to_markdown(leaderboard.build(records, title="t"))
    records[1].data = DataSummary(chat_template="not applied (never: strings as they are)")
    text = to_markdown(leaderboard.build(records, title="t"))
    assert (
        f"Chat template: {applied} (1 trials); not applied (never: strings as they are) (1 trials)." in text
    )
