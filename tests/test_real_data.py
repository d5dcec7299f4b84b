"""What users bring: real dataset formats (UltraFeedback-binarized, HH-RLHF, KTO unpaired)
on real-architecture models.

Each test pins a failure seen on such data: extra columns that TRL's experimental trainers refuse,
conversational prompts that reached PPO's tokenizer raw, HH prompts that ran into answers which start alike,
rows whose prompt alone fills ``max_length`` (dropped silently by TRL, miscounted in the record). The
pure-logic tests build only a tokenizer (a second); the training tests use the session's ``real_world``
fixture (tests/realworld.py) and train two tiny steps each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset

from harness.config.compose import compose_job
from harness.data import (
    METHOD_COLUMNS,
    count_lengths,
    data_for_method,
    fit_to_length,
    load_preference_data,
    render_prompts,
    split_prompt,
)
from harness.errors import DataError
from harness.trial import TrialRun
from tests.realworld import build_tokenizer, hh_rows, kto_rows, ultrafeedback_rows

ASSISTANT = "\n\nAssistant:"
# Two tiny steps, few short evaluation samples, the cheap evaluators.
FAST = [
    "method.max_steps=2",
    "method.batch_size=4",
    "method.grad_accum=1",
    "train.num_checkpoints=1",
    "eval.num_prompts=4",
    "eval.selection.num_prompts=4",
    "eval.max_new_tokens=8",
    "eval.evaluators=[kl,text_stats]",
    "train.num_threads=0",
]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The fixture's ChatML byte-level BPE tokenizer, alone (no model)."""
    corpus = [m["content"] for r in ultrafeedback_rows(48, seed=1) for m in r["chosen"] + r["rejected"]]
    return build_tokenizer(
        tmp_path_factory.mktemp("tokenizer"), corpus + [r["chosen"] for r in hh_rows(48, seed=3)]
    )


@pytest.fixture(scope="module")
def ultrafeedback(tmp_path_factory: pytest.TempPathFactory):
    """UltraFeedback-binarized rows (string prompt, message lists that repeat it, extra columns), loaded."""
    path = _jsonl(tmp_path_factory.mktemp("uf") / "uf.jsonl", ultrafeedback_rows(48, seed=1))
    return load_preference_data(str(path), eval_fraction=0.25)


# -- pure logic ----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_hh_prompts_end_at_the_last_assistant_marker_even_when_answers_start_alike(tmp_path):
    rows = hh_rows(48, seed=3)
    data = load_preference_data(str(_jsonl(tmp_path / "hh.jsonl", rows)))
    train = data.train.to_list()
    assert len(train) == len(rows)
    for row, source in zip(train, rows, strict=True):
        assert row["prompt"].endswith(ASSISTANT) and row["prompt"].count(ASSISTANT) == 2
        assert (
            row["prompt"] + row["chosen"] == source["chosen"]
            and row["prompt"] + row["rejected"] == source["rejected"]
        )
    alike = train[::4]  # every fourth pair's answers both start with "Well,"
    assert all(r["chosen"].startswith(" Well,") and r["rejected"].startswith(" Well,") for r in alike)


@pytest.mark.unit
def test_the_hh_rule_takes_the_last_shared_marker_and_other_text_keeps_the_common_prefix():
    turns = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?"
    assert (
        split_prompt(f"{turns}\n\nAssistant: Yes, good", f"{turns}\n\nAssistant: Yes, bad")[0]
        == f"{turns}{ASSISTANT}"
    )
    # the transcripts part before the last turn: the prompt is what both share, up to its last marker
    longer = split_prompt(f"{turns}\n\nAssistant: a", "\n\nHuman: hi\n\nAssistant: bye")
    assert longer[0] == "\n\nHuman: hi\n\nAssistant:"
    assert split_prompt("Q: is it good? A: yes it is", "Q: is it good? A: no")[0] == "Q: is it good? A:"
    assert (
        split_prompt("Human: hi Assistant: Well, yes", "Human: hi Assistant: Well, no")[0]
        == "Human: hi Assistant: Well,"
    )  # no "\n\n" markers: not HH, the common prefix


@pytest.mark.unit
def test_each_method_kind_gets_exactly_its_trainers_columns(ultrafeedback):
    assert {"messages", "prompt_id", "score_chosen"} <= set(
        ultrafeedback.train.column_names
    )  # kept in the data
    for kind, columns in METHOD_COLUMNS.items():
        train, held_out = data_for_method(ultrafeedback, kind, "m")
        assert (
            train.column_names == list(columns)
            and held_out is not None
            and held_out.column_names == list(columns)
        )
        assert isinstance(train[0]["prompt"], list) and train[0]["prompt"][-1]["role"] == "user"
    unpaired, _ = data_for_method(ultrafeedback, "unpaired")
    assert len(unpaired) == 2 * len(ultrafeedback.train)


@pytest.mark.unit
def test_a_pairwise_method_on_unpaired_data_is_refused_in_one_line(tmp_path):
    data = load_preference_data(str(_jsonl(tmp_path / "kto.jsonl", kto_rows(12, seed=4))), eval_fraction=0.25)
    assert data_for_method(data, "unpaired")[0].column_names == ["prompt", "completion", "label"]
    with pytest.raises(DataError, match="method simpo needs pairwise data") as err:
        data_for_method(data, "pairwise", "simpo")
    assert "\n" not in str(err.value)


@pytest.mark.unit
def test_render_prompts_is_one_public_helper(tokenizer):
    import harness.evaluation.context
    import harness.plugin

    assert harness.plugin.render_prompts is render_prompts is harness.evaluation.context.render_prompts
    texts, chat = render_prompts(
        tokenizer, [[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]]
    )
    assert chat and texts == [
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    ]
    assert render_prompts(tokenizer, ["plain"]) == (["plain"], False)
    bare = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer)  # no chat template
    with pytest.raises(DataError, match="no chat template"):
        render_prompts(bare, [[{"role": "user", "content": "Hi"}]])


def _chat_lengths(tokenizer, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(prompt tokens, longest prompt + completion tokens) of conversational pairs, one row at a time,
    as TRL does."""

    def n(messages, **kw):
        return len(
            tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kw)["input_ids"]
        )

    return [
        (
            n(r["prompt"], add_generation_prompt=True),
            max(n(r["prompt"] + r["chosen"]), n(r["prompt"] + r["rejected"])),
        )
        for r in rows
    ]


@pytest.mark.unit
def test_lengths_are_counted_with_the_chat_template_and_long_prompts_dropped(ultrafeedback, tokenizer):
    train, _ = data_for_method(ultrafeedback, "pairwise")
    lengths = _chat_lengths(tokenizer, train.to_list())
    limit = sorted(p for p, _ in lengths)[len(lengths) // 2]  # about half the prompts reach it
    kept, report = fit_to_length(train, tokenizer, limit)
    assert report.dropped_long_prompt == sum(p >= limit for p, _ in lengths) > 0
    assert report.truncated == sum(p < limit < full for p, full in lengths) > 0
    assert len(kept) == len(train) - report.dropped_long_prompt
    assert report.longest_prompt == max(p for p, _ in lengths)
    assert report.warning("method.trl.max_length").count("\n") == 0
    assert count_lengths(train, tokenizer, None)[0].dropped_long_prompt == 0  # no limit: nothing counted


@pytest.mark.unit
def test_the_length_count_is_read_from_the_cache_by_later_trials(
    ultrafeedback, tokenizer, tmp_path, monkeypatch
):
    from harness.trial import length_cache

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    train, _ = data_for_method(ultrafeedback, "pairwise")
    limit = sorted(p for p, _ in _chat_lengths(tokenizer, train.to_list()))[len(train) // 2]
    counted = count_lengths(train, tokenizer, limit)
    assert counted[0].dropped_long_prompt > 0  # the stored answer includes dropped rows
    assert length_cache.cached_count(train, tokenizer, limit) == counted  # counted, stored
    entries = list((tmp_path / length_cache.CACHE_FOLDER).glob("*.json"))
    assert len(entries) == 1

    def no_counting(*args, **kwargs):
        raise AssertionError("counted again")

    monkeypatch.setattr(length_cache, "count_lengths", no_counting)
    assert length_cache.cached_count(train, tokenizer, limit) == counted  # read
    kept, report = fit_to_length(train, tokenizer, limit, count=length_cache.cached_count)
    assert report == counted[0] and len(kept) == len(counted[1])
    with pytest.raises(AssertionError, match="counted again"):  # another limit: another key
        length_cache.cached_count(train, tokenizer, limit + 1)
    monkeypatch.setattr(length_cache, "count_lengths", count_lengths)
    entries[0].write_text('{"report": {"rows": 1}')  # damaged: named, counted again and rewritten
    with pytest.warns(UserWarning, match=r"^length-count cache entry .* unreadable \(JSONDecodeError\)"):
        assert length_cache.cached_count(train, tokenizer, limit) == counted
    assert json.loads(entries[0].read_text())["data"]["report"]["rows"] == len(train)


@pytest.mark.unit
def test_standard_text_counts_the_eos_trl_appends(tokenizer):
    rows = Dataset.from_list([{"prompt": "How do I fix a roof?", "chosen": " Slowly.", "rejected": " No."}])
    prompt = len(tokenizer("How do I fix a roof?")["input_ids"])
    full = len(tokenizer("How do I fix a roof? Slowly." + tokenizer.eos_token)["input_ids"])
    assert count_lengths(rows, tokenizer, full)[0].truncated == 0
    assert count_lengths(rows, tokenizer, full - 1)[0].truncated == 1
    assert count_lengths(rows, tokenizer, prompt)[0].dropped_long_prompt == 1


@pytest.mark.unit
def test_every_prompt_too_long_stops_in_one_line_naming_the_longest_and_the_fix(ultrafeedback, tokenizer):
    train, _ = data_for_method(ultrafeedback, "unpaired")
    with pytest.raises(DataError) as err:
        fit_to_length(train, tokenizer, 8, setting="method.trl.max_length")
    longest = count_lengths(train, tokenizer, 8)[0].longest_prompt
    message = str(err.value)
    assert "\n" not in message and f"the longest: {longest}" in message
    assert f"raise method.trl.max_length above {longest} or filter" in message


# -- training on the real-world fixture ----------------------------------------------------------------------


def _uf(rw) -> list[str]:
    return [
        "data=files",
        f"data.path={rw.ultrafeedback}",
        "data.split=train_prefs",
        "data.eval_split=test_prefs",
    ]


def _run(rw, trial_dir: Path, overrides: list[str]) -> dict[str, Any]:
    cfg = compose_job(["model=hf", f"model.name_or_path={rw.qwen2}", *FAST, *overrides], {})
    return TrialRun(cfg, trial_dir).run()


@pytest.mark.parametrize("method", ["simpo", "cpo", "orpo"])
def test_experimental_trainers_train_on_ultrafeedback_save_to_disk_splits(
    real_world, cache_dir, tmp_path, method
):
    record = _run(real_world, tmp_path, [*_uf(real_world), f"method={method}"])
    assert record["status"] == "completed", record["error"]
    assert record["data"]["format"] == "pairwise conversational" and record["data"]["train_examples"] == 48


def test_ppo_renders_conversational_prompts_with_the_chat_template(
    real_world, cache_dir, tmp_path, monkeypatch
):
    import harness_plugins.methods.ppo as ppo

    seen: list[tuple[list[str], bool]] = []

    def spy(model, tokenizer, prompts, **kw):
        seen.append((list(prompts), kw.get("add_special_tokens", True)))
        return real_sample(model, tokenizer, prompts, **kw)

    real_sample = ppo.sample
    monkeypatch.setattr(ppo, "sample", spy)
    record = _run(
        real_world,
        tmp_path,
        [
            *_uf(real_world),
            "method=ppo",
            f"method.reward={real_world.reward_model}",
            "method.mini_batch_size=4",
            "method.response_length=8",
            "method.ppo_epochs=1",
        ],
    )
    assert record["status"] == "completed", record["error"]
    assert len(seen) == 2 and all(not special for _, special in seen)
    prompts = [p for batch, _ in seen for p in batch]
    assert all(p.startswith("<|im_start|>") and p.endswith("<|im_start|>assistant\n") for p in prompts)


def test_kto_trains_on_unpaired_conversational_rows(real_world, cache_dir, tmp_path):
    record = _run(
        real_world,
        tmp_path,
        ["data=files", f"data.path={real_world.kto_jsonl}", "data.eval_fraction=0.25", "method=kto"],
    )
    assert record["status"] == "completed", record["error"]
    assert record["data"]["format"] == "unpaired conversational"
    assert record["data"]["train_examples"] == 36  # 48 rows, a quarter of the (distinct) prompts held out


@pytest.mark.parametrize(("method", "rows"), [("dpo", 48), ("kto", 96)])
def test_train_examples_is_what_the_trainer_trains_on(real_world, cache_dir, tmp_path, capsys, method, rows):
    """With a max_length that half the prompts reach: those rows are dropped before TRL sees them (one warning
    line), both counts are recorded, and TRL's own tokenization keeps exactly ``train_examples`` rows."""
    import importlib

    cfg = compose_job(
        [
            "model=hf",
            f"model.name_or_path={real_world.qwen2}",
            *FAST,
            *_uf(real_world),
            f"method={method}",
            "method.trl.max_length=36",
            "method.max_steps=-1",  # epochs: every row read (max_steps bounds DPO's rows to those read)
        ],
        {},
    )
    run = TrialRun(cfg, tmp_path)
    ctx = run.prepare(evaluate_reference=False)
    data = run.record["data"]
    assert data["dropped_long_prompt"] > 0 and data["truncated"] > 0 and data["max_length"] == 36
    assert data["train_examples"] == rows - data["dropped_long_prompt"] == len(ctx.train_data)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("harness: warning:")]
    assert len(warning) == 1 and f"dropped {data['dropped_long_prompt']} of {rows} rows" in warning[0]
    trainer = importlib.import_module(f"harness_plugins.methods.{method}").build_trainer(ctx)
    tokenized = trainer.train_dataset
    assert len(tokenized) == data["train_examples"]  # TRL dropped nothing more
    completions = ["chosen_ids", "rejected_ids"] if method == "dpo" else ["completion_ids"]
    assert data["truncated"] == sum(
        len(r["prompt_ids"]) + max(len(r[c]) for c in completions) > 36 for r in tokenized
    )


def test_all_prompts_too_long_fails_in_one_line_before_the_reference_evaluation(
    real_world, cache_dir, tmp_path
):
    record = _run(real_world, tmp_path, [*_uf(real_world), "method=simpo", "method.trl.max_length=16"])
    assert record["status"] == "failed" and record["reference"] is None and not record["checkpoints"]
    message = record["error"]["message"]
    assert record["error"]["type"] == "DataError" and "\n" not in message
    assert "the longest: " in message and "raise method.trl.max_length above" in message


def test_on_the_command_line_an_all_too_long_dataset_is_one_error_line_and_exit_2(real_world, tmp_path):
    from tests.conftest import run_cli

    result = run_cli(
        [
            "model=hf",
            f"model.name_or_path={real_world.qwen2}",
            "data=files",
            f"data.path={real_world.hh_jsonl}",
            "method.trl.max_length=8",
            "eval.evaluators=[kl]",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line
        for line in result.stderr.splitlines()
        if line.startswith("harness: error: training data: every one")
    ]
    assert len(result.stderr.strip().splitlines()) == 1
