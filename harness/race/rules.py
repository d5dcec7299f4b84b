"""The racing study's rules: which candidates still run, which are dropped and why, and what runs next.

A *candidate* is a method at one setting. The race follows F-race (Birattari, Stützle, Paquete & Varrentrapp,
"A racing algorithm for configuring metaheuristics", GECCO 2002): every surviving candidate is evaluated on
the same new *instance* each round and candidates are dropped as soon as a paired test says they are behind;
here an instance is a training seed (every candidate of a round trains with the same seed, so each round adds
one matched block), the test is the paired two-way test over seeds and selection prompts of
:mod:`harness.leaderboard.analysis.twoway` with Holm's correction over the comparisons with the leader (the
t-test variant of F-race, Birattari 2009 ch. 4, rather than Friedman's rank test, which needs many more
blocks than the 3 to 10 seeds a training budget affords). The rounds:

1. **Search**: every candidate trains with the first seed. Each method then keeps its ``keep_per_method``
   best settings on the selection prompts (a one-seed search per method, what a budget-aware search gives);
   the others are dropped ("search: behind <best> of <method>").
2. **Race**: the survivors train with the next seed, all of them, one round at a time. From
   ``first_test`` seeds on, after each round every survivor is compared with the leader (best mean on the
   selection prompts, all seeds): dropped when behind (Holm-adjusted p < ``alpha``).
3. **Stop** when one candidate is left ("decided"), when every survivor is within the margin of the leader by
   two one-sided tests ("tied"), when the seeds are used up ("seeds exhausted"), or when the next round does
   not fit the budget ("budget spent"). Partial rounds never run: a round is one block of the design.

Only *selection* values decide anything here; the verdict that follows reports the test prompts
(:mod:`harness.leaderboard.analysis.verdict`). The rules are a pure function of the evidence so far
(:func:`next_step`): a racing sweeper that restarts, or several workers on one study, recompute the same
decision from the same finished trials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness.leaderboard.analysis import seeds as seed_stats
from harness.leaderboard.analysis import twoway

DECIDED, TIED, EXHAUSTED, SPENT = "decided", "tied", "seeds exhausted", "budget spent"


@dataclass(frozen=True)
class RaceRules:
    """The race's settings: the training seeds in the order rounds use them, the test level, seeds before the
    first comparison, settings each method keeps after the search, the margin of a tie (a share of the
    leader's gain over the base model on the selection prompts), and the budget in training steps (None:
    none) with the steps one trial costs (None: unknown yet)."""

    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    alpha: float = 0.05
    first_test: int = 2
    keep_per_method: int = 1
    margin_share: float = 0.2
    budget_steps: int | None = None
    steps_per_trial: int | None = None


@dataclass
class Step:
    """What the race does next: the candidates alive, the dropped ones with their reasons, the jobs to run
    (candidate, seed) this round, whether it is over and why, the leader, and its margin."""

    alive: list[str]
    dropped: dict[str, str]
    jobs: list[tuple[str, int]] = field(default_factory=list)
    done: bool = False
    why: str = ""
    leader: str | None = None
    margin: float = math.nan


def _sign(direction: str) -> float:
    return -1.0 if direction == "minimize" else 1.0


def _seeds_done(ev: twoway.Evidence | None) -> set[object]:
    return set(ev.seeds) if ev is not None else set()


def _search_drops(
    candidates: Mapping[str, str], evidence: Mapping[str, twoway.Evidence], rules: RaceRules, sign: float
) -> dict[str, str]:
    """The settings each method drops after the search round (all but its ``keep_per_method`` best)."""
    drops: dict[str, str] = {}
    by_method: dict[str, list[str]] = {}
    for name, method in candidates.items():
        by_method.setdefault(method, []).append(name)
    for method, names in by_method.items():
        ranked = sorted(names, key=lambda n: -sign * _value(evidence.get(n)))
        best = ranked[0]
        for name in ranked[rules.keep_per_method :]:
            drops[name] = (
                f"search: behind {best} of {method} on the selection prompts "
                f"({_fmt(_value(evidence.get(name)))} against {_fmt(_value(evidence.get(best)))}, seed "
                f"{rules.seeds[0]})"
            )
    return drops


def upto(ev: twoway.Evidence, seeds: Sequence[object]) -> twoway.Evidence:
    """``ev`` restricted to ``seeds`` (the rounds run so far, as the race saw them then)."""
    keep = [i for i, s in enumerate(ev.seeds) if s in set(seeds)]
    return twoway.Evidence(
        tuple(ev.seeds[i] for i in keep),
        tuple(ev.values[i] for i in keep),
        tuple(ev.rows[i] for i in keep),
        tuple(ev.ses[i] for i in keep),
    )


def _value(ev: twoway.Evidence | None) -> float:
    return ev.mean if ev is not None and ev.n else -math.inf


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "n/a"


def _race_drops(
    leader: str,
    alive: Sequence[str],
    evidence: Mapping[str, twoway.Evidence],
    rules: RaceRules,
    sign: float,
    margin: float,
) -> tuple[dict[str, str], bool]:
    """The candidates of ``alive`` behind ``leader`` (Holm) with their reasons, and whether every other one
    is tied with it within ``margin``."""
    others = [n for n in alive if n != leader]
    diffs = [twoway.difference(evidence[leader], evidence[n]) for n in others]
    adjusted = seed_stats.holm([twoway.p_value(d) for d in diffs])
    drops = {
        name: (
            f"behind {leader} on the selection prompts after {d.n} seeds "
            f"(by {_fmt(sign * d.mean)}, Holm p {q:.3g})"
        )
        for name, d, q in zip(others, diffs, adjusted, strict=True)
        if math.isfinite(q) and q < rules.alpha and sign * d.mean > 0
    }
    kept = [d for n, d in zip(others, diffs, strict=True) if n not in drops]
    tied = bool(kept) and all(twoway.equivalent(d, margin, rules.alpha) for d in kept)
    return drops, tied


def next_step(
    candidates: Mapping[str, str],
    evidence: Mapping[str, twoway.Evidence],
    rules: RaceRules,
    *,
    base: float | None = None,
    direction: str = "maximize",
    spent_steps: int = 0,
) -> Step:
    """The race's next step from ``evidence`` (per candidate name, its selection values by seed, the
    seeds it has run; a candidate with none is absent or empty) over ``candidates`` (name -> method);
    ``base`` is the reference model's selection value (for the margin), ``spent_steps`` the training steps
    the finished trials used. Replays of the same evidence give the same step."""
    sign = _sign(direction)
    first = rules.seeds[0]
    missing = [n for n in candidates if first not in _seeds_done(evidence.get(n))]
    if missing:  # the search round is not complete
        return Step(list(candidates), {}, [(n, first) for n in missing])
    searched = {n: upto(evidence[n], [first]) for n in candidates if n in evidence}
    dropped = _search_drops(candidates, searched, rules, sign)
    alive = [n for n in candidates if n not in dropped]
    alive_dead = [n for n in alive if evidence[n].n == 0]
    for name in alive_dead:
        dropped[name] = "no selection value (failed or diverged)"
    alive = [n for n in alive if n not in dropped]
    leader, margin = (alive[0] if alive else None), math.nan
    for index, seed in enumerate(rules.seeds):
        have = [n for n in alive if seed in _seeds_done(evidence.get(n))]
        if len(have) < len(alive):  # this round is not complete: run it
            todo = [(n, seed) for n in alive if n not in have]
            cost = (rules.steps_per_trial or 0) * len(todo)
            over = rules.budget_steps is not None and spent_steps + cost > rules.budget_steps
            if index > 0 and over and not have:  # a round never starts that the budget cannot finish
                return Step(alive, dropped, [], True, SPENT, leader, margin)
            return Step(alive, dropped, todo, False, "", leader, margin)
        if len(alive) <= 1:
            return Step(alive, dropped, [], True, DECIDED, alive[0] if alive else None, margin)
        seen = {n: upto(evidence[n], rules.seeds[: index + 1]) for n in alive}
        leader = max(alive, key=lambda n: sign * _value(seen[n]))
        if index + 1 >= rules.first_test:
            gain = sign * (_value(seen[leader]) - (base or 0.0))
            margin = rules.margin_share * abs(gain) if base is not None else math.nan
            drops, tied = _race_drops(leader, alive, seen, rules, sign, margin)
            dropped.update(drops)
            alive = [n for n in alive if n not in drops]
            if len(alive) <= 1:
                return Step(alive, dropped, [], True, DECIDED, leader, margin)
            if tied:
                return Step(alive, dropped, [], True, TIED, leader, margin)
    return Step(alive, dropped, [], True, EXHAUSTED, leader, margin)
