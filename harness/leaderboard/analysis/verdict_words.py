"""The verdict in words: its headline, the lines that explain it, the commands that would settle it, and its
table (:mod:`harness.leaderboard.analysis.verdict` decides it)."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from harness.config.sweep_checks import VERDICT_MARGIN_KEY as MARGIN_KEY
from harness.leaderboard.analysis import conclusions
from harness.leaderboard.analysis.frames import ONE_SETTING, format_value

if TYPE_CHECKING:
    from harness.leaderboard.analysis.verdict_model import Leaderboard, MethodVerdict, Verdict


def _num(value: float) -> str:
    return format_value(value) if math.isfinite(value) else "n/a"


def _commands(verdict: Verdict, board: Leaderboard, wanted: Mapping[str, int]) -> list[str]:
    """The commands that run ``wanted`` seeds in all for each named method at its chosen setting (new seeds
    only, in a sweep of their own), and the leaderboard over the old and new trials."""
    by_method = {m.method: m for m in verdict.methods}
    groups: dict[tuple[str, ...], list[str]] = {}
    for method in wanted:
        rest = tuple(o for o in by_method[method].overrides if not o.startswith("method="))
        groups.setdefault(rest, []).append(method)
    sweeps = sorted({str((r.sweep or {}).get("dir") or "") for r in board.records} - {""})
    have = max((m.n_seeds for m in verdict.methods), default=1)
    used = {(r.hyperparameters or {}).get("seed") for r in board.records}
    new = [s for s in range(0, 10_000) if s not in used][: max(max(wanted.values()) - have, 1)]
    name = f"{board.title}-seeds"
    lines = [
        shlex.join(
            [
                "python",
                "-m",
                "harness",
                "-m",
                f"method={','.join(methods)}",
                *rest,
                f"seed={','.join(map(str, new))}",
                f"sweep_name={name}",
            ]
        )
        for rest, methods in groups.items()
    ]
    lines.append(shlex.join(["python", "-m", "harness.leaderboard", *sweeps, f"multirun/{name}"]))
    return lines


def finish(verdict: Verdict, board: Leaderboard) -> Verdict:
    """Fill the verdict's headline, details and commands; returns it."""
    rec = verdict.recommended
    if verdict.state == "none" or rec is None:
        verdict.headline = (
            f"No verdict: every trial of {_names(verdict.others)} diverged; nothing to recommend. See the "
            "health flags and the failed trials below, fix the cause (e.g. a lower learning rate) and run "
            "the sweep again."
            if verdict.others
            else "No verdict: no completed trial has a value of the objective; see the failed trials below."
        )
        return verdict
    lead = _lead(verdict, rec)
    details: list[str] = []
    if verdict.state == "one method":
        seeds_word = f"{rec.n_seeds} seed{'s' if rec.n_seeds != 1 else ''}"
        verdict.headline = f"One method only: {lead} ({seeds_word}). Nothing to compare it with."
    elif verdict.state == "one seed":
        verdict.headline = (
            f"No verdict: one seed per method ranks trials, not methods; the seed-to-seed spread is "
            f"unmeasured. Leading on the selection prompts: {lead}."
        )
        verdict.commands = _commands(verdict, board, dict.fromkeys((m.method for m in verdict.methods), 5))
        details.append("To rank the methods, run each with 5 seeds (the trials already run are kept):")
    else:
        details += _ranked(verdict, board, lead)
    details[:0] = _kl_line(verdict)  # before what would settle it
    if verdict.state != "one method" and math.isfinite(verdict.detectable):
        details.insert(
            0,
            "With these seeds and prompts the smallest difference this study detects (80% power, "
            f"α = 0.05) is {_num(verdict.detectable)}, against a gain of {_num(verdict.gain)} over the base "
            f"model; the margin of a tie is {verdict.margin_share:g} x that gain = {_num(verdict.margin)} "
            f"({MARGIN_KEY}).",
        )
    verdict.details = details
    return verdict


def _kl_line(verdict: Verdict) -> list[str]:
    """What the verdict is conditioned on: each trial at its best checkpoint within the KL budget, and the
    methods' KL there, when they differ by more than 1 nat (a lower budget may choose otherwise)."""
    kls = {m.method: m.kl_mean for m in verdict.methods if math.isfinite(m.kl_mean)}
    if verdict.state in ("none", "one method") or len(kls) < 2:
        return []
    budget = (
        f"within the KL budget of {verdict.kl_budget:g} nats" if verdict.kl_budget else "with no KL budget"
    )
    line = f"Every trial is scored at its best checkpoint {budget}; " + ", ".join(
        f"{m} at KL {_num(k)}" for m, k in kls.items()
    )
    if max(kls.values()) - min(kls.values()) <= 1.0:
        return [line + "."]
    return [line + ": at a lower KL the order may differ (see Reward at matched KL)."]


def _lead(verdict: Verdict, rec: MethodVerdict) -> str:
    """The recommended method, its setting, test value, interval and gain over the base model, and what it
    was chosen on."""
    chosen = (
        "chosen on the selection prompts"
        if rec.selected_on == conclusions.ON_SELECTION
        else "chosen on the test prompts (no selection prompts were measured: this flatters it)"
    )
    setting = f" ({rec.setting})" if rec.setting != ONE_SETTING else ""
    interval = f" [{_num(rec.test_low)}, {_num(rec.test_high)}]" if math.isfinite(rec.test_low) else ""
    gain = (
        f", {'+' if verdict.gain >= 0 else ''}{_num(verdict.gain)} [{_num(verdict.gain_low)}, "
        f"{_num(verdict.gain_high)}] over the base model ({_num(verdict.base or math.nan)})"
        if math.isfinite(verdict.gain)
        else ""
    )
    obj = verdict.objective or "the objective"
    return f"**{rec.method}**{setting}: test {obj} {_num(rec.test_mean)}{interval}{gain}, {chosen}"


def _ranked(verdict: Verdict, board: Leaderboard, lead: str) -> list[str]:
    """The headline of a decided or undecided verdict; returns the lines on what would settle it."""
    by = {s: [m for m in verdict.others if m.status == s] for s in ("behind", "tied", "diverged")}
    open_ = [m for m in verdict.others if m.status in ("undecided", "ahead")]
    parts = []
    if by["behind"]:
        worst = max(m.p_holm for m in by["behind"])
        bound = "< 0.001" if worst < 0.001 else f"≤ {worst:.3f}"
        parts.append(f"{_names(by['behind'])} behind (Holm p {bound})")
    if by["tied"]:
        parts.append(f"{_names(by['tied'])} tied within the margin ± {_num(verdict.margin)}")
    if by["diverged"]:
        parts.append(f"{_names(by['diverged'])} diverged in every seed")
    if open_:
        parts.append(f"{_names(open_)} undecided")
    confidence = (
        f"; confidence {verdict.confidence:.2f} that it is best or within the margin of the best"
        if math.isfinite(verdict.confidence)
        else ""
    )
    if verdict.state == "decided":
        verdict.headline = f"Ship {lead}. {_sentence(parts)}{confidence}."
        return []
    verdict.headline = f"Undecided. Leading on the selection prompts: {lead}. {_sentence(parts)}{confidence}."
    return _settle(verdict, board, open_)


def _settle(verdict: Verdict, board: Leaderboard, open_: Sequence[MethodVerdict]) -> list[str]:
    """What would settle the open comparisons: the seeds in all and their commands, or why seeds cannot."""
    rec = verdict.recommended
    assert rec is not None
    lines = []
    wanted = {m.method: m.seeds_to_settle for m in open_ if m.seeds_to_settle}
    if wanted:
        total = max(wanted.values())
        verdict.commands = _commands(verdict, board, {rec.method: total, **wanted})
        lines.append(
            f"To settle it: about {total} seeds in all for {rec.method} and {_names(open_)} "
            f"({total - rec.n_seeds} more each; the trials already run are kept):"
        )
    for m in open_:
        if m.seeds_to_settle is None:
            more = (
                f"about {m.prompt_factor:g}x the test prompts (with 100 seeds)"
                if m.prompt_factor
                else "more seeds and prompts than is practical: the two are likely closer than the "
                "margin; a wider margin would call them tied"
            )
            lines.append(f"{m.method} against {rec.method}: seeds alone cannot settle it; {more}.")
        if m.status == "ahead":
            lines.append(
                f"{m.method} is ahead of {rec.method} on the test prompts although behind on the "
                "selection prompts: the two splits disagree; more selection prompts or seeds would tell."
            )
    return lines


def _sentence(parts: Sequence[str]) -> str:
    return "; ".join(parts)  # each part opens with a method name: its case is kept


def _names(entries: Sequence[MethodVerdict]) -> str:
    names = [m.method for m in entries]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def table(verdict: Verdict) -> pd.DataFrame:
    """One row per method: status, setting, seeds, selection mean, test mean and interval, difference from
    the recommended method with its Holm-adjusted p, detectable difference, P(best)."""
    rows = [
        {
            "method": m.method,
            "status": m.status,
            "setting": m.setting,
            "seeds": f"{m.n_seeds}" + (f" ({m.diverged} diverged)" if m.diverged else ""),
            "selection": m.selection_mean,
            "test": m.test_mean,
            "test_95": f"[{_num(m.test_low)}, {_num(m.test_high)}]" if math.isfinite(m.test_low) else "",
            "behind_by": m.diff,
            "p_holm": m.p_holm,
            "detectable": m.detectable,
            "p_best": m.p_best,
        }
        for m in verdict.methods
    ]
    return pd.DataFrame(rows)
