"""The reference-evaluation cache: what evaluating the reference model yields, computed once per sweep.

The reference model's samples on the held-out prompts, their rewards, its log-probabilities of the held-out
pairs and its step-0 metrics (and per-sample scores) depend only on the model, the tokenizer, the data and the
evaluation settings, never on the method or its hyperparameters. :func:`open_reference_cache` hashes exactly
those inputs into a key; every trial (and every checkpoint of it) with the same key reads the same entry under
``eval.cache_dir`` (default ``$HARNESS_CACHE_DIR/refeval`` or ``~/.cache/harness/refeval``) instead of
recomputing it. Files are written atomically (temporary file, then rename) and read back with safetensors
and JSON, so concurrent trials see a complete entry or none; a trial holds the entry's lock while it
evaluates the reference, so trials started together compute it once. With ``eval.cache=false`` the entry
lives in memory for one trial only.

Every file of an entry carries a SHA-256 of its contents (a JSON file: ``{"sha256", "data"}``, the hash of
``data`` as canonical JSON; a safetensors file: ``sha256`` in its metadata, the hash of its tensors and other
metadata), checked on every read. A file that is unreadable, has no checksum or does not match it (damaged, or
edited to other valid numbers) is reported in one warning naming it, ignored, recomputed and rewritten.

What an evaluator computes must be a function of the hashed inputs for its step-0 metrics to be cached: the
whole ``eval`` config (but the evaluator list and the checkpoint schedule) is part of the key for that reason.
Changing the code of a gold reward or an evaluator without changing the harness version is not detected:
clear the cache directory, or run with ``eval.cache=false``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

from harness.cache import cache_dir, file_lock, readonly
from harness.evaluation.cache_files import (
    atomic_save_tensors,
    checked_json_data,
    digest,
    load_checked_tensors,
    write_json,
)
from harness.evaluation.refcache_key import (
    CACHE_FORMAT,
    key_material,
    model_fingerprint,
    tokenizer_fingerprint,
)
from harness.evaluation.sampling import SampleBatch, Samples

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# The key's material and the entry's files have their own modules (refcache_key, cache_files); what was
# defined here before stays importable from this module.
__all__ = [
    "CACHE_FORMAT",
    "RefCache",
    "default_cache_dir",
    "digest",
    "key_material",
    "model_fingerprint",
    "open_reference_cache",
    "tokenizer_fingerprint",
]

_SAMPLES = "samples.safetensors"
_METRICS = "metrics.json"
_SAMPLE_SCORES = "sample_scores.json"
_KEY = "key.json"
_SAMPLE_FIELDS = ("input_ids", "attention_mask", "completion_mask", "finished")


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR/refeval`` if that variable is set, else ``~/.cache/harness/refeval``."""
    return cache_dir("refeval")


class RefCache:
    """One entry of the reference-evaluation cache (on disk, or in memory when ``directory`` is None).

    Holds the reference samples, named tensors computed from them (rewards, log-probabilities), and the step-0
    metrics and per-sample scores of each evaluator. Reads of samples and tensors are memoised in memory, so
    later checkpoints of a trial do not read the disk again. :meth:`shared` keeps what evaluators derive from
    the held-out data alone (e.g. the encoded pairs) for the object's lifetime (one trial), never on disk.
    """

    def __init__(
        self, key: str, directory: Path | None = None, material: Mapping[str, Any] | None = None
    ) -> None:
        self.key = key
        self.directory = directory
        self._memory: dict[str, Any] = {}
        self._shared: dict[str, Any] = {}
        self._warned: set[Path] = set()
        if directory is not None and material is not None and not (directory / _KEY).is_file():
            self._persist(lambda: write_json(directory / _KEY, material))

    def _persist(self, write: Callable[[], None]) -> bool:
        """Run a disk write; a failing one (read-only or full disk) only costs the reuse, with a warning. In
        read-only mode (:func:`harness.cache.readonly`) nothing is written, and nothing said. Returns whether
        it was written."""
        if readonly():
            return False
        try:
            assert self.directory is not None
            self.directory.mkdir(parents=True, exist_ok=True)
            write()
            return True
        except OSError as exc:
            warnings.warn(
                f"reference cache: cannot write to {self.directory} ({exc}); the reference evaluation "
                "will not be reused by other trials",
                stacklevel=3,
            )
            return False

    def _ignore(self, path: Path, problem: str) -> None:
        """Warn (once per file and cache object) that the entry file ``path`` is ignored and recomputed."""
        if path not in self._warned:
            self._warned.add(path)
            warnings.warn(f"reference cache: ignoring {path}: {problem}; recomputing it", stacklevel=4)

    def _tensors(self, file: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """A safetensors file of the entry, checked; None (with a warning when it is damaged) on a miss."""
        assert self.directory is not None
        loaded = load_checked_tensors(self.directory / file)
        if isinstance(loaded, str):
            self._ignore(self.directory / file, loaded)
            return None
        return loaded

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, run at most once per cache object under ``name`` (in memory only): for quantities of
        the held-out prompts and pairs that every checkpoint of the trial uses."""
        if name not in self._shared:
            self._shared[name] = compute()
        return self._shared[name]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the entry's inter-process lock (a no-op in memory); do not nest it within one process."""
        with contextlib.ExitStack() as stack:
            if self.directory is not None:
                with contextlib.suppress(OSError):  # an unwritable cache: no lock; its writes warn
                    stack.enter_context(file_lock(self.directory.parent / f"{self.key}.lock"))
            yield

    def samples(self) -> Samples | None:
        """The cached reference samples, or None."""
        if "samples" not in self._memory and self.directory is not None:
            loaded = self._tensors(_SAMPLES)
            if loaded is not None:
                tensors, meta = loaded
                self._memory["samples"] = Samples(
                    prompts=json.loads(meta["prompts"]),
                    completions=json.loads(meta["completions"]),
                    batches=[
                        SampleBatch(*(tensors[f"{i}.{f}"] for f in _SAMPLE_FIELDS))
                        for i in range(int(meta["batches"]))
                    ],
                )
        return self._memory.get("samples")

    def store_samples(self, samples: Samples) -> None:
        """Keep ``samples`` (written atomically to the entry)."""
        self._memory["samples"] = samples
        if self.directory is not None:
            tensors = {
                f"{i}.{f}": getattr(b, f) for i, b in enumerate(samples.batches) for f in _SAMPLE_FIELDS
            }
            meta = {
                "prompts": json.dumps(samples.prompts),
                "completions": json.dumps(samples.completions),
                "batches": str(len(samples.batches)),
            }
            path = self.directory / _SAMPLES
            self._persist(lambda: atomic_save_tensors(path, tensors, meta))

    def tensor(self, name: str) -> torch.Tensor | None:
        """The cached tensor ``name``, or None."""
        slot = f"tensor:{name}"
        if slot not in self._memory and self.directory is not None:
            loaded = self._tensors(f"{name}.safetensors")
            if loaded is not None:
                self._memory[slot] = loaded[0]["value"]
        return self._memory.get(slot)

    def store_tensor(self, name: str, value: torch.Tensor) -> None:
        """Keep tensor ``name`` (written atomically to the entry)."""
        self._memory[f"tensor:{name}"] = value
        if self.directory is not None:
            path = self.directory / f"{name}.safetensors"
            self._persist(lambda: atomic_save_tensors(path, {"value": value.detach().cpu()}))

    def _read(self, file: str) -> dict[str, Any]:
        """A JSON file of the entry (by evaluator name), or its in-memory slot; {} when absent, and {} with a
        warning when unreadable, without a checksum or not matching it."""
        if self.directory is None or file in self._memory:  # in memory only, or not written (read-only)
            return dict(self._memory.get(file, {}))
        path = self.directory / file
        try:
            data = checked_json_data(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            data = f"it is unreadable ({exc})".splitlines()[0]
        if isinstance(data, str):
            self._ignore(path, data)
            return {}
        return data

    def _add(self, file: str, evaluator: str, value: Any) -> None:
        """Set ``evaluator``'s item of a JSON file of the entry
        (read-modify-write: call it under :meth:`locked`)."""
        merged = {**self._read(file), evaluator: value}
        if self.directory is None:
            self._memory[file] = merged
        else:
            path = self.directory / file
            if not self._persist(lambda: write_json(path, {"sha256": digest(merged), "data": merged})):
                self._memory[file] = merged

    def metrics(self) -> dict[str, dict[str, float]]:
        """Cached step-0 metrics, by evaluator name (empty when none are cached)."""
        return self._read(_METRICS)

    def store_metrics(self, evaluator: str, metrics: Mapping[str, float]) -> None:
        """Add one evaluator's step-0 metrics to the entry (read-modify-write:
        call it under :meth:`locked`)."""
        self._add(_METRICS, evaluator, {k: float(v) for k, v in metrics.items()})

    def sample_scores(self, evaluator: str) -> dict[str, dict[str, list[float]]]:
        """The per-sample scores ``evaluator`` reported at step 0 (``EvalContext.add_sample_scores``), by
        score name; {} when none are cached (an entry written before they were kept has none)."""
        return dict(self._read(_SAMPLE_SCORES).get(evaluator) or {})

    def store_sample_scores(
        self, evaluator: str, scores: Mapping[str, Mapping[str, Sequence[float]]]
    ) -> None:
        """Add one evaluator's step-0 per-sample scores to the entry (call it under :meth:`locked`)."""
        self._add(
            _SAMPLE_SCORES,
            evaluator,
            {
                name: {side: [float(v) for v in values] for side, values in sides.items()}
                for name, sides in scores.items()
            },
        )


def open_reference_cache(
    cfg: DictConfig,
    *,
    model_path: str,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    pairs: Sequence[Mapping[str, Any]] | None = None,
    gold_reward: Callable[[Sequence[str], Sequence[str]], Sequence[float]] | None = None,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
) -> RefCache:
    """The cache entry for this trial's reference evaluation (``eval.cache``, ``eval.cache_dir``).

    :param model_path: the resolved reference model directory (or Hub id).
    :param prompts: the held-out prompts, as given to the evaluation (strings or message lists).
    :param pairs: the held-out preference pairs used by evaluators (rows as dicts), or None.
    :param gold_reward: the data source's gold reward function, or None.
    :returns: a :class:`RefCache` on disk, or in memory when ``eval.cache`` is false.
    """
    material = key_material(
        cfg,
        model_path=model_path,
        tokenizer=tokenizer,
        prompts=prompts,
        pairs=pairs,
        gold_reward=gold_reward,
        device=device,
        dtype=dtype,
    )
    key = digest(material)[:20]
    if not bool(cfg.eval.get("cache", True)):
        return RefCache(key)
    root = Path(str(cfg.eval.get("cache_dir") or default_cache_dir())).expanduser()
    return RefCache(key, root / key, material)
