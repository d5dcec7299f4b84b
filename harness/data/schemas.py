"""The columns users bring, read as TRL's: recognised schemas, ``data.columns``, the columns left out.

This module owns :func:`map_columns` (a loaded table renamed to TRL's columns before its format is detected),
:func:`check_column_mapping` (the shape of ``data.columns``, checked with the config) and
:class:`ColumnMapping` (what was read from where, for the record). In order:

1. ``data.columns`` (``{source column: target}``, targets :data:`TARGETS`; a null target: not read) renames
   the user's columns, after checking that each source column exists (one line naming the columns there are);
2. when there is still no ``prompt`` column, a recognised schema (:data:`SCHEMAS`) names the prompt
   explicitly: orca ``system``/``question``/``chosen``/``rejected``, argilla's ``system``/``input``/
   ``chosen``/``rejected`` and ``instruction``/``chosen_response``/``rejected_response``, and
   ``instruction``/``input`` (joined by a blank line) with ``chosen``/``rejected`` (pairwise) or with
   ``output``/``label`` (unpaired); so answers that all start alike ("Sure! ...") never become the prompt;
3. every column left that the harness does not read is named once, in one :class:`DataWarning` line (the
   columns stay in the data).

A ``system`` column is kept for :mod:`harness.data.chat_data`, which makes it the prompt's system turn.
Raw UltraFeedback (``instruction``/``completions``) and instruction/output rows without a preference are
refused in one line saying what to use instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.data.validate import DataWarning
from harness.errors import ConfigError, DataError

if TYPE_CHECKING:
    from datasets import Dataset

#: The columns the harness reads: TRL's, and ``system`` (the prompt's system turn).
TARGETS = ("prompt", "chosen", "rejected", "completion", "label", "system")
_JOINED = ("instruction", "input")


@dataclass(frozen=True)
class Schema:
    """A common dataset schema: the columns that identify it (with no ``prompt`` column), how they are renamed
    to :data:`TARGETS`, and whether the prompt is ``instruction`` and ``input`` joined."""

    name: str
    needs: tuple[str, ...]
    rename: tuple[tuple[str, str], ...] = ()
    join: bool = False

    def matches(self, names: set[str]) -> bool:
        """Whether a table with these column names has this schema's columns (and no ``prompt``)."""
        return "prompt" not in names and set(self.needs) <= names


#: The recognised schemas, tried in order (the first that matches is used).
SCHEMAS = (
    Schema(
        "argilla UltraFeedback (instruction/chosen_response/rejected_response)",
        ("instruction", "chosen_response", "rejected_response"),
        (("instruction", "prompt"), ("chosen_response", "chosen"), ("rejected_response", "rejected")),
    ),
    Schema("instruction/input with chosen/rejected", ("instruction", "chosen", "rejected"), join=True),
    Schema(
        "instruction/input/output with label (unpaired)",
        ("instruction", "output", "label"),
        (("output", "completion"),),
        join=True,
    ),
    Schema(
        "orca (system/question/chosen/rejected)",
        ("question", "chosen", "rejected"),
        (("question", "prompt"),),
    ),
    Schema(
        "argilla orca (system/input/chosen/rejected)", ("input", "chosen", "rejected"), (("input", "prompt"),)
    ),
)


@dataclass(frozen=True)
class ColumnMapping:
    """How a source's columns were read: the schema recognised (or ``"data.columns"``), each source column's
    target (``"instruction+input"`` for a joined prompt), and the columns not read."""

    schema: str | None = None
    renamed: dict[str, str] = field(default_factory=dict)
    unused: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line, e.g. ``orca (system/question/chosen/rejected): question -> prompt``."""
        moves = ", ".join(f"{s} -> {t}" for s, t in self.renamed.items())
        return f"{self.schema}: {moves}" if self.schema and moves else (self.schema or moves)


def check_column_mapping(columns: Any) -> dict[str, str | None]:
    """``data.columns`` as a plain dict, when it is a mapping of column names to :data:`TARGETS` (or null: not
    read) with no target named twice.

    :raises ConfigError: one line naming the bad entry and the fix."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise ConfigError(
            f"data.columns={columns!r} is invalid; give a mapping of your columns to the harness's, e.g. "
            "data.columns={question: prompt, response_j: chosen, response_k: rejected}."
        )
    mapping = {str(k): (None if v is None else str(v)) for k, v in columns.items()}
    bad = next(((k, v) for k, v in mapping.items() if v is not None and v not in TARGETS), None)
    if bad is not None:
        raise ConfigError(
            f"data.columns maps {bad[0]!r} to {bad[1]!r}, which the harness does not read; map each column "
            f"to one of {', '.join(TARGETS)} (or null: not read)."
        )
    targets = [v for v in mapping.values() if v is not None]
    twice = next((t for t in targets if targets.count(t) > 1), None)
    if twice is not None:
        raise ConfigError(
            f"data.columns maps {[k for k, v in mapping.items() if v == twice]} all to {twice!r}; map one "
            "column to each of the harness's columns."
        )
    return mapping


def _user_mapping(dataset: Dataset, mapping: dict[str, str | None], source: str) -> Dataset:
    names = dataset.column_names
    missing = next((s for s in mapping if s not in names), None)
    if missing is not None:
        raise DataError(
            f"{source}: data.columns maps {missing!r}, which the data does not have (its columns: "
            f"{', '.join(names)}); map columns the data has."
        )
    clash = next((t for s, t in mapping.items() if t in names and t not in mapping), None)
    if clash is not None:
        raise DataError(
            f"{source}: data.columns maps a column to {clash!r} but the data has a {clash!r} column already; "
            f"leave it out with data.columns={{{clash}: null, ...}}, or map another column."
        )
    dataset = dataset.remove_columns([s for s, t in mapping.items() if t is None])
    return dataset.rename_columns({s: t for s, t in mapping.items() if t is not None and s != t})


def _join_instruction(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``prompt``: the instruction, then the input after a blank line when there is one."""
    inputs = batch.get("input") or [None] * len(batch["instruction"])
    return {
        "prompt": [
            f"{i}\n\n{x}" if isinstance(i, str) and isinstance(x, str) and x.strip() else i
            for i, x in zip(batch["instruction"], inputs, strict=True)
        ]
    }


def _apply_schema(dataset: Dataset, schema: Schema) -> tuple[Dataset, dict[str, str]]:
    renamed: dict[str, str] = {}
    if schema.join:
        joined = [c for c in _JOINED if c in dataset.column_names]
        dataset = dataset.map(
            _join_instruction,
            batched=True,
            remove_columns=joined,
            load_from_cache_file=False,
            desc="Joining instruction and input",
        )
        renamed["+".join(joined)] = "prompt"
    moves = {s: t for s, t in schema.rename if s in dataset.column_names}
    renamed.update(moves)
    return dataset.rename_columns(moves), renamed


def _refuse_unpreferred(names: set[str], source: str) -> None:
    """One line for schemas without a preference to learn: raw UltraFeedback, instruction/output rows."""
    if "prompt" in names or {"chosen", "rejected"} <= names:
        return
    if {"instruction", "completions"} <= names:
        raise DataError(
            f"{source}: this is raw UltraFeedback (instruction/completions with ratings), which holds no "
            "chosen/rejected pair; use a binarized version (HuggingFaceH4/ultrafeedback_binarized, "
            "argilla/ultrafeedback-binarized-preferences) or map its columns with data.columns."
        )
    if {"instruction", "output"} <= names and "label" not in names:
        raise DataError(
            f"{source}: instruction/output rows hold one answer each and no preference; add chosen/rejected "
            "columns (pairwise) or a boolean label column (unpaired, e.g. for method=kto)."
        )


def map_columns(
    dataset: Dataset,
    mapping: Mapping[str, str | None] | None = None,
    source: str = "data",
    *,
    announce: bool = True,
) -> tuple[Dataset, ColumnMapping]:
    """``dataset`` with TRL's column names (and ``system``): ``mapping`` (``data.columns``) applied, then a
    recognised schema when there is no ``prompt`` column; the columns not read are kept, and named in one
    :class:`DataWarning` line when ``announce`` (a second split of the same source has the same columns).

    :raises DataError: ``mapping`` names a column the data lacks, or maps onto one it has; raw UltraFeedback
        or instruction/output rows without a preference.
    """
    mapping = check_column_mapping(mapping)
    renamed: dict[str, str] = {}
    schema_name: str | None = None
    if mapping:
        dataset = _user_mapping(dataset, mapping, source)
        renamed = {s: t for s, t in mapping.items() if t is not None and s != t}
        schema_name = "data.columns"
    names = set(dataset.column_names)
    _refuse_unpreferred(names, source)
    schema = next((s for s in SCHEMAS if s.matches(names)), None)
    if schema is not None:
        dataset, moves = _apply_schema(dataset, schema)
        renamed.update(moves)
        schema_name = schema.name
    unused = tuple(c for c in dataset.column_names if c not in TARGETS)
    if unused and announce:
        read = [c for c in dataset.column_names if c in TARGETS]
        warnings.warn(
            f"{source}: columns not read: {', '.join(unused)} (the harness reads {', '.join(read)}); to use "
            f"one, name its role with data.columns={{<column>: {'|'.join(TARGETS)}}}.",
            DataWarning,
            stacklevel=2,
        )
    return dataset, ColumnMapping(schema=schema_name, renamed=renamed, unused=unused)
