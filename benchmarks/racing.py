"""Does racing name the exhaustive winner at a fraction of the compute? Replayed from exhaustive records.

    python benchmarks/racing.py --workdir DIR [--worlds 3,4,0] [--budget-share 0.4] [--out DIR]

``DIR`` holds the exhaustive grid of ``benchmarks/racing_grid.py`` (or, to replay the committed figures, it is
``leaderboards/racing-benchmark``, whose ``records.jsonl.gz`` holds the grid's records) (DPO, SimPO and ORPO,
3 settings each, 5 training seeds each, on each toy world). Per world:

- **The exhaustive answer**: the verdict (:mod:`harness.leaderboard.analysis.verdict`) of all 45 trials: the
  recommended method and every method's test mean at its chosen setting, and the margin of a tie.
- **The race**, replayed: the racing rules (:mod:`harness.race.rules`, the same function the racing sweeper
  runs) read each trial's result from the exhaustive records instead of training it. A race's only random
  choice is the order in which it uses the training seeds, so its racing seed is a seed order: every one of
  the 5! = 120 orders is replayed (each an independent race for the rules' purposes), at a budget of
  ``--budget-share`` of the exhaustive training steps. The race's verdict is computed on the trials it ran
  exactly as the sweeper's report does (each method's setting chosen among those run with the most seeds).
- **Right**: the race recommends the exhaustive winner, or a method whose exhaustive test mean is within the
  exhaustive margin of the winner's.

``--real W:ORDER`` (repeatable) also runs the race for real on world W with the seeds in ORDER (e.g.
``3:12345``), through the CLI (``hydra/sweeper=race``, the same candidates and budget, 2 trials side by side),
in ``DIR/multirun/race-real-w<W>-<ORDER>``, and compares its verdict with the exhaustive answer and with the
replay of the same order.

Prints, per world, the share of right verdicts, the distribution of compute used (share of the exhaustive
training steps), how races stopped and the verdict states; then the calibration over every replay: the
verdict's stated confidence (its probability that the recommended method is best or within the margin) in
bins against the observed share right. ``--out`` writes ``SUMMARY.md`` and ``replays.csv`` there.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 1.0000001)


BUNDLE = "records.jsonl.gz"


def world_records(workdir: Path, world: int) -> list:
    """Every trial record of the exhaustive grid on ``world``: from ``workdir/multirun``, else from a record
    bundle ``workdir/records.jsonl.gz`` (what ``--out`` writes)."""
    from harness.records import TrialRecord

    paths = sorted((workdir / "multirun").glob(f"race-grid-*-w{world}/*/trial.json"))
    if paths:
        return [read_record(p) for p in paths]
    with gzip.open(workdir / BUNDLE, "rt", encoding="utf-8") as f:
        records = [TrialRecord.from_dict(json.loads(line)) for line in f if line.strip()]
    return [r for r in records if str(r.trial_id).endswith(tuple(f"-w{world}/{j}" for j in range(1000)))]


def write_bundle(workdir: Path, worlds: list[int], out: Path) -> int:
    """The grid's records, readable samples and loss histories left out (the replay reads metrics and
    per-prompt scores), one JSON line each, gzipped: the benchmark replays from it without the work dir."""
    lines = []
    for world in worlds:
        for record in world_records(workdir, world):
            data = record.to_dict()
            for checkpoint in data.get("checkpoints") or []:
                checkpoint.pop("samples", None)
            (data.get("reference") or {}).pop("samples", None)
            (data.get("train") or {}).pop("log_history", None)
            lines.append(json.dumps(data, sort_keys=True, allow_nan=False))
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("\n".join(lines) + "\n")
    return len(lines)


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
    answer = verdicts.decide(build([by_id[t] for t in ran]))
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


def run_world(
    workdir: Path, world: int, share: float, keep: int, methods: list[str] | None = None
) -> pd.DataFrame:
    """Every seed order's replay on ``world`` (the candidates of ``methods`` only, when given), one row each,
    with whether it was right."""
    records = [r for r in world_records(workdir, world) if not methods or r.method in methods]
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


def race_command(world: int, order: str, budget: int) -> list[str]:
    """The CLI arguments of a real race on ``world``, seeds in ``order``, over the grid's candidates."""
    from racing_grid import METHODS, toy_learning_rates

    rates = [f"{m}.learning_rate={','.join(str(r) for r in toy_learning_rates(m))}" for m in METHODS]
    return [
        "-m",
        "hydra/sweeper=race",
        f"method={','.join(METHODS)}",
        "hydra.sweeper.use_suggested=false",
        *rates,
        f"toyworld.spec.seed={world}",
        "train.save_checkpoints=false",
        f"hydra.sweeper.seeds=[{','.join(order)}]",
        f"hydra.sweeper.budget_steps={budget}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "leaderboard.print=false",
        f"sweep_name=race-real-w{world}-{order}",
    ]


def run_real(workdir: Path, world: int, order: str, share: float, keep: int) -> list[str]:
    """Run one race for real and compare it with the exhaustive answer and its replay; the report lines."""
    import json
    import os
    import subprocess

    records = world_records(workdir, world)
    answer, means = exhaustive(records)
    ev = race_evidence.collect(records)
    budget = int(share * sum(ev.steps.values()))
    command = [sys.executable, "-m", "harness", *race_command(world, order, budget)]
    print("$ " + " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=workdir, env=dict(os.environ), check=True)
    name = f"race-real-w{world}-{order}"
    race = json.loads((workdir / "multirun" / name / "race.json").read_text())
    real = [read_record(p) for p in sorted((workdir / "multirun" / name).glob("*/trial.json"))]
    verdict = verdicts.decide(build(real))
    replayed = replay(records, ev, tuple(int(c) for c in order), budget, keep)
    rec = verdict.recommended.method if verdict.recommended else None
    right = (
        rec == answer.recommended.method
        or abs(means.get(rec, -math.inf) - means[answer.recommended.method]) <= answer.margin
    )
    steps = sum(int(r.train.steps or 0) if r.train is not None else 0 for r in real)
    return [
        f"- world {world}, seeds in order {order}: {len(real)} trials, {steps} steps "
        f"({steps / sum(ev.steps.values()):.1%} of the exhaustive); race stopped: {race['stopped']}, leader "
        f"{race['leader']}; verdict {verdict.state}, recommends {rec} (confidence {verdict.confidence:.2f}): "
        f"{'right' if right else 'WRONG'}; its replay recommends {replayed['recommended']} after "
        f"{replayed['trials']} trials ({replayed['why']})",
    ]


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
    parser.add_argument(
        "--methods", default=None, help="race only these methods' candidates (e.g. orpo,simpo)"
    )
    parser.add_argument("--real", action="append", default=[], help="W:ORDER, e.g. 3:12345 (repeatable)")
    args = parser.parse_args(argv)
    methods = args.methods.split(",") if args.methods else None
    frames = [
        run_world(args.workdir, int(w), args.budget_share, args.keep_per_method, methods)
        for w in args.worlds.split(",")
    ]
    frame = pd.concat(frames, ignore_index=True)
    lines = summary(frame)
    for spec in args.real:
        world, order = spec.split(":")
        lines += ["", *run_real(args.workdir, int(world), order, args.budget_share, args.keep_per_method)]
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out / "replays.csv", index=False)
        (args.out / "SUMMARY.md").write_text("\n".join(lines) + "\n")
        if (args.workdir / "multirun").is_dir():
            write_bundle(args.workdir, [int(w) for w in args.worlds.split(",")], args.out / BUNDLE)


if __name__ == "__main__":
    sys.exit(main())
