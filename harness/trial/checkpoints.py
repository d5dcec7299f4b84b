"""Checkpoints of a trial: when to take them, saving their weights, and evaluating them.

A method calls :meth:`Checkpointer.step` after every optimizer step (TRL methods do it through
:class:`harness.trial.context.HarnessCallback`). Checkpoints are taken every ``train.checkpoint_every`` steps,
or, when that is 0, at ``train.num_checkpoints`` evenly spaced steps (the last one being the final model) once
the method announces its planned number of steps (:meth:`Checkpointer.plan`). At each one the model is saved
(safetensors, written to a temporary directory then renamed) if ``train.save_checkpoints`` asks for it
(``true``: the checkpoints that are evaluated, i.e. the final model and, with ``eval.checkpoints=all``, every
other one; ``all``: every checkpoint; ``false``: none; :func:`save_policy`) and, if configured, evaluated in
the trial's own process, so that a pruner can stop the trial between checkpoints. An evaluated checkpoint's
entry holds its metrics, the seconds per evaluator (``eval_breakdown_s``), its readable samples (``samples``:
prompt, reference and policy completions with per-sample scores; :mod:`harness.evaluation.readable`) and,
unless selection is off, its evaluation on the selection prompts (``selection``: metrics, seconds;
:mod:`harness.trial.selection`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from harness.config import distributed
from harness.errors import TrialFailed, TrialPruned
from harness.records import Checkpoint

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from harness.evaluation.context import CheckpointEvaluation

# evaluate(model, step) -> its metrics, seconds per evaluator and readable samples
Evaluate = Callable[[torch.nn.Module, int], "CheckpointEvaluation"]


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore torch's RNG state afterwards, so evaluating a checkpoint never changes training."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def save_weights(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase | None, directory: Path) -> Path:
    """Save ``model`` (a LoRA adapter only, for peft models) and ``tokenizer`` atomically to ``directory``:
    into a temporary directory of this process's own (``.step-N.<random>.tmp``), removed if saving fails (e.g.
    a full disk), then renamed."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


#: ``train.save_checkpoints``: which checkpoints' weights are written (see :func:`save_policy`).
SAVE_POLICIES = ("evaluated", "all", "none")


def save_policy(value: Any) -> str:
    """``train.save_checkpoints`` as one of :data:`SAVE_POLICIES`: ``true`` saves the checkpoints that are
    evaluated, ``all`` every checkpoint, ``false`` none. Raises ValueError for anything else (the config
    validation names the setting before any compute: :func:`harness.config.validation.validate_train`)."""
    if isinstance(value, bool):
        return "evaluated" if value else "none"
    if value == "all":
        return "all"
    raise ValueError(
        f"train.save_checkpoints={value!r} is invalid; use true (the evaluated checkpoints), all "
        "(every checkpoint) or false (none)."
    )


@dataclass
class Checkpointer:
    """Saves and evaluates checkpoints; collects one entry per checkpoint for the trial record.

    ``save`` is ``train.save_checkpoints`` (:func:`save_policy`): ``True`` saves the checkpoints that are
    evaluated (the final one, and the others when ``evaluate_intermediate``), ``"all"`` every one, ``False``
    none.
    """

    every: int
    directory: Path
    num_checkpoints: int = 1
    save: bool | str = True
    tokenizer: PreTrainedTokenizerBase | None = None
    evaluate: Evaluate | None = None
    evaluate_intermediate: bool = True
    # Called with (step, metrics, selection metrics or None) once a checkpoint's metrics are stored; may raise
    # TrialPruned to stop training.
    evaluated: Callable[[int, dict[str, float], dict[str, float] | None], None] | None = None
    entries: list[Checkpoint] = field(default_factory=list)
    eval_seconds: float = 0.0
    last_loss: float | None = None
    planned_steps: set[int] = field(default_factory=set)
    total_steps: int | None = None  # the optimizer steps the method announced (plan), None until it does
    evaluated_steps: set[int] = field(default_factory=set)

    def plan(self, total_steps: int) -> None:
        """Announce the number of optimizer steps the method will take; spaces ``num_checkpoints`` over them.

        Only used when ``every`` is 0: the intermediate checkpoints are then at round(k * total / n) for
        k = 1 .. n-1, and the final model is the n-th.
        """
        n = self.num_checkpoints
        self.total_steps = int(total_steps)
        if self.every > 0 or n <= 1 or total_steps <= 1:
            self.planned_steps = set()
            return
        self.planned_steps = {round(k * total_steps / n) for k in range(1, n)} - {0, total_steps}

    def check_loss(self, step: int, loss: float | None) -> None:
        """Fail the trial on a non-finite loss (the record says at which step)."""
        if loss is None:
            return
        self.last_loss = float(loss)
        if not math.isfinite(loss):
            raise TrialFailed(
                f"training loss became {loss} at step {step}; lower the learning rate or check the data"
            )

    def check_weights(self, step: int, model: torch.nn.Module) -> None:
        """Fail the trial when a trainable weight is NaN or infinite (a divergence between two logged losses,
        which would otherwise surface as the sampler's error about invalid probabilities)."""
        with torch.no_grad():
            bad = next(
                (
                    name
                    for name, p in model.named_parameters()
                    if p.requires_grad and not bool(torch.isfinite(p).all())
                ),
                None,
            )
        if bad is not None:
            loss = f"; the last logged loss was {self.last_loss:.4g}" if self.last_loss is not None else ""
            raise TrialFailed(
                f"training diverged: the weights became NaN/inf by step {step} (first: {bad}){loss}; "
                "lower the learning rate or check the data"
            )

    def step(self, step: int, model: torch.nn.Module, loss: float | None = None) -> None:
        """Called after optimizer step ``step``: checks the loss and checkpoints on the interval."""
        self.check_loss(step, loss)
        due = step % self.every == 0 if self.every > 0 else step in self.planned_steps
        if step > 0 and due:
            self.checkpoint(step, model, final=False)

    def saves(self, final: bool) -> bool:
        """Whether a checkpoint (the final model when ``final``) has its weights written."""
        policy = save_policy(self.save)
        return policy == "all" or (policy == "evaluated" and (final or self.evaluate_intermediate))

    def checkpoint(self, step: int, model: torch.nn.Module, final: bool) -> Checkpoint:
        """Save (and evaluate) the model at ``step``; a step already taken is only completed, not redone (an
        intermediate checkpoint that turns out to be the final one is saved then, if it was not)."""
        entry = next((e for e in self.entries if e.step == step), None)
        if entry is None:
            self.check_weights(step, model)
            entry = Checkpoint(step=step, final=final)
            self.entries.append(entry)
        entry.final = entry.final or final
        if entry.path is None and self.saves(entry.final) and distributed.is_main():
            entry.path = str(save_weights(model, self.tokenizer, self.directory / f"step-{step}"))
        if (
            self.evaluate is not None
            and step not in self.evaluated_steps
            and (final or self.evaluate_intermediate)
        ):
            self.evaluated_steps.add(
                step
            )  # in every process of a multi-process trial, so that they stay in step
            on_main_process(lambda: self._evaluate(entry, step, model))
        return entry

    def _evaluate(self, entry: Checkpoint, step: int, model: torch.nn.Module) -> None:
        """Evaluate the checkpoint into ``entry`` and tell ``evaluated`` (which may raise TrialPruned)."""
        assert self.evaluate is not None
        start = time.perf_counter()
        was_training = model.training
        with preserved_rng():
            result = self.evaluate(model, step)
        entry.metrics, entry.eval_breakdown_s, entry.samples = result.metrics, result.seconds, result.samples
        entry.prompt_scores = result.prompt_scores or None
        result.note_problems(entry)  # evaluators that failed, non-finite values (harness.evaluation.failures)
        if result.selection is not None:
            entry.selection = result.selection
        model.train(was_training)
        entry.eval_seconds = time.perf_counter() - start
        self.eval_seconds += entry.eval_seconds
        if self.evaluated is not None:
            self.evaluated(step, entry.metrics, entry.selection_metrics)


def on_main_process(work: Callable[[], None]) -> None:
    """Run ``work`` in the main process of a multi-process trial only (everywhere in a single process); the
    others wait for it and stop the same way when it raises (pruned, or failed with its message)."""
    if not distributed.launched():
        work()
        return
    outcome: tuple[str, str] | None = None
    error: BaseException | None = None
    if distributed.is_main():
        try:
            work()
        except Exception as exc:
            error = exc
            outcome = ("pruned" if isinstance(exc, TrialPruned) else "failed", f"{type(exc).__name__}: {exc}")
    outcome = distributed.broadcast(outcome)
    if error is not None:
        raise error
    if outcome is not None:
        raise (
            TrialPruned(outcome[1])
            if outcome[0] == "pruned"
            else TrialFailed(f"the main process failed: {outcome[1]}")
        )
