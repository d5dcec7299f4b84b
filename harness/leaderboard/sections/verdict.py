"""The Verdict section, the first of every report with trials (after the objective and the lines that say what
was run): which method and setting to ship and how sure that is (:mod:`harness.leaderboard.analysis.verdict`),
what would settle an open verdict (the commands), and each method's standing in one table.

``data``: ``verdict`` (the :class:`~harness.leaderboard.analysis.verdict.Verdict`). A report whose verdict is
``none`` (no completed trial has a value of the objective: the problem banner says why) has no such section.
"""

from __future__ import annotations

import html
import math
import re

import pandas as pd

from harness.leaderboard.analysis import verdict as verdicts
from harness.leaderboard.board import Leaderboard
from harness.leaderboard.html_parts import html_table, note
from harness.leaderboard.markdown_parts import markdown_prose, markdown_table
from harness.leaderboard.sections.base import Figures, Page, Section, ranked

_BOLD = re.compile(r"\*\*(.+?)\*\*")

#: The meaning of the verdict table's columns (HTML header tooltips; the Markdown lists them under the table).
COLUMN_NOTES = {
    "status": "recommended: best selection-prompt mean, what to ship; behind: worse on the test prompts "
    "(paired test, Holm-adjusted p < 0.05); tied: the 90% interval of the difference lies inside ± the "
    "margin; undecided: neither; ahead: better on the test prompts though worse on the selection prompts; "
    "diverged: every seed; not ranked: one seed per method",
    "setting": "the method's setting, chosen on the selection prompts (best mean over its seeds)",
    "seeds": "seeds run with that setting (a diverged seed counts at the worse of its value and the "
    "reference model's)",
    "selection": "mean objective on the selection prompts: what the setting and the recommended method were "
    "chosen on",
    "test": "mean objective on the test prompts, which took no part in any choice",
    "test_95": "95% interval of the test mean (seed-to-seed and evaluation noise)",
    "behind_by": "the recommended method minus this one on the test prompts, paired over the seeds and "
    "prompts both have (positive: behind)",
    "p_holm": "two-sided p of that difference (seeds and test prompts as crossed random effects), "
    "Holm-adjusted over the comparisons with the recommended method",
    "detectable": "the smallest difference this comparison detects with 80% power at α = 0.05, with these "
    "seeds and prompts",
    "p_best": "P(best): the share of joint draws of every method's test mean (their paired covariance kept) "
    "in which this method is best",
}


def compute(board: Leaderboard, figures: Figures) -> Section | None:
    """The section, for a report with trials and a verdict (not ``none``)."""
    if not ranked(board):
        return None
    verdict = board.decided
    if verdict.state == "none" and board.objective_name is None:
        return None  # nothing ranks the trials: the report's opening says why
    return Section(
        "verdict",
        "Verdict",
        frame=shown(verdict) if verdict.state != "none" else pd.DataFrame(),
        column_notes=COLUMN_NOTES,
        data={"verdict": verdict},
        markdown=markdown,
        html=to_html,
    )


def _p(value: float) -> str:
    return "" if not math.isfinite(value) else "< 0.001" if value < 0.001 else f"{value:.3f}"


def shown(verdict: verdicts.Verdict) -> pd.DataFrame:
    """:func:`~harness.leaderboard.analysis.verdict.table` with its probabilities as text (``< 0.001``)."""
    frame = verdicts.table(verdict)
    return frame.assign(p_holm=frame["p_holm"].map(_p), p_best=frame["p_best"].map(_p))


def _how_to_read(verdict: verdicts.Verdict, columns: bool = True) -> str:
    margin = (
        f"± {verdict.margin:.3g} ({verdict.margin_share:g} x the recommended method's gain over the base "
        f"model, `{verdicts.MARGIN_KEY}`)"
        if math.isfinite(verdict.margin)
        else f"a share of the recommended method's gain over the base model (`{verdicts.MARGIN_KEY}`)"
    )
    test = "none: with one seed per method there is no seed-to-seed spread to test against"
    test = test if verdict.state == "one seed" or not verdict.test else verdict.test
    return (
        "The recommended method and every setting are chosen on the selection prompts only; the test prompts "
        f"only score them. Test: {test}. The margin of a tie is {margin}. "
        + (" ".join(f"`{column}`: {meaning}." for column, meaning in COLUMN_NOTES.items()) if columns else "")
    ).rstrip()


def _fence(commands: list[str]) -> str:
    longest = max((len(run) for c in commands for run in re.findall(r"`+", c)), default=0)
    return "`" * max(3, longest + 1)


def markdown(section: Section) -> list[str]:
    """The headline, its details, the commands in a code block, the table and how to read it."""
    verdict = section.data["verdict"]
    lines = ["## Verdict", "", markdown_prose(verdict.headline), ""]
    for detail in verdict.details:
        lines += [markdown_prose(detail), ""]
    if verdict.commands:
        fence = _fence(verdict.commands)
        # record text made safe even in a code block (a method named <script> is shown as &lt;script>)
        lines += [f"{fence}bash", *map(markdown_prose, verdict.commands), fence, ""]
    if section.frame.empty:  # no verdict: the headline says why
        return lines
    return lines + [markdown_table(section.frame), "", markdown_prose(_how_to_read(verdict)), ""]


def _bold(text: str) -> str:
    """Harness-written Markdown text as escaped HTML, its ``**`` marks as bold and its backticks dropped."""
    return _BOLD.sub(r"<b>\1</b>", html.escape(text.replace("`", "")))


def to_html(section: Section, page: Page) -> str:
    """The headline as the lead paragraph, the details, the commands, the table and how to read it."""
    verdict = section.data["verdict"]
    commands = "\n".join(verdict.commands)
    if section.frame.empty:  # no verdict: the headline says why
        return f'<p class="lead">{_bold(verdict.headline)}</p>'
    return (
        f'<p class="lead">{_bold(verdict.headline)}</p>'
        + "".join(f"<p>{_bold(d)}</p>" for d in verdict.details)
        + (f'<pre class="commands">{html.escape(commands)}</pre>' if commands else "")
        + html_table(section.frame, section.key, page.kl_budget, page.colors, {**page.notes, **COLUMN_NOTES})
        + note(_how_to_read(verdict, columns=False) + " Hover a column header for its meaning.")
    )
