"""The reference pass of a TRL trainer, computed once per sweep (and reused by later sweeps).

A TRL trainer configured with ``precompute_ref_log_probs=True`` (DPO and IPO here; KTO when a user sets it)
runs the frozen reference over every training row before it trains, about a fifth of a toy-world DPO trial.
TRL caches the result with ``datasets``, under a fingerprint that never matches another trial's: an in-memory
dataset gets a random one, and a file-backed one's depends on the whole trainer config (the learning rate and
the output directory included, through the filter TRL applies after tokenizing), while its files pile up
beside the user's ``datasets`` cache, never read again.

:func:`shared_reference_pass` wraps the trainer class thinly (a subclass that overrides only the precompute
method) so that the pass goes through the harness's cache instead,
``$HARNESS_CACHE_DIR/reflogps/<key>.arrow``: TRL's own code computes it, over its own batches, and the two
columns it adds (``ref_chosen_logps``, ``ref_rejected_logps``; KTO's ``reference_logps`` and
``reference_KL_logps``) are stored; a later trial with the same key reads them exactly as TRL reads its own
cache, so losses are bit-identical. The key is everything the pass depends on: the training rows (their
content, in order; or, when the harness prepared them, :mod:`harness.trial.prepared_data`, the prepared data's
key, which determines them), TRL's hash of the reference weights, the split and batch size, and
:func:`~harness.trial.trainer_cache.settings_key`: the tokenizer, every trainer setting except the ones that
only shape the optimisation (:data:`~harness.trial.trainer_cache.OPTIMISATION_ONLY`: an unknown setting costs
a reuse but never gives a wrong one), the device and the library versions. Trials started together hold one
lock per key: the first computes, the others wait and read
(:func:`~harness.trial.trainer_cache.through_cache`).

:func:`rows_read` bounds the pass to the rows training will read: with ``max_steps`` set, a trainer reads
``max_steps x per-device batch x gradient accumulation x processes`` rows, and when that is fewer than the
training rows, :func:`bounded_rows` keeps that many rows drawn with the trial's seed before the trainer is
built (its sampler then reads each of them once), so ``method.max_steps=1`` runs the reference over one batch,
not the whole data. Epochs never bound it: a whole number of epochs reads every row, and a fraction of one
sets its step count from the data's length, which a smaller table would change.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from harness.cache import cache_dir
from harness.trial.prepared_data import prepared_key
from harness.trial.trainer_cache import CacheUse, cache_path, rows_digest, settings_key, through_cache

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase, TrainingArguments

CACHE_FOLDER = "reflogps"
_PRECOMPUTE = (
    "_precompute_ref_logps"  # TRL's method (DPOTrainer, KTOTrainer): (dataset, name, batch size) -> dataset
)


def rows_read(args: TrainingArguments, rows: int) -> int:
    """How many of ``rows`` training rows a trainer with config ``args`` reads: all of them, or, with
    ``max_steps`` set and fewer rows in ``max_steps`` optimizer steps, ``max_steps x per-device batch x
    gradient accumulation x processes``."""
    steps = int(getattr(args, "max_steps", -1) or -1)
    if steps <= 0:
        return rows
    per_step = (
        int(args.per_device_train_batch_size)
        * int(args.gradient_accumulation_steps)
        * max(1, int(getattr(args, "world_size", 1) or 1))
    )
    return min(rows, steps * per_step)


def bounded_rows(dataset: Dataset, args: TrainingArguments, seed: int) -> Dataset:
    """``dataset`` itself when training reads all of it (:func:`rows_read`); else the rows it reads: that many
    drawn without replacement with ``seed``, in their order in ``dataset`` (the trainer's sampler shuffles
    them), held in memory (no index file beside the data)."""
    keep = rows_read(args, len(dataset))
    if keep >= len(dataset):
        return dataset
    import numpy as np

    chosen = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:keep])
    return dataset.select(chosen.tolist(), keep_in_memory=True)


def precomputes_reference(trainer_class: type, args: TrainingArguments) -> bool:
    """Whether ``trainer_class`` with config ``args`` runs the reference over its data before training, in the
    way :func:`shared_reference_pass` can share (TRL's ``_precompute_ref_logps``)."""
    return bool(getattr(args, "precompute_ref_log_probs", False)) and callable(
        getattr(trainer_class, _PRECOMPUTE, None)
    )


def shared_reference_pass(
    trainer_class: type,
    args: TrainingArguments,
    tokenizer: PreTrainedTokenizerBase,
    device: str,
    outcome: CacheUse,
) -> type:
    """A subclass of ``trainer_class`` whose reference pass (TRL's ``_precompute_ref_logps``) is read from the
    harness cache when a pass with the same key was computed before, and computed by TRL and stored there
    otherwise; ``outcome`` records which (for the training split), and the seconds it took."""
    settings = json.dumps(settings_key(args, tokenizer, device), sort_keys=True, default=str)
    trl_method = getattr(trainer_class, _PRECOMPUTE)

    def _precompute_ref_logps(self: Any, dataset: Dataset, name: str, batch_size: int) -> Any:
        from datasets import concatenate_datasets

        start = time.perf_counter()
        weights = getattr(self, "_precompute_model_hash", None)
        if weights is None:  # no hash of the reference weights to key on: TRL's own pass
            result, path, computed = trl_method(self, dataset, name, batch_size), None, True
        else:
            prepared = prepared_key(self, dataset, name)
            rows = f"prepared:{prepared}" if prepared else rows_digest(dataset)
            path = cache_path(
                cache_dir(CACHE_FOLDER),
                {
                    "split": name,
                    "batch_size": batch_size,
                    "weights": weights,
                    "rows": rows,
                    "settings": settings,
                },
            )
            entry, result, computed = through_cache(
                path,
                lambda: trl_method(self, dataset, name, batch_size),
                rows=len(dataset),
                stored=lambda result: result.select_columns(
                    [c for c in result.column_names if c not in dataset.column_names]
                ),
            )
            # Computed or not, the trainer trains on the same in-memory columns
            # (a failed write: TRL's own result).
            result = concatenate_datasets([dataset, entry], axis=1) if entry is not None else result
        if name == "train":
            outcome.path, outcome.computed, outcome.seconds = path, computed, time.perf_counter() - start
            outcome.rows = len(dataset)
        return result

    return type(
        trainer_class.__name__,
        (trainer_class,),
        {_PRECOMPUTE: _precompute_ref_logps, "__module__": trainer_class.__module__},
    )
