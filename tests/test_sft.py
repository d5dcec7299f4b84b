"""Supervised fine-tuning: ``method=sft`` (TRL SFTTrainer on the chosen completions, the loss on completions
only) and the SFT stage (``model.sft={...}``: trained once before a preference method, cached, shared by a
sweep).

Trainings are two tiny steps; the stage's sweep runs the real command line on the ``real_world`` fixture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from harness_plugins.methods.sft import build_trainer, sft_stage

from harness import leaderboard
from harness.config.compose import compose_job
from harness.config.resources import resolve_model_path
from harness.config.validation import validate_trial_config
from harness.errors import ConfigError
from harness.leaderboard.analysis.merging import setting_key
from harness.plugin import Stage
from harness.plugin.manager import get_plugin_manager
from harness.trial import TrialRun, run_trial
from tests.conftest import run_cli
from tests.helpers import compose, make_record, train_context

# Two tiny steps, few short evaluation samples, the cheap evaluators.
TINY = [
    "method.max_steps=2",
    "method.batch_size=4",
    "method.grad_accum=1",
    "train.num_checkpoints=1",
    "eval.num_prompts=4",
    "eval.max_new_tokens=8",
    "eval.evaluators=[kl,text_stats]",
]
STAGE = "model.sft={max_steps: 2, batch_size: 4, grad_accum: 1, learning_rate: 1e-3}"


def _real(rw) -> list[str]:
    """The fixture's Qwen2 model on its UltraFeedback-binarized save_to_disk splits (conversational)."""
    return [
        "model=hf",
        f"model.name_or_path={rw.qwen2}",
        "data=files",
        f"data.path={rw.ultrafeedback}",
        "data.split=train_prefs",
        "data.eval_split=test_prefs",
    ]


def _masked_prefix(labels: list[int]) -> int:
    """How many leading tokens carry no loss (label -100); every later one must carry it."""
    k = next(i for i, label in enumerate(labels) if label != -100)
    assert all(label != -100 for label in labels[k:]), "a masked token inside the completion"
    return k


def _train_loss(record: dict) -> float:
    """The trainer's mean training loss (its last log entry)."""
    return next(e["train_loss"] for e in reversed(record["train"]["log_history"]) if "train_loss" in e)


# -- method=sft ----------------------------------------------------------------------------------------------


def test_sft_trains_on_the_chosen_completions_of_the_toy_world_with_the_loss_on_them_only(
    tiny_world, tmp_path
):
    ctx = train_context(tiny_world, tmp_path / "ctx", ["method=sft"])
    trainer = build_trainer(ctx)
    pair, row = ctx.train_data[0], trainer.train_dataset[0]
    k = _masked_prefix(row["labels"])
    assert row["input_ids"][:k] == ctx.tokenizer(pair["prompt"])["input_ids"]  # the prompt: no loss
    assert row["labels"][k:] == row["input_ids"][k:] and row["input_ids"][-1] == ctx.tokenizer.eos_token_id

    record = run_trial(compose(tiny_world, ["method=sft", *TINY]), tmp_path / "trial")
    assert record["status"] == "completed", record["error"]
    assert (record["method"], record["data_kind"], record["models_in_memory"]) == ("sft", "pairwise", 1)
    assert math.isfinite(_train_loss(record))
    final = record["checkpoints"][-1]["metrics"]
    assert (
        final["kl_k3"] > 0 and record["reference"]["metrics"]["kl_k3"] == 0
    )  # a policy, against its reference


def test_sft_on_conversational_rows_puts_the_loss_on_the_assistant_turn_only(real_world, cache_dir, tmp_path):
    cfg = compose_job([*_real(real_world), *TINY, "method=sft"], {})
    run = TrialRun(cfg, tmp_path / "ctx")
    ctx = run.prepare(evaluate_reference=False)
    trainer = build_trainer(ctx)
    pair, row = ctx.train_data[0], trainer.train_dataset[0]
    assert pair["prompt"][0]["role"] == "system" and pair["chosen"][0]["role"] == "assistant"
    k = _masked_prefix(row["labels"])
    tok = ctx.tokenizer
    assert tok.decode(row["input_ids"][:k]) == tok.apply_chat_template(
        pair["prompt"], tokenize=False, add_generation_prompt=True
    )
    assert tok.decode(row["input_ids"][k:]) == pair["chosen"][0]["content"] + "<|im_end|>\n"

    record = TrialRun(cfg, tmp_path / "trial").run()
    assert record["status"] == "completed", record["error"]
    assert record["data"]["format"] == "pairwise conversational"
    loss = _train_loss(record)
    assert math.isfinite(loss) and loss > 0
    assert record["checkpoints"][-1]["metrics"]["kl_k3"] >= 0


# -- the SFT stage -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sft_then_dpo_is_one_command_and_a_sweep_trains_the_stage_once(real_world, tmp_path):
    cache = tmp_path / "cache"
    result = run_cli(
        ["-m", "method=dpo,ipo", STAGE, *_real(real_world), *TINY, "sweep_name=sft-then-dpo"],
        cwd=tmp_path,
        env={"HARNESS_CACHE_DIR": str(cache)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("training the SFT stage") == 1
    stages = [p for p in (cache / "sft_models").iterdir() if p.is_dir()]
    assert len(stages) == 1 and len(list(stages[0].rglob("trial.json"))) == 1
    stage = json.loads((stages[0] / "trial.json").read_text())
    assert stage["status"] == "completed" and stage["method"] == "sft" and stage["train"]["steps"] == 2
    assert stage["config"]["model"].get("sft") is None  # the stage's model asks for no stage itself
    final = next(c["path"] for c in stage["checkpoints"] if c["final"])
    records = [
        json.loads(p.read_text())
        for p in sorted((tmp_path / "multirun" / "sft-then-dpo").glob("*/trial.json"))
    ]
    assert [r["method"] for r in records] == ["dpo", "ipo"]
    for r in records:
        assert r["status"] == "completed", r["error"]
        assert r["stages"]["sft"]["key"] == stages[0].name and r["stages"]["sft"]["model"] == final
        assert r["stages"]["sft"]["settings"]["max_steps"] == 2
    # Policy and reference start from the stage: the trials' baseline is the SFT model's (evaluated once),
    # not the base's.
    assert records[0]["reference"]["cache_key"] == records[1]["reference"]["cache_key"]
    assert records[0]["reference"]["cache_key"] != stage["reference"]["cache_key"]
    assert records[0]["reference"]["metrics"]["entropy"] != stage["reference"]["metrics"]["entropy"]


def test_with_lora_the_stage_adapter_is_merged_into_the_model_the_trial_starts_from(
    tiny_world, tmp_path, monkeypatch
):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    cfg = compose(tiny_world, ["method=dpo", "model.lora.r=4", STAGE, *TINY])
    record = run_trial(cfg, tmp_path / "trial")
    assert record["status"] == "completed", record["error"]
    merged = Path(record["stages"]["sft"]["model"])
    assert merged.name == "merged" and (merged / "config.json").is_file()
    assert (Path(record["stages"]["sft"]["checkpoint"]) / "adapter_config.json").is_file()


def test_the_report_shows_the_stage_gain_over_the_base_model_evaluated_by_the_stage_once(
    tiny_world, tmp_path, monkeypatch
):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    tiny = [*TINY, "eval.evaluators=[gold_reward,kl,text_stats]"]
    records = [
        run_trial(compose(tiny_world, [f"method={m}", f"seed={n}", STAGE, *tiny]), tmp_path / m)
        for n, m in enumerate(["dpo", "orpo"])
    ]
    stage = sft_stage(compose(tiny_world, ["method=dpo", STAGE, *tiny]))
    done = stage.completed_record()
    for record in records:
        assert record["status"] == "completed", record["error"]
        noted = record["stages"]["sft"]
        # The base model: the stage's own reference, evaluated once by the stage on the same prompts.
        assert noted["base_metrics"] == done["reference"]["metrics"]
        assert noted["base_metrics"]["kl_k3"] == 0 and noted["metrics"]["kl_k3"] > 0  # the SFT model, vs base
        # The trial's reference is the SFT model: the same gold reward on the same prompts.
        assert noted["metrics"]["gold_reward"] == pytest.approx(record["reference"]["metrics"]["gold_reward"])
    board = leaderboard.build(records, title="t")
    leaderboard.write_reports(board, tmp_path / "report")
    md = (tmp_path / "report" / "leaderboard.md").read_text()
    page = (tmp_path / "report" / "leaderboard.html").read_text()
    assert "## Stage gain over the base model" in md and "Stage gain over the base model</h2>" in page
    section = md.split("## Stage gain over the base model")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == ["base model", "sft (stage)"]
    assert "sft (stage)" in page and "moved **gold_reward** from" in section


def test_a_dry_run_validates_the_stage_and_trains_nothing(tiny_world, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    pm = get_plugin_manager()
    cfg = compose(tiny_world, ["method=dpo", STAGE])
    validate_trial_config(cfg, pm)
    base = resolve_model_path(pm, compose(tiny_world, ["method=dpo"]), dry_run=True)
    assert resolve_model_path(pm, cfg, dry_run=True) == base  # the architecture it will have: the base's
    assert not (tmp_path / "cache").exists()  # nothing trained, nothing cached


@pytest.mark.unit
def test_the_stage_is_shared_across_seeds_and_methods_and_never_asks_for_itself():
    stages = [
        sft_stage(compose([], [f"method={m}", f"seed={s}", STAGE])) for m, s in [("dpo", 0), ("ipo", 3)]
    ]
    assert isinstance(stages[0], Stage) and stages[0].key == stages[1].key
    assert "sft" not in stages[0].config.model and stages[0].config.method.name == "sft"
    assert stages[0].config.seed == 0 and stages[0].directory.parent.name == "sft_models"
    other = sft_stage(compose([], ["method=dpo", "model.sft={max_steps: 3}"]))
    assert (
        other is not None and other.key != stages[0].key and other.config.method.batch_size == 16
    )  # the defaults
    assert sft_stage(compose([], ["method=dpo"])) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{learning_rate: -1}", "model.sft.learning_rate=-1 is invalid for method sft"),
        (
            "{learnin_rate: 1e-4}",
            "Unknown model.sft option (a method=sft setting) 'model.sft.learnin_rate'. Did you mean: "
            "model.sft.learning_rate?",
        ),
        ("{trl: {max_lenth: 64}}", "Unknown SFTConfig option (model.sft.trl) 'max_lenth'"),
        ("{trl: {learning_rate: 1e-4}}", "set model.sft.learning_rate only"),
        ("5", "model.sft=5 is invalid; give a mapping of method=sft settings"),
    ],
)
def test_bad_sft_settings_are_refused_before_any_compute(setting, message):
    cfg = compose([], ["method=dpo", f"model.sft={setting}"])
    with pytest.raises(ConfigError) as error:
        validate_trial_config(cfg, get_plugin_manager())
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_bad_sft_setting_stops_the_command_with_one_line(tmp_path):
    result = run_cli(
        ["method=dpo", "model.sft={learning_rate: -1}"],
        cwd=tmp_path,
        env={"HARNESS_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "harness: error: model.sft.learning_rate=-1 is invalid for method sft: it must lie in (0, inf)."
    ]
    assert not (tmp_path / "cache" / "sft_models").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.unit
def test_the_leaderboard_keeps_trials_of_different_sft_stages_apart():
    def record(stage: dict | None) -> dict:
        config = {
            "model": {"name_or_path": "m", "sft": {} if stage else None},
            "data": {"path": "d"},
            "eval": {},
        }
        return make_record(config=config, **({"stages": {"sft": stage}} if stage else {}))

    stage = {
        "method": "sft",
        "key": "k1",
        "directory": "/a/k1",
        "settings": {"learning_rate": 2e-5, "max_steps": 50},
    }
    elsewhere = {**stage, "key": "k2", "directory": "/b/k2"}  # the same stage cached on another machine
    changed = {**stage, "settings": {"learning_rate": 1e-5, "max_steps": 50}}  # e.g. other sft defaults
    assert setting_key(record(stage)) == setting_key(record(elsewhere))
    assert len({setting_key(record(s)) for s in (stage, changed, None)}) == 3
