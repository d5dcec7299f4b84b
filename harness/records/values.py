"""Values a trial record holds that are computed the same way everywhere: dotted hyperparameter keys and the
versions of the libraries that shape a result."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

_LIBRARIES = (
    "harness",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "hydra-core",
    "omegaconf",
    "pluggy",
    "optuna",
    "lm_eval",
)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys: {"trl": {"loss_type": "x"}} -> {"trl.loss_type": "x"}."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def library_versions() -> dict[str, str | None]:
    """Versions of Python and the libraries that shape a result (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
