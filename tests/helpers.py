"""Helpers for tests that build trials in-process on the tiny toy world."""

from __future__ import annotations

from pathlib import Path

from harness.config.compose import compose_job
from harness.trial import TrialRun
from harness.trial.context import TrainContext

# Small and fast: a few optimizer steps, few held-out prompts, short completions.
FAST = ["method.max_steps=4", "train.num_checkpoints=1", "method.batch_size=4", "eval.num_prompts=8", "eval.max_new_tokens=12",
        "eval.selection.num_prompts=8", "train.num_threads=0"]


def compose(world_overrides: list[str], overrides: list[str]):
    """The trial config for ``overrides`` on the tiny world, with the FAST settings."""
    return compose_job([*world_overrides, *FAST, *overrides], {})


def train_context(world_overrides: list[str], trial_dir: Path, overrides: list[str]) -> TrainContext:
    """A prepared TrainContext (data, models loaded; reference not evaluated) for ``overrides``."""
    cfg = compose(world_overrides, overrides)
    return TrialRun(cfg, trial_dir).prepare(evaluate_reference=False)
