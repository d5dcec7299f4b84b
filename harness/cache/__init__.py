"""The harness's on-disk caches: where they live, how concurrent trials share an entry, how an entry verifies
itself, and the directory's upkeep.

- :mod:`harness.cache.store`: the cache directory (:func:`cache_dir`), the inter-process lock
  (:func:`file_lock`) and the manifest of a cached directory (:func:`write_manifest`,
  :func:`verify_manifest`).
- :mod:`harness.cache.checked`: JSON entries with their checksum (:func:`write_checked_json`,
  :func:`read_checked_json`) and the one-line warning of a damaged entry (:func:`warn_damaged`).
- :mod:`harness.cache.fingerprint`: content hashes of files, memoized (:func:`content_sha256`), for keys that
  name what a model is rather than where it lies.
- :mod:`harness.cache.housekeeping`: read-only mode (:func:`readonly`), the directory check before compute
  (:func:`check_directory`) and the cleanup of what killed writers left (:func:`clean_stale`).
"""

from harness.cache.checked import digest, read_checked_json, warn_damaged, write_checked_json
from harness.cache.fingerprint import content_sha256, directory_fingerprint
from harness.cache.housekeeping import (
    READONLY_VARIABLE,
    check_directory,
    clean_stale,
    private_dir,
    readonly,
    temporary_name,
    writer_tag,
)
from harness.cache.store import (
    MANIFEST,
    MANIFEST_FORMAT,
    cache_dir,
    file_lock,
    file_sha256,
    verify_manifest,
    write_manifest,
)

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "READONLY_VARIABLE",
    "cache_dir",
    "check_directory",
    "clean_stale",
    "content_sha256",
    "digest",
    "directory_fingerprint",
    "file_lock",
    "file_sha256",
    "private_dir",
    "read_checked_json",
    "readonly",
    "temporary_name",
    "verify_manifest",
    "warn_damaged",
    "write_checked_json",
    "write_manifest",
    "writer_tag",
]
