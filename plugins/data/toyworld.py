"""Data source and model ``toyworld``: the built-in synthetic world (see :mod:`harness.toyworld`).

Claims ``model.name_or_path=toyworld`` and ``data.source=toyworld``, builds the world on first use (cached on
disk by its spec), and provides the world's exact gold reward to evaluators.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from harness.plugin import DataFormat, PreferenceData, RewardFunction, ValidationReport, hookimpl

if TYPE_CHECKING:
    from pathlib import Path

    from harness.toyworld import ToyWorldSpec

NAME = "toyworld"


def _spec(cfg: DictConfig) -> Any:
    from harness.toyworld import ToyWorldSpec

    overrides = OmegaConf.to_container(cfg.toyworld.spec, resolve=True) if cfg.get("toyworld") else {}
    return ToyWorldSpec.from_dict(overrides or {})


def _cache_dir(cfg: DictConfig) -> str | None:
    return cfg.toyworld.get("cache_dir") if cfg.get("toyworld") else None


@lru_cache(maxsize=4)
def _world(spec: ToyWorldSpec, cache_dir: str | None) -> Any:
    from harness.toyworld import build_toy_world

    return build_toy_world(spec, cache_dir=cache_dir)


def world(cfg: DictConfig) -> Any:
    """The toy world of ``cfg`` (built once per spec and process, cached on disk across processes)."""
    return _world(_spec(cfg), _cache_dir(cfg))


def _uses_toyworld(cfg: DictConfig) -> bool:
    return cfg.model.name_or_path == NAME or cfg.data.source == NAME


@hookimpl
def harness_config_validate(cfg: DictConfig) -> None:
    """Check ``toyworld.spec`` keys (a ConfigError naming the unknown key) when the world is used."""
    if _uses_toyworld(cfg):
        _spec(cfg)


@hookimpl
def harness_model_resolve(name_or_path: str, cfg: DictConfig, dry_run: bool) -> str | None:
    """The toy model's directory (building the world unless ``dry_run``)."""
    if name_or_path != NAME:
        return None
    if dry_run:
        return NAME
    return str(world(cfg).model_dir)


@hookimpl
def harness_data_load(cfg: DictConfig) -> PreferenceData | None:
    """The toy world's train pairs, held-out pairs and prompts, and its selection prompts and pairs."""
    if cfg.data.source != NAME:
        return None
    from datasets import load_dataset

    w = world(cfg)
    files = {"train": str(w.train_pairs_path), "eval": str(w.eval_pairs_path)}
    pairs = load_dataset("json", data_files=files)
    train = pairs["train"]
    limit = cfg.data.get("max_train_examples")
    if limit:
        train = train.select(range(min(int(limit), len(train))))
    prompts = _prompts(w.eval_prompts_path)
    # Selection prompts and pairs: what checkpoints are chosen on,
    # disjoint from the reported eval prompts and pairs.
    selection = _prompts(w.selection_prompts_path) if w.selection_prompts_path.is_file() else None
    selection_pairs = (
        load_dataset("json", data_files=str(w.selection_pairs_path), split="train")
        if w.selection_pairs_path.is_file() and w.selection_pairs_path.stat().st_size
        else None
    )
    fmt = DataFormat(kind="pairwise", style="standard", implicit_prompt=False)
    report = ValidationReport(rows_in=len(train), rows_out=len(train), ties_dropped=0, format=fmt)
    return PreferenceData(
        train=train,
        eval=pairs["eval"],
        eval_prompts=prompts,
        format=fmt,
        report=report,
        selection_prompts=selection,
        selection_pairs=selection_pairs,
        name=_spec(cfg).describe(),
    )


def _prompts(path: Path) -> list[str]:
    """The prompts of a ``{"prompt"}`` JSONL file, in order."""
    import json

    return [
        json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


@hookimpl
def harness_gold_reward(cfg: DictConfig) -> RewardFunction | None:
    """The toy world's exact gold reward (it scores the completion; the prompt is not needed)."""
    if cfg.data.source != NAME:
        return None
    from harness.toyworld import gold_rewards

    return lambda prompts, completions: gold_rewards(list(completions))
