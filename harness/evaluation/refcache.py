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
import hashlib
import json
import os
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from harness.cache import cache_dir, file_lock
from harness.evaluation.sampling import SampleBatch, Samples
from harness.records import atomic_write_text

#: Bumped when what is stored, or how it is computed, changes.
CACHE_FORMAT = (
    3  # 2: completions end at every end-of-sequence id the model declares; 3: files carry checksums
)
#: ``eval`` keys that do not change what evaluating the reference yields. ``selection`` only says which prompts and
#: seed the selection evaluation uses: its own entry is keyed by those prompts and its seed (as ``eval.seed``).
_NOT_IN_KEY = ("evaluators", "extra", "checkpoints", "cache", "cache_dir", "readable_samples", "selection")
_SAMPLES = "samples.safetensors"
_METRICS = "metrics.json"
_SAMPLE_SCORES = "sample_scores.json"
_KEY = "key.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_SAMPLE_FIELDS = ("input_ids", "attention_mask", "completion_mask", "finished")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR/refeval`` if that variable is set, else ``~/.cache/harness/refeval``."""
    return cache_dir("refeval")


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _safetensors_header_sha256(path: Path) -> str | None:
    """Hash of a safetensors file's JSON header (tensor names, shapes, dtypes, offsets, metadata)."""
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            return hashlib.sha256(fh.read(min(size, 100_000_000))).hexdigest()
    except (OSError, struct.error):
        return None


def _local_model_dir(name_or_path: str, revision: str | None = None) -> Path | None:
    """The directory holding a model: the path itself, or the Hub cache snapshot of a Hub id (None if neither)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
    except Exception:  # not a valid repo id
        return None
    return Path(found).parent if isinstance(found, str) else None


def model_fingerprint(name_or_path: str, revision: str | None = None) -> dict[str, Any]:
    """What identifies a model's weights without reading them.

    The resolved directory (a Hub snapshot directory names its commit), the hash of ``config.json`` (or
    ``adapter_config.json``), and per weight file its name, size, modification time and the hash of its
    safetensors header. Returns a JSON-able dict; a model that is not on disk is identified by name only.
    """
    directory = _local_model_dir(name_or_path, revision)
    if directory is None:
        return {"id": name_or_path, "revision": revision}
    configs = {
        p.name: _file_sha256(p)
        for p in (directory / "config.json", directory / "adapter_config.json")
        if p.is_file()
    }
    weights = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name.endswith(_WEIGHT_SUFFIXES):
            stat = path.stat()
            header = _safetensors_header_sha256(path) if path.suffix == ".safetensors" else None
            weights.append([path.name, stat.st_size, stat.st_mtime_ns, header])
    return {"path": str(directory), "configs": configs, "weights": weights}


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of what makes a tokenizer encode text: its vocabulary and rules, special tokens, chat template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    rules = backend.to_str() if backend is not None else digest(sorted(tokenizer.get_vocab().items()))
    return digest(
        [
            rules,
            tokenizer.special_tokens_map,
            getattr(tokenizer, "chat_template", None),
            getattr(tokenizer, "padding_side", None),
            type(tokenizer).__name__,
        ]
    )


def _tensors_sha256(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> str:
    """SHA-256 (hex) of named tensors (name, dtype, shape and bytes of each) and of string ``metadata``."""
    hasher = hashlib.sha256(digest(dict(metadata)).encode())
    for name in sorted(tensors):
        value = tensors[name].detach().cpu().contiguous()
        hasher.update(f"{name}|{value.dtype}|{list(value.shape)}|".encode())
        hasher.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def _atomic_save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    from safetensors.torch import save_file

    metadata = {**(metadata or {}), "sha256": _tensors_sha256(tensors, metadata or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary shared directory
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True, default=str))
    with contextlib.suppress(OSError):
        os.chmod(path, 0o644)


_NO_CHECKSUM = "it has no checksum (written by an earlier harness version, or edited)"
_MISMATCH = "its contents do not match its checksum (edited or damaged)"


def _load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]] | str | None:
    """A safetensors file's tensors and metadata (its checksum checked and removed); None when absent; a
    string saying what is wrong when it is unreadable, has no checksum or does not match it."""
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not iterable)
            metadata = dict(fh.metadata() or {})
    except Exception as exc:  # a damaged entry is a miss, not a failed trial
        return f"it is unreadable ({exc})".splitlines()[0]
    checksum = metadata.pop("sha256", None)
    if checksum is None:
        return _NO_CHECKSUM
    return (tensors, metadata) if checksum == _tensors_sha256(tensors, metadata) else _MISMATCH


def _json_data(stored: Any) -> dict[str, Any] | str:
    """The ``data`` of a checksummed JSON file's contents, or a string saying what is wrong with them."""
    if not isinstance(stored, dict) or not isinstance(stored.get("data"), dict) or "sha256" not in stored:
        return _NO_CHECKSUM
    return stored["data"] if stored["sha256"] == digest(stored["data"]) else _MISMATCH


class RefCache:
    """One entry of the reference-evaluation cache (on disk, or in memory when ``directory`` is None).

    Holds the reference samples, named tensors computed from them (rewards, log-probabilities), and the
    step-0 metrics and per-sample scores of each evaluator. Reads of samples and tensors are memoised in memory,
    so later checkpoints of a trial do not read the disk again. :meth:`shared` keeps what evaluators derive
    from the held-out data alone (e.g. the encoded pairs) for the object's lifetime (one trial), never on disk.
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
            self._persist(lambda: _write_json(directory / _KEY, material))

    def _persist(self, write: Callable[[], None]) -> None:
        """Run a disk write; a failing one (read-only or full disk) only costs the reuse, with a warning."""
        try:
            assert self.directory is not None
            self.directory.mkdir(parents=True, exist_ok=True)
            write()
        except OSError as exc:
            warnings.warn(
                f"reference cache: cannot write to {self.directory} ({exc}); the reference evaluation "
                "will not be reused by other trials",
                stacklevel=3,
            )

    def _ignore(self, path: Path, problem: str) -> None:
        """Warn (once per file and cache object) that the entry file ``path`` is ignored and recomputed."""
        if path not in self._warned:
            self._warned.add(path)
            warnings.warn(f"reference cache: ignoring {path}: {problem}; recomputing it", stacklevel=4)

    def _tensors(self, file: str) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
        """A safetensors file of the entry, checked; None (with a warning when it is damaged) on a miss."""
        assert self.directory is not None
        loaded = _load_tensors(self.directory / file)
        if isinstance(loaded, str):
            self._ignore(self.directory / file, loaded)
            return None
        return loaded

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, run at most once per cache object under ``name`` (in memory only): for quantities of the
        held-out prompts and pairs that every checkpoint of the trial uses."""
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
            self._persist(lambda: _atomic_save_tensors(path, tensors, meta))

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
            self._persist(lambda: _atomic_save_tensors(path, {"value": value.detach().cpu()}))

    def _read(self, file: str) -> dict[str, Any]:
        """A JSON file of the entry (by evaluator name), or its in-memory slot; {} when absent, and {} with a
        warning when unreadable, without a checksum or not matching it."""
        if self.directory is None:
            return dict(self._memory.get(file, {}))
        path = self.directory / file
        try:
            data = _json_data(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            data = f"it is unreadable ({exc})".splitlines()[0]
        if isinstance(data, str):
            self._ignore(path, data)
            return {}
        return data

    def _add(self, file: str, evaluator: str, value: Any) -> None:
        """Set ``evaluator``'s item of a JSON file of the entry (read-modify-write: call it under :meth:`locked`)."""
        merged = {**self._read(file), evaluator: value}
        if self.directory is None:
            self._memory[file] = merged
        else:
            path = self.directory / file
            self._persist(lambda: _write_json(path, {"sha256": digest(merged), "data": merged}))

    def metrics(self) -> dict[str, dict[str, float]]:
        """Cached step-0 metrics, by evaluator name (empty when none are cached)."""
        return self._read(_METRICS)

    def store_metrics(self, evaluator: str, metrics: Mapping[str, float]) -> None:
        """Add one evaluator's step-0 metrics to the entry (read-modify-write: call it under :meth:`locked`)."""
        self._add(_METRICS, evaluator, {k: float(v) for k, v in metrics.items()})

    def sample_scores(self, evaluator: str) -> dict[str, dict[str, list[float]]]:
        """The per-sample scores ``evaluator`` reported at step 0 (``EvalContext.add_sample_scores``), by score
        name; {} when none are cached (an entry written before they were kept has none)."""
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


def key_material(
    cfg: DictConfig,
    *,
    model_path: str,
    tokenizer: Any,
    prompts: Sequence[Any],
    pairs: Sequence[Mapping[str, Any]] | None,
    gold_reward: Any,
    device: str,
    dtype: Any,
) -> dict[str, Any]:
    """Everything the reference evaluation depends on, as a JSON-able dict (hashed into the cache key)."""
    eval_cfg = OmegaConf.to_container(cfg.eval, resolve=True)
    assert isinstance(eval_cfg, dict)
    for key in _NOT_IN_KEY:
        eval_cfg.pop(key, None)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model_cfg, dict)
    for key in ("lora", "name_or_path"):  # the reference is the base model; its fingerprint names it
        model_cfg.pop(key, None)
    rm_path = (eval_cfg.get("reward_model") or {}).get("name_or_path")
    return {
        "format": CACHE_FORMAT,
        "harness": _version("harness"),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "model": {
            **model_fingerprint(model_path, model_cfg.get("revision")),
            "settings": model_cfg,
            "dtype": str(dtype),
            "device": device,
        },
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "prompts": digest(list(prompts)),
        "num_prompts_given": len(prompts),
        "pairs": digest(list(pairs)) if pairs is not None else None,
        "gold_reward": None
        if gold_reward is None
        else f"{cfg.data.get('source')}:{getattr(gold_reward, '__module__', '')}.{getattr(gold_reward, '__qualname__', '')}",
        "reward_model": model_fingerprint(str(rm_path)) if rm_path else None,
        "eval": eval_cfg,
    }


def open_reference_cache(
    cfg: DictConfig,
    *,
    model_path: str,
    tokenizer: Any,
    prompts: Sequence[Any],
    pairs: Sequence[Mapping[str, Any]] | None = None,
    gold_reward: Any = None,
    device: str = "cpu",
    dtype: Any = None,
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
