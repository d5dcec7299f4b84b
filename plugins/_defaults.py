"""Load a built-in method's defaults from ``conf/method/<name>.yaml`` (one source of truth for defaults)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from omegaconf import OmegaConf


def method_defaults(name: str) -> dict[str, Any]:
    """The shipped YAML defaults of method ``name`` as a plain dict."""
    text = files("harness_conf").joinpath("method", f"{name}.yaml").read_text(encoding="utf-8")
    return OmegaConf.to_container(OmegaConf.create(text), resolve=True)  # type: ignore[return-value]
