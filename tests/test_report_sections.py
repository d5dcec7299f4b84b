"""A report is a list of sections: computed once, rendered by the Markdown and the HTML renderer in one order;
a new section is one module; a plugin metric's standard error shows in both."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from harness import leaderboard
from harness.leaderboard.analysis import columns
from harness.leaderboard.html import render_html
from harness.leaderboard.markdown import to_markdown
from harness.leaderboard.sections import SECTIONS, Figures, Section, compute_sections
from tests.test_conclusions import diverging, seeded, trial
from tests.test_leaderboard import REPETITION, plugin_trial

pytestmark = pytest.mark.unit


def _rich_board() -> leaderboard.Leaderboard:
    """Seeds (so the Methods section), a diverged seed, a failed trial."""
    records = [
        *seeded("dpo", [0.50, 0.52, 0.54]),
        *diverging("kto", [0.20, 0.22, -4.0]),
        trial("orpo", None, 3, status="failed", error="training loss became nan at step 3"),
    ]
    return leaderboard.build(records, title="t")


def _headings(md: str, page: str) -> tuple[list[str], list[str]]:
    return re.findall(r"^## (.+)$", md, flags=re.MULTILINE), re.findall(r'<h2 id="[^"]+">([^<]*)</h2>', page)


def test_the_renderers_show_the_same_sections_in_the_same_order(tmp_path):
    board = _rich_board()
    leaderboard.write_reports(board, tmp_path)
    md, page = (tmp_path / "leaderboard.md").read_text(), (tmp_path / "leaderboard.html").read_text()
    in_markdown, in_html = _headings(md, page)
    assert in_markdown == in_html
    assert in_markdown[:3] == ["Verdict", "Methods", "Ranked trials"] and in_markdown[-3:] == [
        "Columns",
        "Plots",
        "Reproduce",
    ]
    assert in_markdown.index("Compute cost per method") < in_markdown.index(
        "Failed, pruned and interrupted trials"
    )
    assert "Over seeds" in in_html and "Across seeds" not in page
    nav = re.findall(r'<a href="#[^"]+">([^<]*)</a>', page.split("<nav>")[1].split("</nav>")[0])
    assert nav == in_html


def test_the_sections_are_computed_once_for_both_reports(monkeypatch, tmp_path):
    from harness.leaderboard import reports

    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return compute_sections(*args, **kwargs)

    monkeypatch.setattr(reports, "compute_sections", counted)
    leaderboard.write_reports(_rich_board(), tmp_path)
    assert len(calls) == 1
    assert "## Reproduce" in (tmp_path / "leaderboard.md").read_text()
    assert '<h2 id="reproduce">Reproduce</h2>' in (tmp_path / "leaderboard.html").read_text()


# A new section, as a plugin or a new module of harness/leaderboard/sections would write it: one function.
def wins_section(board: leaderboard.Leaderboard, figures: Figures) -> Section | None:
    """How many completed trials each method has."""
    done = board.completed
    if done.empty:
        return None
    counts = done.groupby("method").size().rename("completed").reset_index()
    return Section(
        "wins",
        "Completed per method",
        caption="How many trials of each method **completed** (`status`).",
        frame=counts,
        notes=("A method with no completed trial is not listed.",),
        column_notes={"completed": "completed trials of the method"},
    )


def test_a_new_section_is_one_function_shown_by_both_renderers():
    board = _rich_board()
    order = [*SECTIONS[:-1], wins_section, SECTIONS[-1]]  # before Reproduce
    sections = compute_sections(board, Figures(), order)
    md, page = to_markdown(board, sections=sections), render_html(board, sections=sections)
    assert "## Completed per method\n\nHow many trials of each method **completed** (`status`).\n\n" in md
    assert "| dpo      |           3 |" in md and "A method with no completed trial is not listed." in md
    assert md.index("## Completed per method") < md.index("## Reproduce")
    assert (
        '<a href="#wins">Completed per method</a>' in page
        and '<h2 id="wins">Completed per method</h2>' in page
    )
    assert "<p>How many trials of each method completed (status).</p>" in page
    assert '<table id="wins" class="sortable">' in page and 'title="completed trials of the method"' in page
    assert page.index('id="wins"') < page.index('id="reproduce"')
    assert _headings(md, page)[0] == _headings(md, page)[1]
    assert "Completed per method" not in to_markdown(board)  # not registered: not in the default reports


def test_a_plugin_metrics_standard_error_shows_next_to_it_in_both_reports(tmp_path):
    declared = {**REPETITION, "rep_ngram": {**REPETITION["rep_ngram"], "se": "rep_ngram_se"}}
    records = []
    for method, rep in (("dpo", 0.2), ("ipo", 0.1)):
        r = plugin_trial(method, [(10, 0.3, 1.0, rep)])
        r.metric_declarations = {**(r.metric_declarations or {}), **declared}
        r.checkpoints[0].metrics["rep_ngram_se"] = 0.01
        records.append(r)
    board = leaderboard.build(records)
    shown = list(board.shown(board.trials).columns)
    assert shown[shown.index("rep_ngram") + 1] == "rep_ngram_se"
    assert board.notes()["rep_ngram_se"] == "standard error of rep_ngram"
    leaderboard.write_reports(board, tmp_path)
    md, page = (tmp_path / "leaderboard.md").read_text(), (tmp_path / "leaderboard.html").read_text()
    assert (
        re.search(r"\| +rep_ngram \| +rep_ngram_se \|", md)
        and "- `rep_ngram_se`: standard error of rep_ngram" in md
    )
    assert '>rep_ngram</th><th scope="col" title="standard error of rep_ngram">rep_ngram_se</th>' in page
    assert "rep_ngram_se" in leaderboard.console_table(board)


def test_built_in_standard_errors_show_as_declared():
    """gold_se and kl_se are declared headline metrics (shown), judge_lc_wr_se a declared detail and lm-eval's
    SEs a pattern's (neither shown): an SE declared as a metric keeps its own declaration."""
    r = trial("dpo", 0.5, 1)
    r.checkpoints[0].metrics.update(
        {
            "kl_se": 0.1,
            "lm_eval/toy/acc": 0.9,
            "lm_eval/toy/acc_se": 0.01,
            "judge_win_rate_lc": 0.6,
            "judge_win_rate_lc_se": 0.02,
        }
    )
    from harness.plugin.manager import get_plugin_manager

    judge = get_plugin_manager().evaluator("judge")
    r.metric_declarations = {
        **(r.metric_declarations or {}),
        **{m.name: m.to_record("judge") for m in judge.metrics},
    }
    board = leaderboard.build([r])
    shown = list(board.shown(board.trials).columns)
    assert {"gold_reward", "gold_se", "kl", "kl_se", "lm_eval/toy/acc", "judge_lc_wr"} <= set(shown)
    assert "lm_eval/toy/acc_se" not in shown and "judge_lc_wr_se" not in shown
    assert shown.index("gold_se") == shown.index("gold_reward") + 1
    assert columns.undeclared_se(board.declarations, shown, list(board.trials.columns)) == {}
    assert board.notes()["gold_se"] == "standard error of gold_reward"  # its own declaration's help


def test_reports_without_trials_or_from_several_setups_have_one_part(tmp_path):
    empty = leaderboard.build([])
    assert [s.key for s in compute_sections(empty)] == ["empty"]
    assert "No trial records found." in render_html(empty, plots={}) and "<nav>" not in render_html(
        empty, plots={}
    )
    same = {"model": {"name_or_path": "toy"}, "data": {"source": "toy"}, "eval": {"num_prompts": 128}}
    records = [
        replace(trial("dpo", 0.5, 1), config=same),
        replace(trial("ipo", 0.4, 1), config={**same, "eval": {}}),
    ]
    split = leaderboard.build(records)
    assert [s.key for s in compute_sections(split)] == ["incompatible"]
    assert "not ranked together" in render_html(split, plots={})


def test_the_analysis_knows_no_rendering():
    """harness/leaderboard/analysis/ turns records into DataFrames and sentences: it imports nothing of the
    leaderboard outside itself (no section, renderer or figure)."""
    import ast
    from pathlib import Path

    import harness.leaderboard.analysis as analysis

    bad = []
    for path in Path(analysis.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            bad += [
                f"{path.name}: {n}"
                for n in names
                if n.startswith("harness.leaderboard") and not n.startswith("harness.leaderboard.analysis")
            ]
    assert not bad, bad
