"""Does racing name the exhaustive winner at a fraction of the compute? Replayed from exhaustive records.

    python benchmarks/racing.py --workdir DIR [--worlds 3,4,0] [--budget-share 0.4] [--out DIR]

``DIR`` holds the exhaustive grid of ``benchmarks/racing_grid.py`` (DPO, SimPO and ORPO, 3 settings each, 5
training seeds each, on each toy world). Per world:

- **The exhaustive answer**: the verdict (:mod:`harness.leaderboard.analysis.verdict`) of all 45 trials: the
  recommended method and every method's test mean at its chosen setting, and the margin of a tie.
- **The race**, replayed: the racing rules (:mod:`harness.race.rules`, the same function the racing sweeper
  runs) read each trial's result from the exhaustive records instead of training it. A race's only random
  choice is the order in which it uses the training seeds, so its racing seed is a seed order: every one of
  the 5! = 120 orders is replayed (each an independent race for the rules' purposes), at a budget of
  ``--budget-share`` of the exhaustive training steps. The race's verdict is computed on the trials it ran
  (the settings its search dropped left out), exactly as the sweeper's report does.
- **Right**: the race recommends the exhaustive winner, or a method whose exhaustive test mean is within the
  exhaustive margin of the winner's.

Prints, per world, the share of right verdicts, the distribution of compute used (share of the exhaustive
training steps), how races stopped and the verdict states; then the calibration over every replay: the
verdict's stated confidence (its probability that the recommended method is best or within the margin) in
bins against the observed share right. ``--out`` writes ``SUMMARY.md`` and ``replays.csv`` there.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from harness.leaderboard.analysis import verdict as verdicts
from harness.leaderboard.board import build
from harness.race import evidence as race_evidence
from harness.race import rules as race_rules
from harness.records import read_record

BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 1.0000001)


def world_records(workdir: Path, world: int) -> list:
    """Every trial record of the exhaustive grid on ``world``."""
    paths = sorted((workdir / "multirun").glob(f"race-grid-*-w{world}/*/trial.json"))
    return [read_record(p) for p in paths]


def exhaustive(records: list) -> tuple[verdicts.Verdict, dict[str, float]]:
    """The verdict of every trial and each method's test mean at its chosen setting."""
    answer = verdicts.decide(build(records))
    return answer, {m.method: m.test_mean for m in answer.methods}


def replay(
    records: list, ev: race_evidence.RaceEvidence, order: tuple[int, ...], budget: int, keep: int
) -> dict:
    """One race with the seeds in ``order``, its trials read from ``records`` (their evidence ``ev``); what
    it ran and decided."""
    by_id = {str(r.trial_id): r for r in records}
    trial_of = {(name, seed): t for t, name in ev.candidate_of.items() for seed in [_seed(by_id[t])]}
    candidates = {name: name.split(" ")[0] for name in ev.by_candidate}
    steps = max(ev.steps.values())
    rules = race_rules.RaceRules(
        seeds=order, budget_steps=budget, steps_per_trial=steps, keep_per_method=keep
    )
    ran: list[str] = []
    seen: dict[str, list[int]] = {n: [] for n in candidates}
    while True:
        partial = {n: race_rules.upto(ev.by_candidate[n], s) for n, s in seen.items() if s}
        step = race_rules.next_step(
            candidates,
            partial,
            rules,
            base=ev.base,
            direction=ev.direction,
            spent_steps=sum(ev.steps.get(t, steps) for t in ran),
        )
        if step.done:
            break
        for name, seed in step.jobs:
            seen[name].append(seed)
            ran.append(trial_of[(name, seed)])
    searched_out = {n for n, why in step.dropped.items() if why.startswith("search:")}
    kept = [by_id[t] for t in ran if ev.candidate_of[t] not in searched_out]
    answer = verdicts.decide(build(kept))
    return {
        "why": step.why,
        "alive": len(step.alive),
        "trials": len(ran),
        "steps": sum(ev.steps.get(t, steps) for t in ran),
        "recommended": answer.recommended.method if answer.recommended else None,
        "state": answer.state,
        "confidence": answer.confidence,
    }


def _seed(record) -> int:
    return int((record.hyperparameters or {}).get("seed"))


def run_world(workdir: Path, world: int, share: float, keep: int) -> pd.DataFrame:
    """Every seed order's replay on ``world``, one row each, with whether it was right."""
    records = world_records(workdir, world)
    answer, means = exhaustive(records)
    ev = race_evidence.collect(records)
    total = sum(ev.steps.values())
    winner = answer.recommended.method
    seeds = sorted({_seed(r) for r in records})
    rows = []
    for order in itertools.permutations(seeds):
        out = replay(records, ev, order, int(share * total), keep)
        rec = out["recommended"]
        out.update(
            world=world,
            order="".join(map(str, order)),
            share=out["steps"] / total,
            right=rec == winner or abs(means.get(rec, -math.inf) - means[winner]) <= answer.margin,
            winner=winner,
            margin=answer.margin,
        )
        rows.append(out)
    print(f"world {world}: exhaustive verdict {answer.state}: {answer.headline}", flush=True)
    return pd.DataFrame(rows)


def summary(frame: pd.DataFrame) -> list[str]:
    """The report lines: per world, then the calibration table."""
    lines = [
        "| world | exhaustive winner | replays | right | compute used: median (min-max) | stopped "
        "| verdicts |",
        "|---|---|---|---|---|---|---|",
    ]
    for world, g in frame.groupby("world", sort=False):
        stops = ", ".join(f"{k} {v}" for k, v in Counter(g["why"]).most_common())
        states = ", ".join(f"{k} {v}" for k, v in Counter(g["state"]).most_common())
        lines.append(
            f"| {world} | {g['winner'].iloc[0]} | {len(g)} | {g['right'].mean():.1%} | "
            f"{g['share'].median():.1%} ({g['share'].min():.1%}-{g['share'].max():.1%}) | {stops} "
            f"| {states} |"
        )
    lines += ["", "| stated confidence | replays | mean stated | observed right |", "|---|---|---|---|"]
    stated = frame["confidence"].astype(float)
    for low, high in itertools.pairwise(BINS):
        g = frame[(stated >= low) & (stated < high)]
        if len(g):
            lines.append(
                f"| [{low:.2f}, {min(high, 1):.2f}{']' if high > 1 else ')'} | {len(g)} | "
                f"{g['confidence'].mean():.3f} | {g['right'].mean():.3f} |"
            )
    none = frame[stated.isna()]
    if len(none):
        lines.append(f"| none stated | {len(none)} | - | {none['right'].mean():.3f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Replay every world and print (and with ``--out`` write) the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--worlds", default="3,4,0")
    parser.add_argument("--budget-share", type=float, default=0.4)
    parser.add_argument("--keep-per-method", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    frames = [
        run_world(args.workdir, int(w), args.budget_share, args.keep_per_method)
        for w in args.worlds.split(",")
    ]
    frame = pd.concat(frames, ignore_index=True)
    lines = summary(frame)
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out / "replays.csv", index=False)
        (args.out / "SUMMARY.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
