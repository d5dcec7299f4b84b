"""Generate the data of the toy-world lm-eval tasks from the grammar, deterministically.

    # (re)write harness/toyworld/lmeval_tasks/data/*.jsonl
    python -m harness.toyworld.lmeval_tasks.generate
    # exit 1 if the shipped files differ from the generator
    python -m harness.toyworld.lmeval_tasks.generate --check

The files are committed, so lm-eval reads them offline without importing the harness; a test checks that they
equal what this module produces (change the grammar, regenerate). Every split has its own seeded
:class:`random.Random`, so rows do not depend on the order in which splits are generated.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.toyworld.grammar import check
from harness.toyworld.reviews import TONES, sample_review
from harness.toyworld.reward import net_sentiment
from harness.toyworld.vocab import ADJ_NEG, ADJ_POS

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 0
#: rows per split: ``test`` is scored, ``train`` is the few-shot pool (``num_fewshot``)
SPLIT_SIZES = {"test": 300, "train": 16}
CONTINUATION_WORDS = 4  # toy_grammar: length of the continuation to choose
NUM_CHOICES = 4  # toy_grammar: the true continuation and three ungrammatical permutations of it
SENTIMENT_QUESTION = "overall , it was"  # toy_sentiment: what the review is followed by

Row = dict[str, Any]


def grammar_row(rng: random.Random) -> Row:
    """One ``toy_grammar`` row: ``context`` (a review prefix), ``choices`` (continuations), ``label``.

    The choices are the review's next :data:`CONTINUATION_WORDS` words and permutations of them after which
    the prefix has an ungrammatical transition; the same words in every choice, so likelihoods compare word
    order only.
    """
    while True:
        words = sample_review(rng, rng.choice(TONES)).split()
        cut = rng.randrange(2, len(words) - CONTINUATION_WORDS + 1)
        prefix, true = words[:cut], tuple(words[cut : cut + CONTINUATION_WORDS])
        wrong = sorted(
            {
                p
                for p in itertools.permutations(true)
                if p != true and check([*prefix, *p], start="sentence").errors > 0
            }
        )
        if len(wrong) >= NUM_CHOICES - 1:
            break
    choices = [" ".join(p) for p in rng.sample(wrong, NUM_CHOICES - 1)]
    label = rng.randrange(NUM_CHOICES)
    choices.insert(label, " ".join(true))
    return {"context": " ".join(prefix), "choices": choices, "label": label}


def sentiment_row(rng: random.Random, positive: bool) -> Row:
    """One ``toy_sentiment`` row: ``review``, ``choices`` ([negative adjective,
    positive adjective]), ``label``.

    The label is the sign of the gold reward's net sentiment of the review (reviews with none are skipped);
    the two adjectives are drawn from those not in the review (the toy text never repeats content words).
    """
    while True:
        review = sample_review(rng, "positive" if positive else "negative")
        words = review.split()
        net = net_sentiment(words)
        if net != 0:
            break
    used = set(words)
    negative_word = rng.choice([w for w in ADJ_NEG if w not in used])
    positive_word = rng.choice([w for w in ADJ_POS if w not in used])
    return {"review": review, "choices": [negative_word, positive_word], "label": int(net > 0)}


def _rows(task: str, split: str, make: Callable[[random.Random, int], Row]) -> list[Row]:
    rng = random.Random(f"{task}:{split}:{SEED}")
    return [make(rng, i) for i in range(SPLIT_SIZES[split])]


def generate() -> dict[str, list[Row]]:
    """Every data file's rows, by file name (``<task>.<split>.jsonl``)."""
    makers: dict[str, Callable[[random.Random, int], Row]] = {
        "toy_grammar": lambda rng, i: grammar_row(rng),
        "toy_sentiment": lambda rng, i: sentiment_row(rng, positive=i % 2 == 0),  # balanced labels
    }
    return {
        f"{task}.{split}.jsonl": _rows(task, split, make)
        for task, make in makers.items()
        for split in SPLIT_SIZES
    }


def to_jsonl(rows: list[Row]) -> str:
    """The rows as JSON lines (the exact text of a data file)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def stale_files(directory: Path = DATA_DIR) -> list[str]:
    """Names of the data files in ``directory`` that are missing or differ from what
    :func:`generate` gives."""
    stale = []
    for name, rows in generate().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != to_jsonl(rows):
            stale.append(name)
    return stale


def write(directory: Path = DATA_DIR) -> list[Path]:
    """Write every data file into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in generate().items():
        path = directory / name
        path.write_text(to_jsonl(rows), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command line: write the data files, or with ``--check`` report stale ones (exit status 1)."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.toyworld.lmeval_tasks.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="only check that the shipped files are up to date"
    )
    parser.add_argument(
        "--out", type=Path, default=DATA_DIR, help="folder of the data files (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        for name in stale:
            print(
                f"stale: {args.out / name} (run python -m harness.toyworld.lmeval_tasks.generate)",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
