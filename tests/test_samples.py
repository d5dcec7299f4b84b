"""Readable samples: each checkpoint's completions kept as text in the record, samples.csv,
the report's section."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict

from harness import leaderboard
from harness.evaluation.readable import MAX_CHARS, clip, prompt_scores, prompt_text, readable_samples
from harness.leaderboard.html import render_html
from harness.records import RECORD_NAME, write_record
from harness.trial import TrialRun
from tests.helpers import compose, make_record

READABLE = 4
EVIL = "<script>alert('x')</script>"


# --- pure logic ---------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_prompt_text_and_clip():
    assert prompt_text("Tell me a story") == "Tell me a story"
    assert prompt_text([{"role": "user", "content": "hi"}]) == "hi"
    assert (
        prompt_text([{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}])
        == "system: be kind\n\nuser: hi"
    )
    assert (
        prompt_text(
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
        )
        == "a b"
    )
    assert clip("short") == "short"
    long = "x" * (MAX_CHARS + 5)
    assert clip(long) == "x" * MAX_CHARS + "… [5 more characters]"
    assert clip("bad \ud800 surrogate").encode("utf-8")  # valid Unicode, writable as UTF-8


def fake_ctx(is_reference=False, per_prompt=2):
    prompts = ["p0", [{"role": "user", "content": "p1 <b>"}], "p2"]
    texts = [f"{i}.{k}" for i in range(3) for k in range(per_prompt)]
    policy = SimpleNamespace(completions=[f"pol{t}" for t in texts])
    reference = SimpleNamespace(completions=[f"ref{t}" for t in texts])
    n = 3 * per_prompt
    scores = {
        "gold_reward": {"policy": [float(i) for i in range(n)], "reference": [math.nan] + [0.5] * (n - 1)},
        "judge": {"policy": [1.0] * n},
    }
    return SimpleNamespace(
        source_prompts=prompts,
        eval_cfg=OmegaConf.create({"samples_per_prompt": per_prompt}),
        policy_samples=reference if is_reference else policy,
        reference_samples=reference,
        sample_scores=scores,
        is_reference=is_reference,
    )


@pytest.mark.unit
def test_readable_samples_take_the_first_sample_of_the_first_prompts():
    rows = readable_samples(fake_ctx(), 2)
    assert [r["prompt"] for r in rows] == ["p0", "p1 <b>"]
    assert [r["reference"] for r in rows] == ["ref0.0", "ref1.0"] and [r["policy"] for r in rows] == [
        "pol0.0",
        "pol1.0",
    ]
    assert rows[0]["scores"] == {"gold_reward": {"policy": 0.0, "reference": None}, "judge": {"policy": 1.0}}
    assert rows[1]["scores"]["gold_reward"] == {"policy": 2.0, "reference": 0.5}  # sample 2: prompt 1's first
    json.dumps(rows, allow_nan=False)  # strict JSON: no NaN
    assert len(readable_samples(fake_ctx(), 99)) == 3 and readable_samples(fake_ctx(), 0) == []
    step0 = readable_samples(fake_ctx(is_reference=True), 1)  # the policy is the reference: its text once
    assert step0 == [{"prompt": "p0", "reference": "ref0.0", "scores": {"gold_reward": {"reference": None}}}]


def record(trial, method, gold, samples=True):
    """A synthetic record; its checkpoints carry readable samples (one of them with markup)
    unless told not to."""

    def entry(step, final):
        out = {"step": step, "final": final, "metrics": {"gold_reward": gold * step / 10, "kl": step / 10}}
        if samples:
            out["samples"] = [
                {
                    "prompt": f"prompt {i}\nsecond line",
                    "reference": f"ref {i}",
                    "policy": EVIL if i == 0 else f"{method} step {step} says {i}",
                    "scores": {"gold_reward": {"policy": gold, "reference": 0.1}},
                }
                for i in range(2)
            ]
        return out

    return make_record(
        trial_id=trial,
        status="completed",
        method=method,
        hyperparameters={"beta": gold},
        overrides=[f"method={method}"],
        reference={"metrics": {"gold_reward": 0.1, "kl": 0.0}},
        checkpoints=[entry(5, False), entry(10, True)],
        eval_prompts=8,
    )


@pytest.mark.unit
def test_html_shows_samples_per_method_at_the_chosen_checkpoint_escaped():
    board = leaderboard.build(
        [record("s/0", "dpo", 0.5), record("s/1", "dpo", 0.3), record("s/2", "simpo", 0.4)]
    )
    page = render_html(board, plots={})
    assert '<a href="#samples">' in page and '<h2 id="samples">' in page
    section = page.split('<h2 id="samples">')[1].split("<h2")[0]
    assert EVIL not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in section
    assert section.index("dpo") < section.index("simpo")  # the best method first
    assert (
        "dpo step 10 says 1" in section and "step 5 says" not in section
    )  # the chosen (best) checkpoint only
    assert (
        section.count("<details>") == 1 and "s/1" in section.split("<details>")[1]
    )  # dpo's other trial, folded
    assert "prompt 1\nsecond line" in section and "gold_reward <b>0.5</b>" in section


@pytest.mark.unit
def test_samples_csv_and_the_checkpoints_column(tmp_path):
    for i, r in enumerate([record("s/0", "dpo", 0.5), record("s/1", "simpo", 0.4, samples=False)]):
        write_record(tmp_path / "sweep" / str(i) / RECORD_NAME, r)
    leaderboard.write_leaderboard([tmp_path / "sweep"], tmp_path / "out")
    samples = pd.read_csv(tmp_path / "out" / "samples.csv")
    assert list(samples.columns) == [
        "trial_id",
        "method",
        "step",
        "prompt_index",
        "prompt",
        "reference",
        "policy",
        "reference_gold_reward",
        "policy_gold_reward",
    ]
    assert len(samples) == 4 and set(samples["step"]) == {5, 10} and samples["policy"].iloc[0] == EVIL
    checkpoints = pd.read_csv(tmp_path / "out" / "checkpoints.csv")
    marked = checkpoints.set_index("trial_id")["samples"]
    assert list(marked["s/0"]) == ["samples.csv"] * 2 and marked["s/1"].isna().all()
    assert "samples.csv" in (tmp_path / "out" / "leaderboard.md").read_text()


@pytest.mark.unit
def test_records_without_samples_still_render(tmp_path):
    board = leaderboard.build(
        [record("s/0", "dpo", 0.5, samples=False), record("s/1", "simpo", 0.4, samples=False)]
    )
    assert board.samples.empty
    page = render_html(board, plots={})
    assert 'id="samples"' not in page and 'id="trials"' in page
    written = leaderboard.write_reports(board, tmp_path)
    assert not (tmp_path / "samples.csv").exists() and all(p.exists() for p in written)


@pytest.mark.unit
def test_prompt_scores_keep_the_first_sample_of_every_prompt():
    scores = prompt_scores(fake_ctx())  # 3 prompts x 2 samples: policy scores 0..5
    assert scores == {"gold_reward": [0.0, 2.0, 4.0], "judge": [1.0, 1.0, 1.0]}
    ctx = fake_ctx(per_prompt=1)
    ctx.sample_scores["gold_reward"]["policy"][1] = math.nan
    assert prompt_scores(ctx)["gold_reward"] == [0.0, None, 2.0]  # strict JSON: no NaN


# --- a real trial -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trials(tiny_world, tmp_path_factory):
    """Two short trials sharing a reference cache (the second hits it),
    with two evaluated checkpoints each."""
    root = tmp_path_factory.mktemp("samples")
    records = []
    for name, method in (("0", "dpo"), ("1", "simpo")):
        cfg = compose(
            tiny_world,
            [
                f"method={method}",
                "train.num_checkpoints=2",
                "eval.evaluators=[gold_reward,kl]",
                f"eval.readable_samples={READABLE}",
            ],
        )
        with open_dict(cfg):
            cfg.eval.cache_dir = str(root / "refeval")
        records.append(TrialRun(cfg, root / "sweep" / name, sweep={"name": "sweep", "job": name}).run())
    return root, records


def test_a_trial_records_readable_samples_at_every_checkpoint(trials):
    _, records = trials
    assert [r["status"] for r in records] == ["completed", "completed"]
    assert [r["reference"]["cached"] for r in records] == [False, True]
    expected = [s["reference"] for s in records[0]["reference"]["samples"]]
    assert len(expected) == READABLE and all(expected)
    for r in records:
        assert len(r["checkpoints"]) == 2
        assert [s["reference"] for s in r["reference"]["samples"]] == expected  # same seed, cache hit or miss
        assert all(
            "policy" not in s and s["scores"]["gold_reward"]["reference"] is not None
            for s in r["reference"]["samples"]
        )  # step-0 scores, from the cache in the second trial
        for c in r["checkpoints"]:
            assert [s["reference"] for s in c["samples"]] == expected
            assert all(s["prompt"] and s["policy"] for s in c["samples"])
            assert all(set(s["scores"]["gold_reward"]) == {"policy", "reference"} for s in c["samples"])
            assert "readable_samples" in c["eval_breakdown_s"]
            # every held-out prompt's score is kept (the paired tests' data), and they make the metric
            kept = c["prompt_scores"]["gold_reward"]
            assert len(kept) == r["eval_prompts"] > READABLE
            assert sum(kept) / len(kept) == pytest.approx(c["metrics"]["gold_reward"], abs=1e-5)
            assert kept[:READABLE] == [
                pytest.approx(s["scores"]["gold_reward"]["policy"]) for s in c["samples"]
            ]
            # every selection prompt's score too (a race's paired tests), and they make its metric
            chosen = c["selection"]["prompt_scores"]["gold_reward"]
            assert len(chosen) == r["selection"]["num_prompts"]
            assert sum(chosen) / len(chosen) == pytest.approx(
                c["selection"]["metrics"]["gold_reward"], abs=1e-5
            )
    json.dumps([r.to_dict() for r in records], allow_nan=False)  # strict JSON: no NaN


def test_the_leaderboard_of_real_trials_has_their_samples(trials):
    root, records = trials
    board = leaderboard.write_leaderboard([root / "sweep"], root / "board")
    samples = pd.read_csv(root / "board" / "samples.csv")
    assert len(samples) == 2 * 2 * READABLE and set(samples["method"]) == {"dpo", "simpo"}
    assert set(samples["reference"]) == {s["reference"] for s in records[0]["reference"]["samples"]}
    assert samples["policy_gold_reward"].notna().all()
    assert (pd.read_csv(root / "board" / "checkpoints.csv")["samples"] == "samples.csv").all()
    assert '<h2 id="samples">' in (root / "board" / "leaderboard.html").read_text()
    assert len(board.samples) == len(samples)
