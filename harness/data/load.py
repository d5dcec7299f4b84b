"""Loading preference data from a file, a directory or the Hub, into what the harness consumes.

This module owns :func:`load_dataset_from` (one split of a local ``.jsonl``/``.json``/``.csv``/``.parquet``
file, a directory saved with ``save_to_disk`` or holding data files, or a Hub dataset id; every failure is a
one-line :class:`~harness.errors.DataError`), :func:`load_preference_data` (load, detect the format, validate,
drop ties, extract implicit prompts, hold out an eval split by prompt) and :class:`PreferenceData`. Reading is
done by the ``datasets`` library, after :mod:`harness.data.files` has refused an empty or non-UTF-8 file;
``datasets`` is imported lazily so that importing this package is cheap. Rows and lines in messages count
from 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.convert import extract_prompts
from harness.data.files import check_data_file, json_keys, json_problem
from harness.data.formats import DataFormat, detect_format
from harness.data.holdout import split_by_prompt, unique_prompts
from harness.data.limits import DataLimits, check_file_limits, check_table_limits
from harness.data.schemas import ColumnMapping, map_columns
from harness.data.validate import NULL, ValidationReport, validate
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
    :param columns: how the source's columns were read (a recognised schema, ``data.columns``, the columns
        left unread); None: the source had TRL's columns and nothing else.
    :param name: what the data is, in one phrase a report can print (a path or Hub id and its split; the toy
        world's seed); None: unnamed.
    """

    train: Dataset
    eval: Dataset | None
    eval_prompts: list[Any]
    format: DataFormat
    report: ValidationReport
    selection_prompts: list[Any] | None = None
    selection_pairs: Dataset | None = None
    columns: ColumnMapping | None = None
    name: str | None = None


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
    return DataError(
        f"{source} has no split {split!r} (available: {available}); set data.split / "
        "data.eval_split to one of them."
    )


def _from_disk(path: Path, split: str) -> Dataset:
    from datasets import Dataset, load_from_disk

    try:
        data = load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"Could not read the saved dataset in {path}: {_first_line(exc)}; save it again with "
            "Dataset.save_to_disk."
        ) from exc
    if isinstance(data, Dataset):
        if split not in ("train", str(data.split)):
            raise DataError(
                f"{path} holds a single saved dataset, not a split {split!r}; use data.split=train, "
                "or save a DatasetDict with that split."
            )
        return data
    if split not in data:
        raise DataError(
            f"{path} has no split {split!r} (available: {list(data)}); set data.split / "
            "data.eval_split to one of them."
        )
    return data[split]


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """``datasets`` logs a failed read before raising it; the DataError says it, in one line."""
    from datasets.utils import logging as datasets_logging

    level = datasets_logging.get_verbosity()
    datasets_logging.set_verbosity(datasets_logging.CRITICAL)
    try:
        yield
    finally:
        datasets_logging.set_verbosity(level)


def _reason(exc: BaseException, path: Path | None) -> str:
    """Why reading failed: for a JSON file, where Python's parser finds it breaks (line and column from 1);
    else the library's first line, without pyarrow's "in row N" (counted from 0, within a block of the file)
    and with lines counted from 1."""
    if path is not None and path.suffix.lower() in (".json", ".jsonl"):
        try:
            located = json_problem(path, lines=path.suffix.lower() == ".jsonl")
        except (OSError, ValueError):
            located = None
        if located:
            return located
    text = re.sub(r" in row \d+", "", _first_line(exc))
    # pandas counts a CSV file's lines from 1 ("in line 4")
    # but an unclosed quote's from 0 ("starting at row 3")
    return re.sub(r"starting at row (\d+)", lambda m: f"starting at line {int(m.group(1)) + 1}", text)


def _read(
    args: tuple[str, ...], source: str, split: str, what: str, fix: str, path: Path | None = None, **kw: Any
) -> Dataset:
    import pyarrow as pa
    from datasets import load_dataset
    from datasets.exceptions import DatasetsError

    try:
        with _quiet_datasets():
            return load_dataset(*args, split=split, **kw)
    except StopIteration as exc:  # datasets' JSON reader on a file with nothing in it
        raise DataError(f"{source} holds no records; write the preference data into it.") from exc
    except ValueError as exc:
        if (err := _unknown_split(exc, source, split)) is not None:
            raise err from exc
        if "corresponds to no data" in str(exc):
            raise DataError(
                f"{source} holds no records (e.g. an empty JSON array, or a CSV header alone); write "
                "the preference data into it."
            ) from exc
        raise DataError(f"Could not read {source} as {what}: {_reason(exc, path)}; {fix}.") from exc
    except (DatasetsError, pa.ArrowException, OSError) as exc:
        raise DataError(f"Could not read {source} as {what}: {_reason(exc, path)}; {fix}.") from exc


def _from_hub(dataset_id: str, split: str, **kw: Any) -> Dataset:
    import datasets
    from datasets.exceptions import DataFilesNotFoundError, DatasetNotFoundError

    alternative = (
        f"or pass a local {_SUPPORTED} file or a dataset directory (no local path {dataset_id!r} "
        "exists either)"
    )
    try:
        return datasets.load_dataset(dataset_id, split=split, **kw)
    except ValueError as exc:
        if (err := _unknown_split(exc, f"Hub dataset {dataset_id!r}", split)) is not None:
            raise err from exc
        raise DataError(f"Could not load Hub dataset {dataset_id!r}: {_first_line(exc)}.") from exc
    except (DatasetNotFoundError, DataFilesNotFoundError) as exc:
        raise DataError(
            f"Hub dataset {dataset_id!r} was not found ({_first_line(exc)}); check the id, log in "
            f"with `hf auth login` if it is gated or private, {alternative}."
        ) from exc
    except (ConnectionError, OSError) as exc:
        if datasets.config.HF_HUB_OFFLINE or datasets.config.HF_DATASETS_OFFLINE:
            why = "the Hub is offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)"
        else:
            why = "the Hub could not be reached"
        raise DataError(
            f"Hub dataset {dataset_id!r} is not cached locally and {why}: download it once with "
            f"network access (python -c \"import datasets; datasets.load_dataset('{dataset_id}')\"), "
            f"{alternative}."
        ) from exc


def load_dataset_from(
    path_or_id: str, split: str = "train", limits: DataLimits | Mapping[str, Any] | None = None, **kw: Any
) -> Dataset:
    """One split of preference data from a local file or directory, or a Hub dataset id, within ``limits``.

    :param path_or_id: a ``.jsonl``/``.json``/``.csv``/``.parquet`` file, a directory saved with
        ``save_to_disk`` or holding data files (``train.jsonl``, ``test.jsonl``, ...), or a Hub dataset id.
    :param split: the split; a single file only has ``train`` (slices such as ``train[:100]`` work for
        files, data directories and Hub ids).
    :param limits: rows, bytes and nesting allowed (:class:`~harness.data.limits.DataLimits`, or a mapping of
        its settings; None: the defaults): text files are checked while read, before ``datasets`` parses
        them, every split once loaded.
    :param kw: passed to :func:`datasets.load_dataset` (e.g. ``name``, ``revision``,
        ``cache_dir``, ``field``).
    :raises DataError: missing file, unsupported extension, unreadable content, a limit exceeded, unknown
        split, or a Hub id that is neither cached nor reachable.
    """
    bounds = limits if isinstance(limits, DataLimits) else DataLimits.from_settings(limits)
    dataset = _load_split(path_or_id, split, bounds, **kw)
    check_table_limits(dataset, bounds, path_or_id if split == "train" else f"{path_or_id} [{split}]")
    return dataset


def _load_split(path_or_id: str, split: str, limits: DataLimits, **kw: Any) -> Dataset:
    path = Path(path_or_id).expanduser()
    if path.is_file():
        builder = SUPPORTED_EXTENSIONS.get(path.suffix.lower())
        if builder is None:
            raise DataError(
                f"Unsupported data file {str(path)!r} (extension {path.suffix or 'none'!r}): use a "
                f"{', '.join(SUPPORTED_EXTENSIONS)} file, a dataset directory or a Hub dataset id."
            )
        check_data_file(path, kw.get("encoding"))
        check_file_limits(path, limits)
        kind = _FILE_KINDS[path.suffix.lower()]
        return _read(
            (builder,),
            str(path),
            split,
            kind,
            f"fix the file so that it is valid {kind}",
            path,
            data_files=str(path),
            **kw,
        )
    if path.is_dir():
        if _is_saved(path):
            return _from_disk(path, split)
        for file in _data_files(path):
            check_data_file(file, kw.get("encoding"))
            check_file_limits(file, limits)
        return _read(
            (str(path),),
            str(path),
            split,
            "a data directory",
            f"put {_SUPPORTED} files in it (e.g. "
            "train.jsonl, test.jsonl) or save a dataset there with save_to_disk",
            **kw,
        )
    looks_local = (
        path.suffix.lower() in SUPPORTED_EXTENSIONS
        or path_or_id.startswith((".", "/", "~"))
        or not _HUB_ID.match(path_or_id)
    )
    if looks_local:
        raise DataError(
            f"Data path {str(path)!r} not found; check data.path (relative paths are resolved from "
            f"{Path.cwd()})."
        )
    return _from_hub(path_or_id, split, **kw)


def _is_saved(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _data_files(directory: Path) -> list[Path]:
    """The files of a data directory (not hidden) in a format :func:`load_dataset_from` reads."""
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix.lower() in SUPPORTED_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def _describe_nulls(
    path_or_id: str, split: str, rows: int, memo: dict[str, Any], column: str, found: list[int]
) -> dict[str, list[int]]:
    """What the None values of ``column`` in rows ``found`` are: a missing key or a ``null`` in a JSON file
    (both load as None), an empty cell in a CSV file, else a null (Parquet, a saved dataset, the Hub).
    ``memo`` keeps the JSON file's keys between columns."""
    path = Path(path_or_id).expanduser()
    files = [path] if path.is_file() else _data_files(path) if path.is_dir() and not _is_saved(path) else []
    suffixes = {f.suffix.lower() for f in files}
    if suffixes and suffixes <= {".csv"}:
        return {"is an empty cell": found}
    if not suffixes & {".json", ".jsonl"}:
        return {NULL: found}
    if path.is_file() and split == "train":  # else which record of which file a row is, is not known
        if "keys" not in memo:
            memo["keys"] = json_keys(path, rows)
        known = memo["keys"]
        if known is not None:
            return {
                NULL: [r for r in found if column in known[r - 1]],
                "is missing": [r for r in found if column not in known[r - 1]],
            }
    return {"is null or missing": found}


def _prepare(
    path_or_id: str,
    split: str,
    source: str,
    columns: dict[str, str | None] | None,
    announce: bool = True,
    **kw: Any,
) -> tuple[Dataset, DataFormat, ValidationReport, ColumnMapping]:
    dataset = load_dataset_from(path_or_id, split=split, **kw)
    if len(dataset) == 0:
        raise DataError(f"{source}: the data has no rows; provide at least one preference record.")
    dataset, mapping = map_columns(dataset, columns, source, announce=announce)
    head = dataset.with_format(None).select(range(min(len(dataset), 100)))
    row = next((r for r in head if all(v is not None for v in r.values())), head[0])
    named = f"{source} ({mapping.describe()})" if mapping.renamed else source  # errors name the new columns
    fmt = detect_format(dataset.column_names, row, source=named)
    explain = partial(_describe_nulls, path_or_id, split, len(dataset), {})
    dataset, report = validate(dataset, fmt, named, explain_nulls=None if mapping.renamed else explain)
    return extract_prompts(dataset, fmt, named, rows=report.source_rows()), fmt, report, mapping


def load_preference_data(
    path_or_id: str,
    split: str = "train",
    eval_split: str | None = None,
    eval_fraction: float = 0.0,
    seed: int = 0,
    columns: dict[str, str | None] | None = None,
    **load_kw: Any,
) -> PreferenceData:
    """Load, read the columns (:func:`~harness.data.schemas.map_columns`: ``columns``, a recognised schema),
    detect, validate (ties dropped), extract implicit prompts, and hold out evaluation data.

    :param path_or_id: see :func:`load_dataset_from`.
    :param split: the training split.
    :param eval_split: a held-out split of the same source; it wins over ``eval_fraction``.
    :param eval_fraction: when no ``eval_split``: the fraction of distinct prompts held out (seeded by
        ``seed``), with all their rows; 0 holds nothing out.
    :param columns: ``data.columns``: ``{source column: target}`` (targets:
        :data:`~harness.data.schemas.TARGETS`; null: not read).
    :param load_kw: passed to :func:`load_dataset_from` (e.g. ``limits``).
    :raises DataError: any problem with the data, in one line.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise DataError(f"eval_fraction={eval_fraction} is invalid; use a fraction in [0, 1).")
    source = f"{path_or_id} [{split}]" if split != "train" else str(path_or_id)
    train, fmt, report, mapping = _prepare(path_or_id, split, source, columns, **load_kw)
    delivered = replace(fmt, implicit_prompt=False)
    held_out: Dataset | None = None
    if eval_split:
        eval_source = f"{path_or_id} [{eval_split}]"
        held_out, eval_fmt, _, _ = _prepare(path_or_id, eval_split, eval_source, columns, False, **load_kw)
        if (eval_fmt.kind, eval_fmt.style) != (fmt.kind, fmt.style):
            raise DataError(
                f"{path_or_id}: split {eval_split!r} is {eval_fmt} data but {split!r} is {fmt}; "
                "use the same format in both splits."
            )
    elif eval_fraction > 0:
        train, held_out = split_by_prompt(train, eval_fraction, seed, source)
    prompts = unique_prompts(held_out) if held_out is not None else []
    held = f"; held out: split {eval_split}" if eval_split else ""
    return PreferenceData(
        train=train,
        eval=held_out,
        eval_prompts=prompts,
        format=delivered,
        report=report,
        columns=mapping,
        name=f"{path_or_id} (split {split}{held})",
    )
