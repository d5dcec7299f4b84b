"""Shared test setup: offline, a private cache, and helpers to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy-world cache shared by the whole session (HARNESS_CACHE_DIR if CI set one)."""
    path = Path(os.environ.get("HARNESS_CACHE_DIR") or tmp_path_factory.mktemp("harness-cache"))
    os.environ["HARNESS_CACHE_DIR"] = str(path)
    return path


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600, module: str = "harness"
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> args`` (``python args`` if module is empty) in ``cwd``;
    returns the process."""
    full_env = {**os.environ, **(env or {})}
    command = [sys.executable, "-m", module, *args] if module else [sys.executable, *args]
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


# A tiny toy world: small model, few pairs; builds in seconds and is shared by the whole session.
TINY_SPEC = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_layers": 1,
    "num_heads": 2,
    "pretrain_steps": 80,
    "pretrain_batch_size": 32,
    "num_train_pairs": 64,
    "num_eval_pairs": 16,
    "num_eval_prompts": 16,
    "num_selection_pairs": 16,
    "stats_samples_per_prompt": 1,
}


@pytest.fixture(scope="session")
def tiny_world(cache_dir: Path) -> list[str]:
    """Hydra overrides selecting the tiny toy world (built once, before the first test that needs it)."""
    from harness.toyworld import ToyWorldSpec, build_toy_world

    build_toy_world(ToyWorldSpec(**TINY_SPEC), cache_dir=str(cache_dir / "toyworld"), progress=False)
    return [
        f"toyworld.cache_dir={cache_dir / 'toyworld'}",
        *(f"toyworld.spec.{key}={value}" for key, value in TINY_SPEC.items()),
    ]


@pytest.fixture(scope="session")
def real_world(tmp_path_factory: pytest.TempPathFactory):
    """Real-architecture tiny models and real-format preference data (see tests/realworld.py), built once."""
    from tests.realworld import build_real_world

    return build_real_world(tmp_path_factory.mktemp("real-world"))
