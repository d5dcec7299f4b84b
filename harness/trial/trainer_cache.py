"""What the harness's caches of a TRL trainer's work share: the key's parts, and the entries on disk.

Two things a TRL trainer computes while it is built are shared by later trials through the harness cache: its
prepared (tokenized) data (:mod:`harness.trial.prepared_data`) and its reference pass
(:mod:`harness.trial.reference_pass`). Both are ``datasets`` tables, both are keyed on :func:`settings_key`
(every trainer setting except :data:`OPTIMISATION_ONLY`, the tokenizer, the device, the library versions)
beside what is their own, and both are stored by :func:`through_cache`: one lock per key (trials started
together: the first computes, the others wait and read), an Arrow file written atomically, then a sidecar with
its rows and SHA-256, checked on every read (a damaged or partial entry is named in one warning line and
computed again; in read-only mode a miss is computed and not written). Keys name the tokenizer by what it
does, not by its path, so a moved cache or a copied model still hits. While a trainer is built,
:func:`temporary_dataset_files` keeps ``datasets``' own files in a temporary directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cache import (
    directory_fingerprint,
    file_lock,
    file_sha256,
    readonly,
    temporary_name,
    warn_damaged,
)
from harness.cache.atomic import atomic_write_text
from harness.records import library_versions

if TYPE_CHECKING:
    from datasets import Dataset
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase, TrainingArguments

FORMAT = 3  # part of every key and sidecar: bump it when what is cached here changes
#: Trainer settings that change how the policy is optimised but neither the prepared data nor the reference's
#: log-probs of the training rows; every other setting is part of the cache keys.
OPTIMISATION_ONLY = frozenset(
    {
        "output_dir",
        "logging_dir",
        "run_name",
        "seed",
        "data_seed",
        "learning_rate",
        "beta",
        "loss_type",
        "loss_weights",
        "num_train_epochs",
        "max_steps",
        "warmup_ratio",
        "warmup_steps",
        "lr_scheduler_type",
        "lr_scheduler_kwargs",
        "weight_decay",
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "max_grad_norm",
        "optim",
        "optim_args",
        "gradient_accumulation_steps",
        "label_smoothing",
        "rpo_alpha",
        "f_divergence_type",
        "f_alpha_divergence_coef",
        "use_weighting",
        "desirable_weight",
        "undesirable_weight",
        "logging_steps",
        "logging_strategy",
        "logging_first_step",
        "disable_tqdm",
        "report_to",
        "save_strategy",
        "save_steps",
        "save_total_limit",
        "eval_strategy",
        "eval_steps",
        "activation_checkpointing",
        "gradient_checkpointing",
        "gradient_checkpointing_kwargs",
        "push_to_hub",
        "hub_model_id",
        "project",
    }
)


@dataclass
class CacheUse:
    """What happened to one cached step of a trainer (for the training split): ``computed`` now (True), read
    from the cache (False) or not run (None); the seconds it took (the computation, or the key and the read);
    the cache file (None when the step went uncached); the rows it covered (None: not counted)."""

    path: Path | None = None
    computed: bool | None = None
    seconds: float = 0.0
    rows: int | None = None

    def summary(self) -> dict[str, Any] | None:
        """What the trial record keeps (``train.prepared_data``, ``train.reference_logprobs``);
        None if not run."""
        if self.computed is None:
            return None
        return {
            "computed": self.computed,
            "seconds": round(self.seconds, 3),
            "cache": str(self.path) if self.path else None,
            **({"rows": self.rows} if self.rows is not None else {}),
        }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tokenizer_identity(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """What names a tokenizer's behaviour, not where it lies: its class, vocabulary, special tokens, chat
    template and either (a fast tokenizer) its whole pipeline (normaliser, pre-tokeniser, post-processor:
    whether it adds BOS, ...) or (a slow one) the contents of its tokenizer files."""
    template = getattr(tokenizer, "chat_template", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return {
        "class": type(tokenizer).__name__,
        "files": _tokenizer_files(tokenizer) if backend is None else None,
        "vocab": _sha256(json.dumps(sorted(tokenizer.get_vocab().items()), default=str)),
        "special": {
            k: str(v) for k, v in sorted((getattr(tokenizer, "special_tokens_map", None) or {}).items())
        },
        "template": _sha256(str(template)) if template else None,
        "backend": _pipeline(backend) if backend is not None else None,
    }


def _tokenizer_files(tokenizer: PreTrainedTokenizerBase) -> dict[str, list] | None:
    """Sizes and content hashes of a slow tokenizer's files in its local directory (None: not on disk)."""
    directory = Path(str(getattr(tokenizer, "name_or_path", "") or "")).expanduser()
    if not directory.is_dir():
        return None
    return directory_fingerprint(directory, _TOKENIZER_FILES)


_TOKENIZER_FILES = (
    ".model",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
)


def _pipeline(backend: Tokenizer) -> str:
    """SHA-256 of a fast tokenizer's pipeline, without the truncation and padding its last call left set."""
    pipeline = json.loads(backend.to_str())
    pipeline.pop("truncation", None)
    pipeline.pop("padding", None)
    return _sha256(json.dumps(pipeline, sort_keys=True))


def settings_key(args: TrainingArguments, tokenizer: PreTrainedTokenizerBase, device: str) -> dict[str, Any]:
    """The part of a key beside the data (and the weights): the trainer settings but
    :data:`OPTIMISATION_ONLY`, the tokenizer, the device and the library versions."""
    settings = {k: v for k, v in args.to_dict().items() if k not in OPTIMISATION_ONLY}
    return {
        "format": FORMAT,
        "config": type(args).__name__,
        "settings": settings,
        "tokenizer": tokenizer_identity(tokenizer),
        "device": device,
        "versions": library_versions(),
    }


def rows_digest(dataset: Dataset) -> str:
    """SHA-256 of the dataset's rows, in order (their Arrow IPC serialisation,
    without the schema's metadata)."""
    import pyarrow as pa

    table = _table(dataset).combine_chunks().replace_schema_metadata(None)  # no fingerprint
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()


def _table(dataset: Dataset) -> Any:
    """``dataset``'s rows, in order, as one Arrow table (its indices mapping applied)."""
    if dataset._indices is not None:
        dataset = dataset.flatten_indices(keep_in_memory=True)
    return dataset.data.table


@contextlib.contextmanager
def temporary_dataset_files() -> Iterator[None]:
    """Within this block ``datasets`` writes the results of maps to a temporary directory, deleted when the
    process ends, instead of beside the source data under fingerprints that a trainer's config makes unique
    per trial (files never read again). Build a trainer in it."""
    import datasets

    enabled = datasets.is_caching_enabled()
    datasets.disable_caching()
    try:
        yield
    finally:
        if enabled:
            datasets.enable_caching()


def read_entry(path: Path, rows: int | None = None) -> Any:
    """The dataset stored at ``path``, read into memory, if complete and intact (checksum as recorded;
    ``rows`` rows when given, else as many as recorded), else None: an entry that is there but damaged, edited
    or without its sidecar gives one warning naming it. In memory, not memory-mapped: ``datasets`` writes the
    results of later maps beside the first file a dataset is backed by, and none must land in the cache."""
    from datasets import Dataset
    from datasets.table import InMemoryTable

    if not path.exists() and not path.with_suffix(".json").exists():
        return None
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        if meta.get("format") != FORMAT or (rows is not None and meta.get("rows") != rows):
            problem = f"does not describe these {rows} rows" if meta.get("format") == FORMAT else "is stale"
        elif file_sha256(path) != meta.get("sha256"):
            problem = "does not match its SHA-256 sidecar (edited or damaged)"
        else:
            dataset = Dataset(InMemoryTable.from_file(str(path)))
            if dataset.num_rows == meta.get("rows"):
                return dataset
            problem = f"has {dataset.num_rows} rows, its sidecar says {meta.get('rows')}"
    except FileNotFoundError as exc:
        problem = f"is incomplete ({Path(str(exc.filename)).name} is missing)"
    except (OSError, ValueError) as exc:
        problem = f"is unreadable ({type(exc).__name__})"
    warn_damaged("trainer", path, problem)
    return None


def write_entry(path: Path, dataset: Dataset, seconds: float) -> None:
    """Store ``dataset`` at ``path`` atomically, then its sidecar (rows, checksum): the sidecar, written last,
    marks a complete entry."""
    import pyarrow as pa

    table = _table(dataset)
    tmp = path.with_name(temporary_name(path))
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_text(
        path.with_suffix(".json"),
        json.dumps(
            {
                "format": FORMAT,
                "rows": table.num_rows,
                "columns": table.column_names,
                "sha256": file_sha256(path),
                "compute_seconds": round(seconds, 3),
            },
            indent=1,
        )
        + "\n",
    )


def through_cache(
    path: Path,
    compute: Callable[[], Any],
    stored: Callable[[Any], Any] = lambda result: result,
    rows: int | None = None,
) -> tuple[Any, Any, bool]:
    """``(entry, result, computed)`` for the cache entry at ``path``, under its lock: the intact entry read
    into memory (``result`` None, ``computed`` False), or else ``compute()``'s result, whose
    ``stored(result)`` is written to ``path`` and read back as ``entry`` (None if that failed), ``computed``
    True. In read-only mode the result is not written (``entry`` None)."""
    start = time.perf_counter()
    if readonly():
        entry = read_entry(path, rows)
        return (entry, None, False) if entry is not None else (None, compute(), True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock")):
        entry = read_entry(path, rows)
        if entry is not None:
            return entry, None, False
        result = compute()
        write_entry(path, stored(result), time.perf_counter() - start)
        return read_entry(path, rows), result, True


def cache_path(folder: Path, material: Any) -> Path:
    """``folder/<key>.arrow``, the key a hash of ``material`` (JSON, keys sorted)."""
    return folder / f"{_sha256(json.dumps(material, sort_keys=True, default=str))[:20]}.arrow"
