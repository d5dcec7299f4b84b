"""Preference data: load, detect the format, validate, convert.

Public API:

* :func:`load_preference_data` -> :class:`PreferenceData` (what the rest of the harness consumes);
* :func:`load_dataset_from` (one split of a file, a directory or a Hub dataset id);
* :func:`detect_format` -> :class:`DataFormat`; :func:`validate` -> (dataset, :class:`ValidationReport`);
* :func:`extract_prompts`, :func:`to_unpaired`, :func:`to_prompts`, :func:`build_preference_dataset`.

Importing this package is cheap: ``datasets`` and ``trl`` are imported when first needed.
"""

from harness.data.convert import (
    build_preference_dataset,
    extract_prompts,
    split_common_prefix,
    to_prompts,
    to_unpaired,
)
from harness.data.formats import ACCEPTED_FORMATS, DataFormat, detect_format
from harness.data.load import (
    SUPPORTED_EXTENSIONS,
    PreferenceData,
    load_dataset_from,
    load_preference_data,
    split_by_prompt,
    unique_prompts,
)
from harness.data.validate import ALLOWED_ROLES, DataWarning, ValidationReport, validate

__all__ = [
    "ACCEPTED_FORMATS",
    "ALLOWED_ROLES",
    "SUPPORTED_EXTENSIONS",
    "DataFormat",
    "DataWarning",
    "PreferenceData",
    "ValidationReport",
    "build_preference_dataset",
    "detect_format",
    "extract_prompts",
    "load_dataset_from",
    "load_preference_data",
    "split_by_prompt",
    "split_common_prefix",
    "to_prompts",
    "to_unpaired",
    "unique_prompts",
    "validate",
]
