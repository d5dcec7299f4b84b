"""Datasets of the toy-world lm-eval tasks, for the tasks' YAML
(``custom_dataset: !function loaders.<task>``).

lm-eval resolves ``data_files`` against the working directory, not the YAML's folder, so the YAML names these
functions instead; lm-eval imports this file by its path, so it must not import the harness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

DATA_DIR = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "test")


def load(task: str) -> datasets.DatasetDict:
    """The ``train`` (few-shot pool) and ``test`` splits of ``task`` from ``data/<task>.<split>.jsonl``."""
    files = {split: str(DATA_DIR / f"{task}.{split}.jsonl") for split in SPLITS}
    return datasets.load_dataset("json", data_files=files)


def toy_grammar(**metadata: Any) -> datasets.DatasetDict:
    """The ``toy_grammar`` task's data (lm-eval passes the task's metadata, which is not needed)."""
    return load("toy_grammar")


def toy_sentiment(**metadata: Any) -> datasets.DatasetDict:
    """The ``toy_sentiment`` task's data (lm-eval passes the task's metadata, which is not needed)."""
    return load("toy_sentiment")
