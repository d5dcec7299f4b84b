"""What the data lost and what a stage gained, in the report: rows dropped and truncated per method (a section
only when something was lost), and the SFT stage's gain over the base model as its own rows; both in the
Markdown and the HTML report."""

from __future__ import annotations

import pytest

from harness import leaderboard
from harness.leaderboard.analysis import data_loss
from harness.records import DataSummary
from tests.test_conclusions import seeded, trial

pytestmark = pytest.mark.unit


def _data(
    rows: int, dropped: int = 0, truncated: int = 0, ties: int = 0, unpaired: bool = False
) -> DataSummary:
    """A fitted data summary: ``rows`` pairs read, ``ties`` dropped, then ``dropped`` of the examples dropped
    for a long prompt (twice as many examples when ``unpaired``)."""
    examples = (rows - ties) * (2 if unpaired else 1)
    return DataSummary(
        train_examples=examples - dropped,
        eval_prompts=16,
        format="pairwise standard",
        rows_in=rows,
        ties_dropped=ties,
        max_length=64,
        truncated=truncated,
        dropped_long_prompt=dropped,
        mean_tokens=40.0,
    )


def _with(records, data: DataSummary):
    for record in records:
        record.data = data
    return records


def _reports(records, tmp_path) -> tuple[str, str]:
    board = leaderboard.build(records, title="t")
    leaderboard.write_reports(board, tmp_path)
    return (tmp_path / "leaderboard.md").read_text(), (tmp_path / "leaderboard.html").read_text()


def test_a_report_whose_trials_lost_nothing_has_no_data_section(tmp_path):
    records = [*_with(seeded("dpo", [0.5, 0.52]), _data(2000)), *_with(seeded("orpo", [0.4]), _data(2000))]
    md, page = _reports(records, tmp_path)
    assert "What the data lost" not in md and "What the data lost" not in page


def test_rows_dropped_and_truncated_show_per_method_with_their_shares_in_both_reports(tmp_path):
    records = [
        *_with(seeded("dpo", [0.5, 0.52]), _data(569, dropped=89, truncated=40, ties=3)),
        *_with(seeded("kto", [0.3]), _data(569, dropped=178, truncated=80, ties=3, unpaired=True)),
        *_with(seeded("orpo", [0.4]), _data(569, ties=3)),
    ]
    records[-1].data.max_length = 1024  # orpo: a longer limit, nothing dropped
    md, page = _reports(records, tmp_path)
    section = md.split("## What the data lost")[1].split("\n## ")[0]
    assert "| dpo " in section and "89 (15.7%)" in section and "40 (7.1%)" in section
    assert "178 (15.7%)" in section  # KTO's unpaired examples: the same share of twice as many
    assert "3 (0.5%)" in section  # ties, a share of the rows read
    # The methods trained on different shares of their data: said first, in both reports.
    assert "**Note:** The methods trained on different shares of their data (dpo 84.3%, kto 84.3%, orpo " in (
        section
    )
    assert "What the data lost</h2>" in page and "89 (15.7%)" in page and "different shares" in page
    table = data_loss.data_loss_table(records)
    assert table.set_index("method").loc["dpo", "trials"] == 2 and list(table["trained_on"]) == [
        477,
        954,
        566,
    ]


def test_a_method_whose_trials_differ_has_a_row_per_set_of_figures():
    records = [*_with(seeded("dpo", [0.5]), _data(100, dropped=10)), *_with(seeded("dpo", [0.6]), _data(100))]
    records[1].data.max_length = 128
    table = data_loss.data_loss_table(records)
    assert list(table["method"]) == ["dpo", "dpo"] and sorted(table["trained_on"]) == [90, 100]
    assert data_loss.lost_anything(records) and not data_loss.lost_anything(records[1:])


def _staged(method: str, gold: float, seed: int):
    record = trial(method, gold, seed)
    record.stages = {
        "sft": {
            "method": "sft",
            "settings": {"max_steps": 2},
            "base_metrics": {"gold_reward": 0.012, "kl": 0.0, "win_rate": 0.5},
            "metrics": {"gold_reward": 0.153, "kl": 1.25, "win_rate": 0.61},
        }
    }
    return record


def test_the_sft_stage_gain_is_its_own_rows_against_the_base_model(tmp_path):
    records = [_staged("dpo", 0.3, 1), _staged("orpo", 0.25, 1)]
    md, page = _reports(records, tmp_path)
    section = md.split("## Stage gain over the base model")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == ["base model", "sft (stage)"]
    assert "0.153" in rows[1] and "1.25" in rows[1]
    assert "sft stage moved **gold_reward** from 0.012 to 0.153 (+0.141), at a KL of 1.25 nats" in section
    assert "Stage gain over the base model</h2>" in page and "sft (stage)" in page


def test_no_stage_no_stage_section(tmp_path):
    md, page = _reports(seeded("dpo", [0.5]), tmp_path)
    assert "Stage gain" not in md and "Stage gain" not in page
