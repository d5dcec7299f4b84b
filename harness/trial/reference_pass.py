"""The reference pass of a TRL trainer, computed once per sweep (and reused by later sweeps).

A TRL trainer configured with ``precompute_ref_log_probs=True`` (DPO and IPO here; KTO when a user sets it) runs
the frozen reference over every training row before it trains, about a fifth of a toy-world DPO trial. TRL caches
the result with ``datasets``, under a fingerprint that never matches another trial's: an in-memory dataset gets a
random one, and a file-backed one's depends on the whole trainer config (the learning rate and the output
directory included, through the filter TRL applies after tokenizing), while its files pile up beside the user's
``datasets`` cache, never read again.

:func:`shared_reference_pass` wraps the trainer class thinly (a subclass that overrides only the precompute
method) so that the pass goes through the harness's cache instead, ``$HARNESS_CACHE_DIR/reflogps/<key>.arrow``:
TRL's own code computes it, over its own batches, and the two columns it adds (``ref_chosen_logps``,
``ref_rejected_logps``; KTO's ``reference_logps`` and ``reference_KL_logps``) are stored; a later trial with the
same key reads them exactly as TRL reads its own cache, so losses are bit-identical. The key is everything the
pass depends on: the training rows (their content, in order), TRL's hash of the reference weights, the tokenizer,
every trainer setting except the ones that only shape the optimisation (:data:`OPTIMISATION_ONLY`: an unknown
setting costs a reuse but never gives a wrong one), the device and the library versions. Trials started together
hold one lock per key: the first computes, the others wait and read. While a trainer is built,
:func:`temporary_dataset_files` keeps ``datasets``' own files in a temporary directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import cache_dir, file_lock, file_sha256
from harness.records import atomic_write_text, library_versions

CACHE_FOLDER = "reflogps"
FORMAT = 1  # part of every key: bump it when what is cached here changes
#: Trainer settings that change how the policy is optimised but not the reference's log-probs of the training rows;
#: every other setting is part of the cache key.
OPTIMISATION_ONLY = frozenset({
    "output_dir", "logging_dir", "run_name", "seed", "data_seed", "learning_rate", "beta", "loss_type",
    "loss_weights", "num_train_epochs", "max_steps", "warmup_ratio", "warmup_steps", "lr_scheduler_type",
    "lr_scheduler_kwargs", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "optim",
    "optim_args", "gradient_accumulation_steps", "label_smoothing", "rpo_alpha", "f_divergence_type",
    "f_alpha_divergence_coef", "use_weighting", "desirable_weight", "undesirable_weight", "logging_steps",
    "logging_strategy", "logging_first_step", "disable_tqdm", "report_to", "save_strategy", "save_steps",
    "save_total_limit", "eval_strategy", "eval_steps", "activation_checkpointing", "gradient_checkpointing",
    "gradient_checkpointing_kwargs", "push_to_hub", "hub_model_id", "project"})
_PRECOMPUTE = "_precompute_ref_logps"  # TRL's method (DPOTrainer, KTOTrainer): (dataset, name, batch size) -> dataset


def precomputes_reference(trainer_class: type, args: Any) -> bool:
    """Whether ``trainer_class`` with config ``args`` runs the reference over its data before training, in the way
    :func:`shared_reference_pass` can share (TRL's ``_precompute_ref_logps``)."""
    return bool(getattr(args, "precompute_ref_log_probs", False)) and callable(getattr(trainer_class, _PRECOMPUTE, None))


@dataclass
class ReferencePass:
    """What happened to one trainer's reference pass: ``computed`` now (or read from the cache), the seconds the
    pass took (the computation, or reading it), and the cache file."""

    path: Path | None = None
    computed: bool = False
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """What the trial record keeps (``train.reference_logprobs``)."""
        return {"computed": self.computed, "seconds": round(self.seconds, 3),
                "cache": str(self.path) if self.path else None}


def _tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """What names a tokenizer's behaviour: its path, vocabulary, special tokens and chat template."""
    template = getattr(tokenizer, "chat_template", None)
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), default=str).encode()
    return {"name": getattr(tokenizer, "name_or_path", None), "vocab": hashlib.sha256(vocab).hexdigest(),
            "special": {k: str(v) for k, v in sorted((getattr(tokenizer, "special_tokens_map", None) or {}).items())},
            "template": hashlib.sha256(str(template).encode()).hexdigest() if template else None}


def settings_key(args: Any, tokenizer: Any, device: str) -> dict[str, Any]:
    """The part of the key beside the data and the weights: the trainer settings but :data:`OPTIMISATION_ONLY`, the
    tokenizer, the device and the library versions."""
    settings = {k: v for k, v in args.to_dict().items() if k not in OPTIMISATION_ONLY}
    return {"format": FORMAT, "config": type(args).__name__, "settings": settings,
            "tokenizer": _tokenizer_identity(tokenizer), "device": device, "versions": library_versions()}


def rows_digest(dataset: Any) -> str:
    """SHA-256 of the dataset's rows, in order (their Arrow IPC serialisation, without the schema's metadata)."""
    import pyarrow as pa

    table = _table(dataset).combine_chunks().replace_schema_metadata(None)  # no fingerprint
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()


def _table(dataset: Any) -> Any:
    """``dataset``'s rows, in order, as one Arrow table (its indices mapping applied)."""
    if dataset._indices is not None:
        dataset = dataset.flatten_indices(keep_in_memory=True)
    return dataset.data.table


@contextlib.contextmanager
def temporary_dataset_files() -> Iterator[None]:
    """Within this block ``datasets`` writes the results of maps to a temporary directory, deleted when the process
    ends, instead of beside the source data under fingerprints that a trainer's config makes unique per trial
    (files never read again). Build a trainer in it."""
    import datasets

    enabled = datasets.is_caching_enabled()
    datasets.disable_caching()
    try:
        yield
    finally:
        if enabled:
            datasets.enable_caching()


def _read(path: Path, rows: int) -> Any:
    """The cached columns at ``path``, read into memory, if complete and intact (``rows`` rows, checksum as
    recorded), else None. In memory, not memory-mapped: ``datasets`` writes the results of later maps beside the
    first file a dataset is backed by, and none must land in the cache."""
    from datasets import Dataset
    from datasets.table import InMemoryTable

    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        if meta.get("rows") != rows or file_sha256(path) != meta.get("sha256"):
            return None
        return Dataset(InMemoryTable.from_file(str(path)))
    except (OSError, ValueError):
        return None


def _write(path: Path, columns: Any, seconds: float) -> None:
    """Store ``columns`` (a dataset) at ``path`` atomically, then its sidecar (rows, checksum): the sidecar, written
    last, marks a complete entry."""
    import pyarrow as pa

    table = _table(columns)
    tmp = path.with_name(f".{path.name}.{time.monotonic_ns()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    tmp.replace(path)
    atomic_write_text(path.with_suffix(".json"), json.dumps(
        {"format": FORMAT, "rows": table.num_rows, "columns": table.column_names, "sha256": file_sha256(path),
         "compute_seconds": round(seconds, 3)}, indent=1) + "\n")


def shared_reference_pass(trainer_class: type, args: Any, tokenizer: Any, device: str,
                          outcome: ReferencePass) -> type:
    """A subclass of ``trainer_class`` whose reference pass (TRL's ``_precompute_ref_logps``) is read from the
    harness cache when a pass with the same key was computed before, and computed by TRL and stored there
    otherwise; ``outcome`` records which (for the training split), and the seconds it took."""
    settings = json.dumps(settings_key(args, tokenizer, device), sort_keys=True, default=str)

    def _precompute_ref_logps(self: Any, dataset: Any, name: str, batch_size: int) -> Any:
        from datasets import concatenate_datasets

        start = time.perf_counter()
        weights = getattr(self, "_precompute_model_hash", None)
        if weights is None:  # no hash of the reference weights to key on: TRL's own pass
            return getattr(trainer_class, _PRECOMPUTE)(self, dataset, name, batch_size)
        material = json.dumps({"split": name, "batch_size": batch_size, "weights": weights,
                               "rows": rows_digest(dataset), "settings": settings}, sort_keys=True)
        path = cache_dir(CACHE_FOLDER) / f"{hashlib.sha256(material.encode()).hexdigest()[:20]}.arrow"
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_suffix(".lock")):
            cached = _read(path, len(dataset))
            computed = cached is None
            if computed:
                result = getattr(trainer_class, _PRECOMPUTE)(self, dataset, name, batch_size)
                _write(path, result.select_columns([c for c in result.column_names if c not in dataset.column_names]),
                       time.perf_counter() - start)
                cached = _read(path, len(dataset))
        # Computed or not, the trainer trains on the same in-memory columns (a failed write: TRL's own result).
        result = concatenate_datasets([dataset, cached], axis=1) if cached is not None else result
        if name == "train":
            outcome.path, outcome.computed, outcome.seconds = path, computed, time.perf_counter() - start
        return result

    return type(trainer_class.__name__, (trainer_class,), {_PRECOMPUTE: _precompute_ref_logps,
                                                           "__module__": trainer_class.__module__})
