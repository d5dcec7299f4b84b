"""Preference data: load, detect the format, validate, convert.

Public API:

* :func:`load_preference_data` -> :class:`PreferenceData` (what the rest of the harness consumes);
* :func:`map_columns` -> :class:`ColumnMapping` (recognised schemas and ``data.columns``, before the format
  is detected);
* :func:`choose_rendering` -> :class:`ChatRendering` and :func:`apply_rendering` (``data.chat_template``:
  string data through the model's chat template, a ``system`` column as the system turn);
* :func:`load_dataset_from` (one split of a file, a directory or a Hub dataset id);
* :func:`detect_format` -> :class:`DataFormat`; :func:`validate` -> (dataset, :class:`ValidationReport`);
* :func:`extract_prompts` (:func:`split_prompt`: HH-RLHF transcripts at their last ``Assistant:`` turn),
  :func:`to_unpaired`, :func:`to_prompts`, :func:`build_preference_dataset`;
* :func:`data_for_method` (a method's kind of rows, with exactly its trainer's columns),
  :func:`render_prompts` (message lists through the chat template), :func:`fit_to_length` ->
  :class:`LengthReport` (rows too long for a method's ``max_length``: truncated, or dropped when the prompt
  alone fills it).

Importing this package is cheap: ``datasets`` and ``trl`` are imported when first needed.
"""

from harness.data.chat import render_prompts
from harness.data.chat_data import CHAT_TEMPLATE_MODES, ChatRendering, apply_rendering, choose_rendering
from harness.data.convert import (
    build_preference_dataset,
    extract_prompts,
    is_hh_transcript,
    split_common_prefix,
    split_prompt,
    to_prompts,
    to_unpaired,
)
from harness.data.formats import ACCEPTED_FORMATS, DataFormat, detect_format
from harness.data.length import LengthReport, count_lengths, fit_to_length
from harness.data.load import (
    SUPPORTED_EXTENSIONS,
    PreferenceData,
    load_dataset_from,
    load_preference_data,
    split_by_prompt,
    unique_prompts,
)
from harness.data.methods import METHOD_COLUMNS, data_for_method
from harness.data.schemas import ColumnMapping, map_columns
from harness.data.validate import ALLOWED_ROLES, DataWarning, ValidationReport, validate

__all__ = [
    "ACCEPTED_FORMATS",
    "ALLOWED_ROLES",
    "CHAT_TEMPLATE_MODES",
    "ChatRendering",
    "ColumnMapping",
    "SUPPORTED_EXTENSIONS",
    "DataFormat",
    "DataWarning",
    "LengthReport",
    "METHOD_COLUMNS",
    "PreferenceData",
    "ValidationReport",
    "apply_rendering",
    "build_preference_dataset",
    "choose_rendering",
    "count_lengths",
    "data_for_method",
    "detect_format",
    "extract_prompts",
    "fit_to_length",
    "is_hh_transcript",
    "load_dataset_from",
    "load_preference_data",
    "map_columns",
    "render_prompts",
    "split_by_prompt",
    "split_common_prefix",
    "split_prompt",
    "to_prompts",
    "to_unpaired",
    "unique_prompts",
    "validate",
]
