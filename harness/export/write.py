"""Writing a chosen checkpoint as a model directory: a full fine-tune's weights as saved, a LoRA adapter
merged into its base weights (the default) or the adapter alone, with its tokenizer and any files that go
with it (a model card), into a temporary directory first and renamed into place when complete."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.export.choose import ADAPTER_CONFIG, Chosen, ExportError


def check_out(out: Path) -> None:
    """Refuse an output directory that exists and is not empty (before anything is chosen or written)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(
            f"--out {out} already exists and is not empty; choose a new directory or remove it."
        )


def _base_model_path(chosen: Chosen) -> tuple[str, dict[str, Any]]:
    """Where the adapter's base model is, and the trial's model settings: the adapter's own base path when it
    is a directory, else the trial's ``model.name_or_path`` resolved as the trial resolved it."""
    from omegaconf import OmegaConf

    from harness.config.resources import resolve_model_path
    from harness.plugin.manager import get_plugin_manager

    config = chosen.record.config or {}
    model_cfg = dict(config.get("model") or {})
    base = json.loads((chosen.directory / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if base and Path(base).is_dir():
        return str(base), model_cfg
    cfg = OmegaConf.create(config)
    return resolve_model_path(get_plugin_manager(list(cfg.get("plugins") or [])), cfg), model_cfg


def _write_merged(chosen: Chosen, target: Path) -> None:
    """Load the base model in full precision (never quantized), apply the adapter, merge it and save."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.config.model_settings import DTYPES
    from harness.verbosity import set_library_verbosity

    set_library_verbosity(False)
    base_path, model_cfg = _base_model_path(chosen)
    name = str(model_cfg.get("dtype"))
    dtype = getattr(torch, name) if name in DTYPES else torch.float32
    base = AutoModelForCausalLM.from_pretrained(
        base_path,
        revision=model_cfg.get("revision"),
        dtype=dtype,
        trust_remote_code=bool(model_cfg.get("trust_remote_code", False)),
    )
    merged = PeftModel.from_pretrained(base, str(chosen.directory)).merge_and_unload()
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(str(chosen.directory)).save_pretrained(target)


def export(chosen: Chosen, out: Path, adapter: bool = False, files: Mapping[str, str] | None = None) -> str:
    """Write ``chosen`` to ``out`` (merged weights, or the adapter alone with ``adapter``) with ``files``
    (name -> text, e.g. ``README.md``) beside the weights; returns what was written, in words. ``out`` must
    not exist or be empty; it is written to a temporary directory first."""
    check_out(out)
    if adapter and not chosen.is_adapter:
        raise ExportError(
            f"trial {chosen.name} trained all weights (no LoRA adapter); export it without --adapter."
        )
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if chosen.is_adapter and not adapter:
        _write_merged(chosen, tmp)
        what = "its LoRA adapter merged into the base weights"
    else:
        shutil.copytree(chosen.directory, tmp)
        what = "its LoRA adapter" if adapter else "its weights"
    for name, text in (files or {}).items():
        (tmp / name).write_text(text, encoding="utf-8")
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return what
