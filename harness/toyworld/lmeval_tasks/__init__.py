"""lm-eval tasks over the toy world's grammar, shipped with the harness so that benchmarks run offline.

This folder is an lm-eval task folder: pass it as ``--include_path`` to lm-eval's command line, or let the
``lm_eval`` evaluator (``plugins/evaluators/lm_eval/``) include it automatically. Tasks:

- ``toy_grammar``: a review prefix and four continuations of four words, the true one and three
  permutations of it that the grammar rejects; pick the grammatical one (chance: 0.25).
- ``toy_sentiment``: a positive or negative review followed by "overall , it was"; pick the adjective of
  the review's gold sentiment (one positive and one negative adjective; chance: 0.5).

The data are jsonl files in ``data/``, generated deterministically from the grammar by
:mod:`harness.toyworld.lmeval_tasks.generate` and committed; the YAML files load them through
:mod:`harness.toyworld.lmeval_tasks.loaders` (lm-eval's ``custom_dataset``).
"""

from __future__ import annotations

from pathlib import Path

#: The folder to give lm-eval as an include path.
TASKS_DIR: Path = Path(__file__).resolve().parent

#: The tasks defined here.
TOY_TASKS: tuple[str, ...] = ("toy_grammar", "toy_sentiment")
