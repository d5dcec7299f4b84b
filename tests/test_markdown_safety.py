"""Hostile values in trial records cannot run code or break the structure of ``leaderboard.md``.

Each record value a report writes (overrides in code spans, failure reasons, method names, study names,
setups that differ) is filled with payloads a CommonMark renderer would turn into HTML or structure: backticks
that close a code span, raw tags, line breaks followed by headings, table-row breaks, link syntax. The report
is rendered by markdown-it-py (CommonMark) and the rendered HTML is checked: no tag but the ones the
report's own Markdown makes, no heading or table the values made, and every payload still shown as text.
"""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from html.parser import HTMLParser

import pytest

from harness import leaderboard
from harness.leaderboard.markdown_parts import markdown_code, markdown_text, one_line
from tests.test_conclusions import seeded, trial

pytestmark = pytest.mark.unit

markdown_it = pytest.importorskip("markdown_it")

SCRIPT = "<script>alert(1)</script>"
PAYLOADS = [
    f"x` {SCRIPT} `y",  # closes a single-backtick code span
    f"a``b` {SCRIPT}",  # runs of backticks
    "<img src=x onerror=alert(2)>",
    f"line\n# Injected heading\n\n{SCRIPT}",
    "cell | break\n| --- |\n| forged |",
    "[click](javascript:alert(3))",
    "&lt;script&gt;entity",
    "tail`",
]

ALLOWED_TAGS = {
    "h1", "h2", "h3", "p", "ul", "ol", "li", "code", "strong", "em", "table", "thead", "tbody", "tr", "th",
    "td", "br", "img", "a", "hr", "blockquote", "pre", "sup",
}  # fmt: skip


def render(md: str) -> str:
    """``md`` as a CommonMark renderer with raw HTML enabled (as most viewers render it) shows it."""
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


class _Elements(HTMLParser):
    """The start tags of rendered HTML and their attributes, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.tags


def assert_inert(html: str) -> None:
    """No element outside the report's own vocabulary, no event handler, no script URL."""
    found = elements(html)
    assert {tag for tag, _ in found} <= ALLOWED_TAGS, {tag for tag, _ in found} - ALLOWED_TAGS
    for tag, attrs in found:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").strip().lower().startswith("javascript"), (tag, name, value)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_code_span_holds_any_value_literally(payload):
    html = render(f"- before {markdown_code('python -m harness data.path=' + payload)} after")
    assert_inert(html)
    assert [tag for tag, _ in elements(html)] == ["ul", "li", "code"]
    assert "after" in html.split("</code>")[-1]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_is_shown_not_run_and_stays_on_its_line(payload):
    html = render(f"- **m**: {markdown_text(payload)} and then `next`")
    assert_inert(html)
    assert [tag for tag, _ in elements(html)] == ["ul", "li", "strong", "code"]
    assert "<code>next</code>" in html


def test_one_line_removes_every_line_break():
    assert one_line("a\nb\r\nc\rd\u2028e\u2029f") == "a b c d e f"


def _hostile_records():
    records = [replace(r, method="dpo") for r in seeded("dpo", [0.4, 0.41])]
    records[0] = replace(records[0], overrides=[f"data.path={PAYLOADS[0]}", f"eval.x={PAYLOADS[3]}"])
    failed = [
        replace(
            trial("orpo", None, 1, status="failed", error=payload),
            trial_id=f"orpo-{i}",
            overrides=[f"data.path={payload}", "method=orpo"],
        )
        for i, payload in enumerate(PAYLOADS)
    ]
    return records + failed


def test_a_report_of_hostile_records_renders_without_running_anything_or_breaking_structure(tmp_path):
    board = leaderboard.build(_hostile_records(), title=f"sweep {PAYLOADS[3]}")
    leaderboard.write_reports(board, tmp_path)
    md = (tmp_path / "leaderboard.md").read_text()
    html = render(md)
    assert_inert(html)
    headings = re.findall(r"<h[12]>(.*?)</h[12]>", html)
    assert not any("Injected" in h for h in headings[1:]), (
        headings
    )  # only the title may hold the payload text
    assert sum("Injected heading" in h for h in headings) <= 1
    # Every failed trial's overrides are shown literally, in a code span of its own, in the failed-trials
    # list and in Reproduce.
    shown = [unescape(code) for code in re.findall(r"<code>(.*?)</code>", html, flags=re.S)]
    for payload in PAYLOADS:
        overrides = one_line(f"data.path={payload} method=orpo")
        assert overrides in shown and f"python -m harness {overrides}" in shown, overrides
    items = re.findall(r"<li>(.*?)</li>", html, flags=re.S)
    assert sum("method=orpo" in item for item in items) == 2 * len(PAYLOADS)
    # No value forged a table row: every table row holds a method the records hold.
    for row in re.findall(r"<tr>\s*<td>(.*?)</td>", html, flags=re.S):
        assert row in {"dpo", "orpo"}, row
