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


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600,
            module: str = "harness") -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> args`` in ``cwd`` and return the completed process (text output)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
