"""Reports name the data they compare on, and the toy world says whether the toy defaults were tuned on it
(issue 31: tuning worlds 0-2, comparisons on held-out worlds)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.unit
def test_a_toy_world_says_whether_the_defaults_were_tuned_on_it() -> None:
    from harness.toyworld import ToyWorldSpec
    from harness.toyworld.spec import TUNING_WORLDS

    assert TUNING_WORLDS == (0, 1, 2)
    for seed in TUNING_WORLDS:
        text = ToyWorldSpec(seed=seed).describe()
        assert text.startswith(f"toy world seed {seed} (spec {ToyWorldSpec(seed=seed).key()}")
        assert "tuned on (seeds 0-2)" in text and "toyworld.spec.seed=3 and up" in text
    assert "held out from the toy defaults' tuning" in ToyWorldSpec(seed=3).describe()
    # another world (another size) was never tuned on, nor is it the held-out family: no claim either way
    other = ToyWorldSpec(seed=0, hidden_size=64).describe()
    assert "tuned" not in other and "held out" not in other


@pytest.mark.unit
def test_the_report_names_the_data_of_its_trials() -> None:
    from harness import leaderboard
    from harness.leaderboard.markdown import to_markdown
    from harness.records import DataSummary
    from tests.test_conclusions import trial

    records = [trial("dpo", 0.5, 0), trial("orpo", 0.4, 0)]
    assert "Data:" not in to_markdown(leaderboard.build(records, title="t"))  # older records: nothing said
    name = "toy world seed 3 (spec abc, held out from the toy defaults' tuning)"
    for record in records:
        record.data = DataSummary(source=name)
    text = to_markdown(leaderboard.build(records, title="t"))
    assert "Data: toy world seed 3 (spec abc, held out from the toy defaults' tuning)." in text
    from harness.leaderboard.html import render_html

    assert "Data: toy world seed 3" in render_html(leaderboard.build(records, title="t"), plots={})


@pytest.mark.unit
def test_a_file_source_is_named_by_its_path_and_split(tmp_path) -> None:
    from harness.data import load_preference_data

    path = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(10)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_preference_data(str(path), eval_fraction=0.2)
    assert data.name == f"{path} (split train)"
