"""The Markdown renderer: the leaderboard as ``leaderboard.md``, and the verdict and the table printed when a
multirun ends.

:func:`to_markdown` walks the report's sections (:mod:`harness.leaderboard.sections`) in order; a section
without its own Markdown layout is laid out by :func:`section_lines`.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.leaderboard.board import Leaderboard
from harness.leaderboard.markdown_parts import markdown_text, section_table
from harness.leaderboard.sections import Figures, Section, compute_sections
from harness.leaderboard.sections.incompatible import incompatible_lines
from harness.leaderboard.sections.overview import brief_objective


def section_lines(section: Section) -> list[str]:
    """The generic layout: ``## title`` (when it has one), the caption, the table and each note, each followed
    by a blank line."""
    lines = [f"## {section.title}", ""] if section.title else []
    if section.caption:
        lines += [section.caption, ""]
    if not section.frame.empty:
        lines += [section_table(section.frame), ""]
    return lines + [x for note in section.notes for x in (note, "")]


def to_markdown(
    board: Leaderboard, plots: Sequence[str] = (), sections: Sequence[Section] | None = None
) -> str:
    """The leaderboard as Markdown: its title, then each section (``sections``, or those computed from
    ``board`` with the plot files ``plots``)."""
    if sections is None:
        sections = compute_sections(board, Figures(files=tuple(str(p) for p in plots)))
    lines = [f"# Leaderboard: {markdown_text(board.title)}", ""]
    for section in sections:
        lines += (section.markdown or section_lines)(section)
    return "\n".join(lines)


def console_verdict(board: Leaderboard) -> str:
    """The verdict's headline in plain text (no Markdown marks), then its commands, one a line; '' when there
    is none (:mod:`harness.leaderboard.analysis.verdict`)."""
    verdict = board.decided
    if verdict.state == "none":
        return ""
    lines = [verdict.headline.replace("**", ""), *verdict.details, *verdict.commands]
    return "\n".join(line.replace("`", "") for line in lines)


def console_table(board: Leaderboard) -> str:
    """A compact text table for the terminal, under the objective and its baseline and the verdict."""
    if board.groups:
        return "\n".join(incompatible_lines(board.groups, len(board.records)))
    if board.trials.empty:
        return "(no trial records)"
    verdict = console_verdict(board)
    verdict = f"{verdict}\n\n" if verdict else ""
    return f"{brief_objective(board)}\n\n{verdict}{section_table(board.shown(board.trials))}"
