"""A TRL trainer's prepared (tokenized) data, computed once per key and reused by later trials and sweeps.

Every TRL trainer tokenizes its training data while it is built (``_prepare_dataset``: the prompt extracted,
EOS added, prompt and completions tokenized, over-long rows dropped): about 0.7 s of a toy-world DPO trainer's
1 s build, minutes on UltraFeedback-sized data, in every trial. TRL's ``datasets`` cache never hits again (an
in-memory dataset gets a random fingerprint, and the harness keeps ``datasets``' files temporary,
:func:`~harness.trial.trainer_cache.temporary_dataset_files`).

:func:`shared_preparation` wraps the trainer class thinly (a subclass that overrides only
``_prepare_dataset``) so that the prepared data goes through the harness's cache,
``$HARNESS_CACHE_DIR/prepared/<key>.arrow``: TRL's own method computes it and the whole prepared dataset is
stored; a later trial with the same key reads it, and trains on the same rows, so its losses are
bit-identical. The key: the input rows (their content, in order, their features and format), the split's name,
the trainer class, the :func:`~harness.trial.trainer_cache.settings_key` (every trainer setting except the
ones that only shape the optimisation, the tokenizer with its chat template and pipeline, taken when the
method runs, after the trainer set its pad or EOS token or template, the device, the library versions),
:data:`FORMAT`, and what else of the trainer TRL's method reads (:data:`PREPARERS`, read against TRL 1.16):

- ``DPOTrainer`` (DPO, IPO): the tokenizer's EOS token (``self._tokenizer``: the tokenizer itself, keyed).
- ``KTOTrainer``: that too, and ``calculate_KL`` (from the loss type; the KL completions are rotated within
  batches of ``per_device_train_batch_size``, a keyed setting). Its warning about desirable/undesirable
  weights is not repeated when the data is read.
- ``SFTTrainer``: the training chat template it chose (``chat_template``), ``completion_only_loss`` (from the
  config and the training data's first row), ``packing`` (an argument), and the seed when ``shuffle_dataset``
  shuffles; a ``formatting_func`` (code, no key) goes uncached.
- ``RewardTrainer``: nothing beside its arguments (the model's config is not read).

Only a ``datasets.Dataset`` without a format or transform, tokenized by a tokenizer (not a multimodal
processor), by one of these methods as TRL defines it (a subclass that overrides it is not cached) goes
through the cache; anything else goes straight to TRL. ORPO and CPO (``trl.experimental``) tokenize inline in
``__init__``, not in a method, and stay uncached. A reference pass on top
(:mod:`harness.trial.reference_pass`) keys on the prepared data's key instead of digesting the tokenized rows
again (:func:`prepared_key`).
"""

from __future__ import annotations

import hashlib
import inspect
import time
from typing import TYPE_CHECKING, Any

from harness.cache import cache_dir
from harness.trial.trainer_cache import CacheUse, cache_path, rows_digest, settings_key, through_cache

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import Trainer

CACHE_FOLDER = "prepared"
FORMAT = 1  # part of every key: bump it when what is stored here changes
_PREPARE = "_prepare_dataset"
#: TRL's ``_prepare_dataset`` methods that are cached (module and qualified name of the function), each with
#: the attributes of the trainer it reads beside its arguments and the tokenizer (all part of the key).
PREPARERS: dict[str, tuple[str, ...]] = {
    "trl.trainer.dpo_trainer.DPOTrainer._prepare_dataset": (),
    "trl.trainer.kto_trainer.KTOTrainer._prepare_dataset": ("calculate_KL",),
    "trl.trainer.sft_trainer.SFTTrainer._prepare_dataset": ("chat_template", "completion_only_loss"),
    "trl.trainer.reward_trainer.RewardTrainer._prepare_dataset": (),
}
#: The method's parameters the key covers: the arguments of DPO, KTO and reward (SFT's add the last two).
_PARAMETERS = ("self", "dataset", "processing_class", "args", "dataset_name", "packing", "formatting_func")
_PREPARED_KEYS = "_harness_prepared_keys"  # on the trainer: split -> (prepared dataset, its key)


def _method_name(trainer_class: type) -> str:
    method = getattr(trainer_class, _PREPARE, None)
    return f"{getattr(method, '__module__', '')}.{getattr(method, '__qualname__', '')}"


def prepares_data(trainer_class: type) -> bool:
    """Whether ``trainer_class`` prepares its data with one of TRL's methods in :data:`PREPARERS`, with the
    parameters the key covers."""
    if _method_name(trainer_class) not in PREPARERS:
        return False
    return set(inspect.signature(getattr(trainer_class, _PREPARE)).parameters) <= set(_PARAMETERS)


def prepared_key(trainer: Trainer, dataset: Dataset, name: str) -> str | None:
    """The cache key of ``dataset`` if it is the split ``name`` that ``trainer``'s shared preparation
    returned, else None: the prepared data's content follows from it."""
    entry = getattr(trainer, _PREPARED_KEYS, {}).get(name)
    return entry[1] if entry is not None and entry[0] is dataset else None


def _cacheable(trainer: Trainer, call: dict[str, Any]) -> bool:
    """Whether this call's input and tokenizer are ones the key names fully."""
    from datasets import Dataset

    dataset, tokenizer = call["dataset"], call["processing_class"]
    return (
        isinstance(dataset, Dataset)
        and dataset.format["type"] is None
        and call.get("formatting_func") is None
        and callable(getattr(tokenizer, "get_vocab", None))
        and getattr(trainer, "_tokenizer", tokenizer) is tokenizer
    )


def _state(trainer: Trainer, attributes: tuple[str, ...], call: dict[str, Any]) -> dict[str, Any]:
    """What of the trainer and the call, beside the dataset, tokenizer and settings, the method reads."""
    args = call["args"]
    state = {name: getattr(trainer, name, None) for name in attributes}
    if isinstance(state.get("chat_template"), str):
        state["chat_template"] = hashlib.sha256(state["chat_template"].encode()).hexdigest()
    state["packing"] = call.get("packing")
    state["shuffle_seed"] = (
        args.seed if getattr(args, "shuffle_dataset", False) else None
    )  # SFT shuffles with it
    return state


def _material(trainer_class: type, trainer: Trainer, call: dict[str, Any], device: str) -> dict[str, Any]:
    """What the key hashes: everything the prepared data depends on."""
    dataset = call["dataset"]
    return {
        "format": FORMAT,
        "trainer": f"{trainer_class.__module__}.{trainer_class.__qualname__}",
        "split": call["dataset_name"],
        "rows": rows_digest(dataset),
        "features": dataset.features.to_dict(),
        "data_format": dataset.format,
        "state": _state(trainer, PREPARERS[_method_name(trainer_class)], call),
        "settings": settings_key(call["args"], call["processing_class"], device),
    }


def shared_preparation(trainer_class: type, device: str, outcome: CacheUse) -> type:
    """A subclass of ``trainer_class`` (see :func:`prepares_data`) whose prepared data (TRL's
    ``_prepare_dataset``) is read from the harness cache when data with the same key was prepared before, and
    prepared by TRL and stored there otherwise; ``outcome`` records which (for the training split) and the
    seconds it took."""
    trl_method = getattr(trainer_class, _PREPARE)
    signature = inspect.signature(trl_method)

    def _prepare_dataset(self: Any, *arguments: Any, **keywords: Any) -> Any:
        start = time.perf_counter()
        bound = signature.bind(self, *arguments, **keywords)
        bound.apply_defaults()
        call = bound.arguments
        if not _cacheable(self, call):
            result, path, computed = trl_method(self, *arguments, **keywords), None, True
        else:
            path = cache_path(cache_dir(CACHE_FOLDER), _material(trainer_class, self, call, device))
            entry, result, computed = through_cache(path, lambda: trl_method(self, *arguments, **keywords))
            # Computed or read, the trainer trains on the same in-memory rows
            # (a failed write: TRL's own result).
            result = entry if entry is not None else result
            if entry is not None:
                self.__dict__.setdefault(_PREPARED_KEYS, {})[call["dataset_name"]] = (result, path.stem)
        if call["dataset_name"] == "train":
            outcome.path, outcome.computed, outcome.seconds = path, computed, time.perf_counter() - start
        return result

    return type(
        trainer_class.__name__,
        (trainer_class,),
        {_PREPARE: _prepare_dataset, "__module__": trainer_class.__module__},
    )
