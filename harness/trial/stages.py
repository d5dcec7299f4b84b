"""Stages: a trial of another method that a trial needs first, trained once per settings and shared.

The reward stage of online methods (``method.reward=trained``: ``method=reward`` on the same model and data)
and the SFT stage before a preference method (``model.sft=...``: ``method=sft``) are stages. A :class:`Stage`
is built from the trial's config: the same model, data, toy world and evaluation, the stage's method at its
defaults (the model's profile included) updated by the trial's settings for it, one saved checkpoint and seed
0, so the trials of a sweep, whatever their seeds, share one stage. It is cached under
``$HARNESS_CACHE_DIR/<folder>/<key>`` (the key hashes the model, data, toy world, method settings and seed),
trained there in a process of its own (``python -m harness.trial stage.yaml DIR``) under a file lock, so that
trials started together wait for one training instead of running several, and its record (``trial.json``) sits
beside its checkpoints. In read-only cache mode a stage the shared cache does not hold completed is trained in
this process's private temporary directory instead (:func:`harness.cache.private_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.cache import cache_dir, file_lock, private_dir, readonly
from harness.config import resources
from harness.config.store import method_defaults
from harness.config.validation import validate_method
from harness.errors import ConfigError, TrialFailed, UnknownNameError
from harness.plugin.manager import plugin_manager_for
from harness.records import RECORD_NAME, Checkpoint, RecordError, TrialRecord, write_record
from harness.records import read_record as read_record_file

STAGE_VERSION = (
    1  # part of every stage key: bump it when a stage's training changes in a way its config misses
)
_finished: dict[str, TrialRecord] = {}  # stage directory -> its completed record, once found in this process


def _drop(container: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        container = container.get(part) or {}
    container.pop(leaf, None)


def stage_config(
    cfg: DictConfig, method: str, settings: Mapping[str, Any] | None = None, without: Sequence[str] = ()
) -> DictConfig:
    """The trial config of a ``method`` stage for the trial ``cfg``: the same model, data and evaluation,
    ``method`` at its defaults updated by ``settings``, one saved checkpoint, seed 0; the dotted keys
    ``without`` removed (``model.sft``: a stage's model must not ask for the stage again)."""
    stage = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(stage, dict)
    stage["method"] = OmegaConf.to_container(OmegaConf.merge(method_defaults(method, cfg), settings or {}))
    stage["train"] = {**stage["train"], "num_checkpoints": 1, "checkpoint_every": 0, "save_checkpoints": True}
    stage["seed"] = 0  # one stage per sweep: the trials' seeds do not retrain it
    for dotted in without:
        _drop(stage, dotted)
    return OmegaConf.create(stage)


def stage_key(stage: DictConfig) -> str:
    """The cache key of a stage config: its model, data, toy world, method settings and seed."""
    material = {k: OmegaConf.to_container(stage[k], resolve=True) for k in ("model", "data", "method")}
    material.update(
        seed=int(stage.seed),
        version=STAGE_VERSION,
        toyworld=OmegaConf.to_container(stage.toyworld, resolve=True) if "toyworld" in stage else None,
    )
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Stage:
    """A stage of a trial: a trial of ``method`` that the trial needs first,
    trained once per settings, cached.

    Build it with :meth:`of`; :meth:`check` validates it before any compute (a dry run), :meth:`train` trains
    it unless a completed stage with the same key is cached, and :meth:`final_checkpoint` is its result.

    Attributes:
        method: the stage's method (``reward``, ``sft``, a plugin's).
        config: the stage's own trial config (:func:`stage_config`).
        settings: the trial's settings for it, as given (what :meth:`check` checks against the
            method's knobs).
        where: the config key those settings come from, for messages (``model.sft``, ``method.reward_stage``).
        label: what messages call it (``"SFT stage"``).
        key: :func:`stage_key` of ``config``.
        directory: ``$HARNESS_CACHE_DIR/<folder>/<key>``: the stage's record, config and checkpoints.
    """

    method: str
    config: DictConfig
    settings: dict[str, Any]
    where: str
    label: str
    key: str
    directory: Path

    @classmethod
    def of(
        cls,
        cfg: DictConfig,
        method: str,
        settings: Mapping[str, Any] | None = None,
        *,
        folder: str,
        where: str,
        label: str | None = None,
        without: Sequence[str] = (),
    ) -> Stage:
        """The ``method`` stage of the trial ``cfg``, cached under the harness cache's ``folder``;
        ``settings`` (from the trial's config key ``where``) update the method's defaults; ``without``: see
        :func:`stage_config`."""
        if settings is not None and not isinstance(settings, Mapping):
            raise ConfigError(
                f"{where}={settings!r} is invalid; give a mapping of method={method} settings to change, "
                f"e.g. {where}={{max_steps: 50}} ({{}}: its defaults), or null for no stage."
            )
        plain = (
            OmegaConf.to_container(settings, resolve=True)
            if isinstance(settings, DictConfig)
            else dict(settings or {})
        )
        config = stage_config(cfg, method, plain, without)
        key = stage_key(config)
        return cls(
            method=method,
            config=config,
            settings=plain,
            where=where,
            label=label or f"{method} stage",
            key=key,
            directory=_directory(folder, key),
        )

    @property
    def record_path(self) -> Path:
        """The stage's trial record."""
        return self.directory / "trial.json"

    def check(self) -> None:
        """Validate the stage's settings before any compute (nothing is trained): each key a knob of the
        method, each value valid, its ``trl`` fields known; raises a one-line
        :class:`~harness.errors.ConfigError`."""
        known = set(method_defaults(self.method, self.config)) - {"name"}
        for name in self.settings:
            if name not in known:
                raise UnknownNameError(
                    f"{self.where} option (a method={self.method} setting)",
                    f"{self.where}.{name}",
                    [f"{self.where}.{k}" for k in known],
                )
        try:
            validate_method(self.config, plugin_manager_for(self.config))
        except ConfigError as exc:  # name where the value came from: method.x -> model.sft.x
            raise ConfigError(str(exc).replace("method.", f"{self.where}.")) from None

    def model_path(self, dry_run: bool = False) -> str:
        """Where the stage's own (base) model is, resolved like any trial's; ``dry_run``: build nothing."""
        return resources.resolve_model_path(plugin_manager_for(self.config), self.config, dry_run=dry_run)

    def read_record(self) -> TrialRecord | None:
        """The stage's record as it is on disk (any status), or None (none, or unreadable); trains nothing."""
        if str(self.directory) in _finished:
            return _finished[str(self.directory)]
        with contextlib.suppress(RecordError):
            return read_record_file(self.record_path)
        return None

    def completed_record(self) -> TrialRecord | None:
        """The stage's record if it completed (cached), else None; trains nothing."""
        record = self.read_record()
        return record if record is not None and record.status == "completed" else None

    def train(self) -> TrialRecord:
        """The stage's completed record: the cached one, or one trained now in a subprocess. Trials that need
        the same stage wait for one another (a file lock) and share it.

        :raises TrialFailed: the stage's trial failed (its reason and record named).
        """
        if str(self.directory) in _finished:  # this process already found (or trained) it
            return _finished[str(self.directory)]
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self.directory.parent / f"{self.directory.name}.lock"):
            record = self.completed_record()
            if record is None:
                (self.directory / "stage.yaml").write_text(OmegaConf.to_yaml(self.config))
                print(f"[harness] training the {self.label} ({self.directory})", flush=True)
                env = {
                    k: v for k, v in os.environ.items() if not k.startswith("HARNESS_OPTUNA_")
                }  # not a sweep trial
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "harness.trial",
                        str(self.directory / "stage.yaml"),
                        str(self.directory),
                    ],
                    env=env,
                    check=False,
                )
                record = self.read_record()
            if record is None or record.status != "completed":
                reason = (record.error_message if record is not None else None) or "no record"
                raise TrialFailed(f"the {self.label} failed ({reason}); see {self.record_path}")
        _finished[str(self.directory)] = record
        return record

    def final_checkpoint(self, record: TrialRecord | None = None) -> Checkpoint:
        """The final checkpoint (``path``, ``step``, ``metrics``) of the completed stage (its record, or
        :meth:`train`'s)."""
        record = record if record is not None else self.train()
        return next(c for c in record.checkpoints if c.final)

    def note_in(self, record: TrialRecord, name: str, **extra: Any) -> None:
        """Name this stage in a trial's record, ``record.stages[name]``: its method, key, directory, status,
        final checkpoint and full settings, what it gained over the base model (a policy stage's own
        evaluation: ``base_metrics``, its reference, and ``metrics``, its final checkpoint's, against that
        reference), and ``extra``; then rewrite the trial's record file. For a
        plugin's ``harness_trial_end`` (the runner has written the record by then). The leaderboard compares
        the stages' methods and settings: trials of different stages are different setups."""
        done = self.read_record()
        final = next((c for c in done.checkpoints if c.final), None) if done is not None else None
        completed = done is not None and done.status == "completed"
        if record.stages is None:
            record.stages = {}
        record.stages[name] = {
            "method": self.method,
            "key": self.key,
            "directory": str(self.directory),
            "status": done.status if done is not None else None,
            "checkpoint": final.path if completed and final is not None else None,
            "settings": OmegaConf.to_container(self.config.method, resolve=True),
            **_evaluation(done if completed else None, final),
            **extra,
        }
        path = Path(record.trial_dir or "") / RECORD_NAME
        if record.trial_dir and path.is_file():
            write_record(path, record)


def _directory(folder: str, key: str) -> Path:
    """Where the stage ``key`` lives: the shared cache's ``folder/key``, or in read-only mode, when that holds
    no completed stage, this process's private directory."""
    shared = cache_dir(folder) / key
    if not readonly():
        return shared
    with contextlib.suppress(RecordError):
        if read_record_file(shared / "trial.json").status == "completed":
            return shared
    return private_dir() / folder / key


def _evaluation(done: TrialRecord | None, final: Checkpoint | None) -> dict[str, Any]:
    """A completed stage's own evaluation for :meth:`Stage.note_in`: its reference (the base model) and its
    final checkpoint's metrics, on the trial's prompts and evaluators; {} when the stage evaluated no
    reference (a reward-model stage) or did not complete."""
    reference = done.reference if done is not None else None
    if reference is None or not reference.metrics or final is None or not final.metrics:
        return {}
    return {"base_metrics": dict(reference.metrics), "metrics": dict(final.metrics)}
