"""Loading preference data from a file, a directory or the Hub, into what the harness consumes.

This module owns :func:`load_dataset_from` (one split of a local ``.jsonl``/``.json``/``.csv``/``.parquet``
file, a directory saved with ``save_to_disk`` or holding data files, or a Hub dataset id; every failure is a
one-line :class:`~harness.errors.DataError`), :func:`load_preference_data` (load, detect the format,
validate, drop ties, extract implicit prompts, hold out an eval split) and :class:`PreferenceData`. Reading
is done by the ``datasets`` library; ``datasets`` is imported lazily so that importing this package is cheap.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.convert import extract_prompts
from harness.data.formats import DataFormat, detect_format
from harness.data.validate import ValidationReport, validate
from harness.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset

#: File extensions :func:`load_dataset_from` reads, and the ``datasets`` builder for each.
SUPPORTED_EXTENSIONS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_FILE_KINDS = {".jsonl": "JSON Lines", ".json": "JSON", ".csv": "CSV", ".parquet": "Parquet"}
_SUPPORTED = "/".join(SUPPORTED_EXTENSIONS)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True, eq=False)
class PreferenceData:
    """Preference data ready for training and evaluation.

    :param train: training rows; pairwise data always has a ``prompt`` column (implicit prompts extracted).
    :param eval: held-out rows in the same format, or None.
    :param eval_prompts: the held-out prompts (strings or message lists), de-duplicated, in order.
    :param format: the format of ``train``/``eval`` as delivered (``report.format`` is the source's).
    :param report: what validation of the training source found.
    :param selection_prompts: held-out prompts that checkpoints are chosen on, disjoint from ``eval_prompts``,
        when the source provides them (the toy world); None: they are split off ``eval_prompts``
        (:mod:`harness.data.selection`).
    :param selection_pairs: held-out pairs for the selection split, disjoint from ``eval``, when the source
        provides them; None: split off ``eval``.
    """

    train: Dataset
    eval: Dataset | None
    eval_prompts: list[Any]
    format: DataFormat
    report: ValidationReport
    selection_prompts: list[Any] | None = None
    selection_pairs: Dataset | None = None


def _first_line(exc: BaseException) -> str:
    """The first line of the innermost cause of ``exc`` (datasets wraps the useful error)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _unknown_split(exc: ValueError, source: str, split: str) -> DataError | None:
    match = re.search(r"Should be one of (\[.*?\])", str(exc))
    if "Unknown split" not in str(exc):
        return None
    available = match.group(1) if match else "see the dataset card"
    return DataError(f"{source} has no split {split!r} (available: {available}); set data.split / "
                     "data.eval_split to one of them.")


def _from_disk(path: Path, split: str) -> Dataset:
    from datasets import Dataset, load_from_disk

    try:
        data = load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"Could not read the saved dataset in {path}: {_first_line(exc)}; save it again with "
                        "Dataset.save_to_disk.") from exc
    if isinstance(data, Dataset):
        if split not in ("train", str(data.split)):
            raise DataError(f"{path} holds a single saved dataset, not a split {split!r}; use data.split=train, "
                            "or save a DatasetDict with that split.")
        return data
    if split not in data:
        raise DataError(f"{path} has no split {split!r} (available: {list(data)}); set data.split / "
                        "data.eval_split to one of them.")
    return data[split]


def _read(args: tuple[str, ...], source: str, split: str, what: str, fix: str, **kw: Any) -> Dataset:
    import pyarrow as pa
    from datasets import load_dataset
    from datasets.exceptions import DatasetsError

    try:
        return load_dataset(*args, split=split, **kw)
    except ValueError as exc:
        if (err := _unknown_split(exc, source, split)) is not None:
            raise err from exc
        raise DataError(f"Could not read {source} as {what}: {_first_line(exc)}; {fix}.") from exc
    except (DatasetsError, pa.ArrowException, OSError) as exc:
        raise DataError(f"Could not read {source} as {what}: {_first_line(exc)}; {fix}.") from exc


def _from_hub(dataset_id: str, split: str, **kw: Any) -> Dataset:
    import datasets
    from datasets.exceptions import DataFilesNotFoundError, DatasetNotFoundError

    alternative = (f"or pass a local {_SUPPORTED} file or a dataset directory (no local path {dataset_id!r} "
                   "exists either)")
    try:
        return datasets.load_dataset(dataset_id, split=split, **kw)
    except ValueError as exc:
        if (err := _unknown_split(exc, f"Hub dataset {dataset_id!r}", split)) is not None:
            raise err from exc
        raise DataError(f"Could not load Hub dataset {dataset_id!r}: {_first_line(exc)}.") from exc
    except (DatasetNotFoundError, DataFilesNotFoundError) as exc:
        raise DataError(f"Hub dataset {dataset_id!r} was not found ({_first_line(exc)}); check the id, log in "
                        f"with `hf auth login` if it is gated or private, {alternative}.") from exc
    except (ConnectionError, OSError) as exc:
        if datasets.config.HF_HUB_OFFLINE or datasets.config.HF_DATASETS_OFFLINE:
            why = "the Hub is offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)"
        else:
            why = "the Hub could not be reached"
        raise DataError(f"Hub dataset {dataset_id!r} is not cached locally and {why}: download it once with "
                        f"network access (python -c \"import datasets; datasets.load_dataset('{dataset_id}')\"), "
                        f"{alternative}.") from exc


def load_dataset_from(path_or_id: str, split: str = "train", **kw: Any) -> Dataset:
    """One split of preference data from a local file or directory, or a Hub dataset id.

    :param path_or_id: a ``.jsonl``/``.json``/``.csv``/``.parquet`` file, a directory saved with
        ``save_to_disk`` or holding data files (``train.jsonl``, ``test.jsonl``, ...), or a Hub dataset id.
    :param split: the split; a single file only has ``train`` (slices such as ``train[:100]`` work for
        files, data directories and Hub ids).
    :param kw: passed to :func:`datasets.load_dataset` (e.g. ``name``, ``revision``, ``cache_dir``, ``field``).
    :raises DataError: missing file, unsupported extension, unreadable content, unknown split, or a Hub id
        that is neither cached nor reachable.
    """
    path = Path(path_or_id).expanduser()
    if path.is_file():
        builder = SUPPORTED_EXTENSIONS.get(path.suffix.lower())
        if builder is None:
            raise DataError(f"Unsupported data file {str(path)!r} (extension {path.suffix or 'none'!r}): use a "
                            f"{', '.join(SUPPORTED_EXTENSIONS)} file, a dataset directory or a Hub dataset id.")
        kind = _FILE_KINDS[path.suffix.lower()]
        return _read((builder,), str(path), split, kind, f"fix the file so that it is valid {kind}",
                     data_files=str(path), **kw)
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return _from_disk(path, split)
        return _read((str(path),), str(path), split, "a data directory", f"put {_SUPPORTED} files in it (e.g. "
                     "train.jsonl, test.jsonl) or save a dataset there with save_to_disk", **kw)
    looks_local = (path.suffix.lower() in SUPPORTED_EXTENSIONS or path_or_id.startswith((".", "/", "~"))
                   or not _HUB_ID.match(path_or_id))
    if looks_local:
        raise DataError(f"Data path {str(path)!r} not found; check data.path (relative paths are resolved from "
                        f"{Path.cwd()}).")
    return _from_hub(path_or_id, split, **kw)


def _prompt_key(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def unique_prompts(dataset: Dataset) -> list[Any]:
    """The ``prompt`` column's distinct values, in order of first appearance."""
    seen: dict[str, Any] = {}
    for prompt in dataset.with_format(None)["prompt"]:
        seen.setdefault(_prompt_key(prompt), prompt)
    return list(seen.values())


def split_by_prompt(dataset: Dataset, fraction: float, seed: int, source: str = "data") -> tuple[Dataset, Dataset]:
    """``(train, eval)``: a seeded ``fraction`` of the distinct prompts, with all their rows, held out.

    Splitting by prompt keeps held-out prompts out of training (pairs often share prompts).
    """
    keys = [_prompt_key(p) for p in dataset.with_format(None)["prompt"]]
    distinct = list(dict.fromkeys(keys))
    n_eval = max(1, round(fraction * len(distinct)))
    if n_eval >= len(distinct):
        raise DataError(f"{source}: cannot hold out eval_fraction={fraction} of {len(distinct)} distinct prompts "
                        "and keep some for training; lower data.eval_fraction or set data.eval_split.")
    held = set(random.Random(seed).sample(distinct, n_eval))
    eval_rows = [i for i, k in enumerate(keys) if k in held]
    train_rows = [i for i, k in enumerate(keys) if k not in held]
    return dataset.select(train_rows), dataset.select(eval_rows)


def _prepare(path_or_id: str, split: str, source: str, **kw: Any) -> tuple[Dataset, DataFormat, ValidationReport]:
    dataset = load_dataset_from(path_or_id, split=split, **kw)
    if len(dataset) == 0:
        raise DataError(f"{source}: the data has no rows; provide at least one preference record.")
    head = dataset.with_format(None).select(range(min(len(dataset), 100)))
    row = next((r for r in head if all(v is not None for v in r.values())), head[0])
    fmt = detect_format(dataset.column_names, row, source=source)
    dataset, report = validate(dataset, fmt, source)
    return extract_prompts(dataset, fmt, source), fmt, report


def load_preference_data(path_or_id: str, split: str = "train", eval_split: str | None = None,
                         eval_fraction: float = 0.0, seed: int = 0, **load_kw: Any) -> PreferenceData:
    """Load, detect, validate (ties dropped), extract implicit prompts, and hold out evaluation data.

    :param path_or_id: see :func:`load_dataset_from`.
    :param split: the training split.
    :param eval_split: a held-out split of the same source; it wins over ``eval_fraction``.
    :param eval_fraction: when no ``eval_split``: the fraction of distinct prompts held out (seeded by
        ``seed``), with all their rows; 0 holds nothing out.
    :param load_kw: passed to :func:`load_dataset_from`.
    :raises DataError: any problem with the data, in one line.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise DataError(f"eval_fraction={eval_fraction} is invalid; use a fraction in [0, 1).")
    source = f"{path_or_id} [{split}]" if split != "train" else str(path_or_id)
    train, fmt, report = _prepare(path_or_id, split, source, **load_kw)
    delivered = replace(fmt, implicit_prompt=False)
    held_out: Dataset | None = None
    if eval_split:
        held_out, eval_fmt, _ = _prepare(path_or_id, eval_split, f"{path_or_id} [{eval_split}]", **load_kw)
        if (eval_fmt.kind, eval_fmt.style) != (fmt.kind, fmt.style):
            raise DataError(f"{path_or_id}: split {eval_split!r} is {eval_fmt} data but {split!r} is {fmt}; "
                            "use the same format in both splits.")
    elif eval_fraction > 0:
        train, held_out = split_by_prompt(train, eval_fraction, seed, source)
    prompts = unique_prompts(held_out) if held_out is not None else []
    return PreferenceData(train=train, eval=held_out, eval_prompts=prompts, format=delivered, report=report)
