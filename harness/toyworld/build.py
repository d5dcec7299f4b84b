"""Building the toy world once per spec, and finding it again in the on-disk cache.

This module owns the cache and the build sequence. ``build_toy_world(spec)`` returns the world in
``<cache_dir>/<spec.key()>/`` if it is complete and intact; otherwise it builds it into a temporary directory
next to it and renames that into place (``os.replace``), under an exclusive file lock (``<key>.lock``), so
that concurrent processes never build the same world twice and never see a half-written one. A damaged world
(a file missing, truncated or edited) is reported in one line naming the directory and the file, moved aside
by one rename and rebuilt the same way, so the directory is never half-deleted. A world directory:

    model/                  the pretrained toy model + tokenizer (save_pretrained; safetensors)
    train_pairs.jsonl       {"prompt", "chosen", "rejected"} preference pairs for training
    eval_pairs.jsonl        held-out pairs (for held-out preference accuracy)
    eval_prompts.jsonl      {"prompt"} held-out prompts (for sampling-based evaluation)
    selection_prompts.jsonl {"prompt"} held-out prompts that checkpoints are chosen on
                            (disjoint from all others)
    selection_pairs.jsonl   held-out pairs for the selection split (preference accuracy there)
    meta.json               spec, key, build seconds, parameter count, base-model and pair statistics
    manifest.json           every other file's path, size and SHA-256 (written last, atomically: its presence
                            marks a complete world; each load checks sizes and checksums against it, ~3 ms)

A world built before manifests existed (``meta.json``, no ``manifest.json``) is checked once instead (every
required file there, every file loads, the line counts match ``meta.json``) and, if healthy, given a manifest
rather than rebuilt: a rebuild under another torch version or CPU would give other weights than the ones that
earlier results were computed with.

The default cache directory is ``$HARNESS_CACHE_DIR/toyworld``, else ``~/.cache/harness/toyworld``. In
read-only mode (``HARNESS_CACHE_READONLY=1``) a world missing from it, or damaged there, is built into this
process's private temporary directory instead (:func:`harness.cache.private_dir`); the cache is untouched.
A build's temporary directory names its writer (``.<key>.pid<pid>@<host>.<random>.tmp``), so that a build
killed half-way is removed at the next start (:func:`harness.cache.clean_stale`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cache import (
    MANIFEST,
    cache_dir,
    file_lock,
    private_dir,
    readonly,
    verify_manifest,
    write_manifest,
    writer_tag,
)
from harness.toyworld.reward import gold_reward
from harness.toyworld.spec import VERSION, ToyWorldSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

META = "meta.json"
# Files every complete world has (what a world built before manifests existed is checked for).
REQUIRED = (
    META,
    "model/config.json",
    "model/model.safetensors",
    "model/tokenizer.json",
    "train_pairs.jsonl",
    "eval_pairs.jsonl",
    "eval_prompts.jsonl",
    "selection_prompts.jsonl",
    "selection_pairs.jsonl",
)
# The line count of each JSON-lines file, as meta.json records it.
_COUNTS = {
    "train_pairs.jsonl": ("train_pairs", "n"),
    "eval_pairs.jsonl": ("eval_pairs", "n"),
    "selection_pairs.jsonl": ("selection_pairs", "n"),
    "eval_prompts.jsonl": ("num_eval_prompts",),
    "selection_prompts.jsonl": ("num_selection_prompts",),
}
# Completions whose gold reward meta.json records, to read the base model's mean against.
REFERENCE_COMPLETIONS = (
    "great . i loved the acting .",  # a good positive completion
    "great and very funny . i loved the acting and the cast was brilliant .",  # near the maximum (1.0)
    "long . i watched it on the weekend .",  # neutral
    "dull . i hated the plot .",  # negative
    "great amazing superb wonderful brilliant",  # positive word salad (what an over-optimised RM may like)
)


@dataclass(frozen=True)
class ToyWorld:
    """A built toy world on disk (see the module docstring for the layout)."""

    root: Path
    meta: dict[str, Any] = field(repr=False, compare=False)
    gold_reward: Callable[[str], float] = field(default=gold_reward, repr=False, compare=False)

    @property
    def model_dir(self) -> Path:
        """Directory of the base model and its tokenizer (``AutoModelForCausalLM.from_pretrained`` it)."""
        return self.root / "model"

    @property
    def train_pairs_path(self) -> Path:
        """JSONL of training preference pairs."""
        return self.root / "train_pairs.jsonl"

    @property
    def eval_pairs_path(self) -> Path:
        """JSONL of held-out preference pairs."""
        return self.root / "eval_pairs.jsonl"

    @property
    def eval_prompts_path(self) -> Path:
        """JSONL of held-out prompts."""
        return self.root / "eval_prompts.jsonl"

    @property
    def selection_prompts_path(self) -> Path:
        """JSONL of held-out selection prompts (checkpoints are chosen on these,
        reported on the eval prompts)."""
        return self.root / "selection_prompts.jsonl"

    @property
    def selection_pairs_path(self) -> Path:
        """JSONL of held-out selection pairs."""
        return self.root / "selection_pairs.jsonl"

    @classmethod
    def load(cls, root: str | Path) -> ToyWorld:
        """The world in ``root`` (which must contain ``meta.json``)."""
        root = Path(root)
        return cls(root=root, meta=json.loads((root / META).read_text()))


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR/toyworld`` if that variable is set, else ``~/.cache/harness/toyworld``."""
    return cache_dir("toyworld")


def build_toy_world(
    spec: ToyWorldSpec | None = None, cache_dir: str | Path | None = None, progress: bool = True
) -> ToyWorld:
    """The toy world of ``spec`` (default: ``ToyWorldSpec()``), from the cache or built now (about a minute).

    A cached world is verified first (sizes and SHA-256 checksums against its manifest); a damaged one is
    reported in one line on stderr (the directory and the bad file) and rebuilt in place. A healthy world
    built before manifests existed is given one.

    :param cache_dir: parent of the per-spec world directories (default: :func:`default_cache_dir`).
    :param progress: show progress bars while building.
    """
    spec = spec or ToyWorldSpec()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = spec.key()
    root = cache / key
    problem = world_problem(root, key)
    if problem is None:
        if not (root / MANIFEST).is_file() and not readonly():
            _adopt(root, cache / f"{key}.lock")
        return ToyWorld.load(root)
    if readonly():  # built for this process only: the shared cache is not written
        if root.exists():
            _warn(root, problem, "building a private copy (the cache is read-only)")
        return _private_world(spec, progress)
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / f"{key}.lock"):
        problem = world_problem(root, key)  # another process may have built or repaired it while we waited
        if problem is not None:
            if root.exists():
                _warn(root, problem, "rebuilding it")
            _rebuild(cache, root, spec, progress)
    return ToyWorld.load(root)


def _warn(root: Path, problem: str, action: str) -> None:
    print(
        f"harness: warning: toy world cache {root} is damaged ({problem}); {action}",
        file=sys.stderr,
        flush=True,
    )


def _private_world(spec: ToyWorldSpec, progress: bool) -> ToyWorld:
    """The world of ``spec`` in this process's private directory (read-only mode), built there once."""
    private = private_dir() / "toyworld"
    root = private / spec.key()
    if world_problem(root, spec.key()) is not None:
        private.mkdir(parents=True, exist_ok=True)
        _rebuild(private, root, spec, progress)
    return ToyWorld.load(root)


def world_problem(root: Path, key: str) -> str | None:
    """What is wrong with the world directory ``root`` (of spec key ``key``), or None when it is complete and
    intact: checked against its manifest, or, for a world built before manifests existed, by
    :func:`_legacy_problem`. The answer names the file (relative to ``root``)."""
    if not root.is_dir():
        return "not built"
    if (root / MANIFEST).is_file():
        return verify_manifest(root)
    return _legacy_problem(root, key)


def _load_file(path: Path) -> int:
    """Read ``path`` as what its suffix says (JSON, JSON lines, safetensors, else bytes); returns its rows
    (JSON lines) or 0. Raises what the reader raises on a damaged file."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (not iterable)
                handle.get_tensor(name)
        return 0
    if path.suffix not in (".json", ".jsonl"):
        path.read_bytes()
        return 0
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        json.loads(text)
        return 0
    lines = text.splitlines()
    for line in lines:
        json.loads(line)
    return len(lines)


def _legacy_problem(root: Path, key: str) -> str | None:
    """What is wrong with a world built before manifests existed, or None: every :data:`REQUIRED` file is
    there, every file loads, ``meta.json`` names ``key`` and the JSON-lines files have the rows it counts."""
    for name in REQUIRED:
        if not (root / name).is_file():
            return f"{name} is missing"
    rows: dict[str, int] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = path.relative_to(root).as_posix()
        try:
            rows[name] = _load_file(path)
        except Exception as exc:  # what a damaged file raises depends on its reader (JSON, safetensors, OS)
            return f"{name} does not load ({type(exc).__name__}: {exc})".splitlines()[0]
    meta = json.loads((root / META).read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("key") != key:
        return f"{META} does not name this world's key {key}"
    for name, where in _COUNTS.items():
        expected: Any = meta
        for part in where:
            expected = expected.get(part) if isinstance(expected, dict) else None
        if rows[name] != expected:
            return f"{name} has {rows[name]} rows, {META} says {expected}"
    return None


def _adopt(root: Path, lock: Path) -> None:
    """Give a healthy world built before manifests existed its manifest (skipped on a read-only cache)."""
    with contextlib.suppress(OSError), file_lock(lock):
        if root.is_dir() and not (root / MANIFEST).is_file():
            write_manifest(root)


def _rebuild(cache: Path, root: Path, spec: ToyWorldSpec, progress: bool) -> None:
    """Build the world into a temporary directory and rename it to ``root``; a damaged ``root`` is first moved
    aside by one rename (then deleted), so it is never half-deleted. Call it holding the world's lock."""
    key = spec.key()
    for leftover in cache.glob(
        f".{key}.*"
    ):  # from a build or a swap that crashed (no builder runs: we hold the lock)
        shutil.rmtree(leftover, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.{writer_tag()}.", suffix=".tmp", dir=cache))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the world is an ordinary cache directory
    old: Path | None = None
    try:
        _build_into(tmp, spec, progress)
        write_manifest(tmp)  # last: a directory with a manifest is a complete world
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{key}.{writer_tag()}.", suffix=".old", dir=cache))
            os.replace(root, old / key)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def _sample_data(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, spec: ToyWorldSpec, progress: bool
) -> dict[str, list[Any]]:
    """The world's prompts and pairs, sampled from the pretrained ``model`` (call it inside a forked RNG)."""
    from harness.toyworld.pairs import draw_prompts, make_pairs, sample_completions

    rng = random.Random(f"prompts-{spec.seed}")
    used: set[str] = set()

    def pairs(n: int, seed: int, desc: str) -> list[dict[str, Any]]:
        """``n`` pairs on prompts not used yet, drawn with the shared ``rng`` (the call order matters)."""
        return make_pairs(model, tokenizer, spec, n, rng, used, seed, progress, desc)

    eval_prompts = draw_prompts(rng, spec.num_eval_prompts, spec, used, distinct=True)
    stats_prompts = [p for p in eval_prompts for _ in range(spec.stats_samples_per_prompt)]
    base = sample_completions(
        model,
        tokenizer,
        stats_prompts,
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        batch_size=spec.sample_batch_size,
        seed=spec.seed + 1,
        progress=progress,
        desc="toy world: base samples",
    )
    eval_pairs = pairs(spec.num_eval_pairs, spec.seed + 2, "toy world: eval pairs")
    train_pairs = pairs(spec.num_train_pairs, spec.seed + 3, "toy world: train pairs")
    # Drawn last with the same generator: everything above is the same whatever the selection sizes are.
    selection_prompts = draw_prompts(rng, spec.num_selection_prompts, spec, used, distinct=True)
    selection_pairs = pairs(spec.num_selection_pairs, spec.seed + 4, "toy world: selection pairs")
    return {
        "eval_prompts": eval_prompts,
        "stats_prompts": stats_prompts,
        "base": base,
        "eval_pairs": eval_pairs,
        "train_pairs": train_pairs,
        "selection_prompts": selection_prompts,
        "selection_pairs": selection_pairs,
    }


def _build_into(directory: Path, spec: ToyWorldSpec, progress: bool) -> None:
    """Build every artefact of the world into ``directory``
    (meta.json last; the caller writes the manifest)."""
    import torch

    from harness.toyworld.pairs import completion_stats, pair_stats
    from harness.toyworld.pretrain import pretrain
    from harness.toyworld.tokenizer import build_tokenizer

    started = time.perf_counter()
    timings: dict[str, float] = {}
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        tokenizer = build_tokenizer()
        model = pretrain(spec, tokenizer, progress=progress)
        timings["pretrain_seconds"] = time.perf_counter() - started
        model.save_pretrained(directory / "model")
        tokenizer.save_pretrained(directory / "model")
        data = _sample_data(model, tokenizer, spec, progress)
        timings["sampling_seconds"] = time.perf_counter() - started - timings["pretrain_seconds"]

    columns = ("prompt", "chosen", "rejected")
    for name in ("train_pairs", "eval_pairs", "selection_pairs"):
        _write_jsonl(directory / f"{name}.jsonl", [{k: r[k] for k in columns} for r in data[name]])
    for name in ("eval_prompts", "selection_prompts"):
        _write_jsonl(directory / f"{name}.jsonl", [{"prompt": p} for p in data[name]])
    stats_prompts, base, every = data["stats_prompts"], data["base"], spec.stats_samples_per_prompt
    meta = {
        "version": VERSION,
        "key": spec.key(),
        "spec": spec.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "build_seconds": time.perf_counter() - started,
        **timings,
        "torch_threads": torch.get_num_threads(),
        # What the build's floating point depends on: the same spec gives other weights (and so other pairs)
        # under another torch version or CPU instruction set (e.g. AVX2 against AVX-512 kernels); thread count
        # does not matter (checked: 1 and 2 threads give identical files).
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "base_model": completion_stats(base),
        "train_pairs": pair_stats(data["train_pairs"]),
        "eval_pairs": pair_stats(data["eval_pairs"]),
        "num_eval_prompts": len(data["eval_prompts"]),
        "num_selection_prompts": len(data["selection_prompts"]),
        "selection_pairs": pair_stats(data["selection_pairs"]),
        "reference_gold_rewards": {text: gold_reward(text) for text in REFERENCE_COMPLETIONS},
        "base_examples": [
            {"prompt": p, "completion": c, "gold_reward": gold_reward(c)}
            for p, c in zip(stats_prompts[::every][:8], base[::every][:8], strict=True)
        ],
    }
    (directory / META).write_text(json.dumps(meta, indent=2) + "\n")
