"""The typed parts of a trial record: its error, reference evaluation, selection plan, data,
training, memory, host, and how its models render text.

Each is a :class:`~harness.records.base.Part` dataclass whose JSON form is the object today's records hold
under that key (same keys, same values). Fields that are always written (even as ``null``) are those the
runner always sets; the others appear once they are known (a failed trial's ``data`` may lack the length
figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.records.base import Part


@dataclass
class TrialError(Part):
    """Why a trial did not complete (``record.error``; None for a completed one).

    ``type``: the exception's class (``TrialPruned`` and ``TrialInterrupted`` for a pruned or interrupted
    trial, ``ProcessLost`` for one whose process died); ``message``: one line. A pruned or interrupted trial
    has the ``step`` it reached (and the ``signal`` that interrupted it); a failed one its ``traceback``,
    whether the user can fix it (``user_error``) and whether the disk was full (``disk_full``)."""

    type: str | None = None
    message: str | None = None
    step: int | None = None
    signal: str | None = None
    traceback: str | None = None
    user_error: bool | None = None
    disk_full: bool | None = None

    def merged(self, other: TrialError) -> TrialError:
        """This error with ``other``'s known fields laid over it
        (a full disk noted on an interrupted trial)."""
        data = {**self.to_dict(), **other.to_dict()}
        return TrialError.from_dict(data)


@dataclass
class SelectionResult(Part):
    """A model evaluated on the selection prompts (``checkpoint.selection``, ``reference.selection``): its
    metrics, seconds in all and per evaluator, the evaluators that failed, its non-finite metrics and the
    metrics its evaluators withheld with their reasons (``withheld_metrics``; each when there are any); for
    the reference, whether it came from the cache, and the cache key; for a checkpoint, the policy's score on
    every selection prompt by score name (``prompt_scores``, the first sample of each prompt: what a racing
    study's paired tests on the selection prompts compare)."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("metrics",)

    metrics: dict[str, float] = field(default_factory=dict)
    eval_seconds: float | None = None
    eval_breakdown_s: dict[str, float] | None = None
    evaluator_errors: list[dict[str, Any]] | None = None
    nonfinite_metrics: dict[str, str] | None = None
    withheld_metrics: dict[str, str] | None = None
    cached: bool | None = None
    cache_key: str | None = None
    prompt_scores: dict[str, list[float | None]] | None = None


@dataclass
class ReferenceEvaluation(Part):
    """The untrained policy evaluated once, the baseline of every checkpoint (``record.reference``): its
    metrics, seconds per evaluator, readable samples, whether every evaluator's metrics came from the
    reference-evaluation cache, the seconds it took, the cache key and directory, the evaluators that failed
    and its non-finite metrics (when there are any), and its evaluation on the selection prompts."""

    ALWAYS: ClassVar[tuple[str, ...]] = (
        "metrics",
        "eval_breakdown_s",
        "samples",
        "cached",
        "eval_s",
        "cache_key",
        "cache_dir",
    )
    PARTS: ClassVar[dict[str, type[Part]]] = {"selection": SelectionResult}

    metrics: dict[str, float] = field(default_factory=dict)
    eval_breakdown_s: dict[str, float] | None = None
    samples: list[dict[str, Any]] | None = None
    cached: bool | None = None
    eval_s: float | None = None
    cache_key: str | None = None
    cache_dir: str | None = None
    evaluator_errors: list[dict[str, Any]] | None = None
    nonfinite_metrics: dict[str, str] | None = None
    withheld_metrics: dict[str, str] | None = None
    selection: SelectionResult | None = None


@dataclass
class SelectionPlan(Part):
    """What the trial chose checkpoints on (``record.selection``; :mod:`harness.trial.selection`): the number
    of selection prompts (0: selection off), their sampling seed, whether they are disjoint from the reported
    ones, where they came from, the selection pairs, the evaluators excluded, a warning when fewer were
    available than asked for, and the evaluators that ran on them."""

    BASE: ClassVar[tuple[str, ...]] = ("num_prompts", "seed", "disjoint")
    SPLIT: ClassVar[tuple[str, ...]] = ("source", "pairs", "pairs_disjoint", "exclude", "warning")

    num_prompts: int = 0
    seed: int | None = None
    disjoint: bool = False
    source: str | None = None
    pairs: int | None = None
    pairs_disjoint: bool | None = None
    exclude: list[str] | None = None
    warning: str | None = None
    evaluators: list[str] | None = None

    def always(self) -> set[str]:
        """The base fields; with selection prompts (a ``source``),
        the split's too (``warning`` may be null)."""
        return set(self.BASE) | (set(self.SPLIT) if self.source is not None else set())


@dataclass
class DataSummary(Part):
    """The trial's data (``record.data``): what it is (``source``, the data source's name for it, e.g. a path
    and split or the toy world's seed; None in records from before it was kept), training examples (those
    trained on, once fitted to the method's length), held-out prompts, the data format (the source's), rows
    read and ties dropped; what the chat template did (``chat_template``, e.g. ``applied to string prompts
    (auto)``), how the columns were read (``columns``: a recognised schema or ``data.columns``, and the
    renames) and the columns not read; once fitted to the length: the method's maximum length (None: no
    limit), rows truncated, rows dropped for a prompt too long, mean tokens."""

    LOADED: ClassVar[tuple[str, ...]] = (
        "train_examples",
        "eval_prompts",
        "format",
        "rows_in",
        "ties_dropped",
    )
    FITTED: ClassVar[tuple[str, ...]] = ("max_length", "truncated", "dropped_long_prompt", "mean_tokens")

    train_examples: int | None = None
    eval_prompts: int | None = None
    format: str | None = None
    rows_in: int | None = None
    ties_dropped: int | None = None
    max_length: int | None = None
    truncated: int | None = None
    dropped_long_prompt: int | None = None
    mean_tokens: float | None = None
    chat_template: str | None = None
    columns: str | None = None
    columns_not_read: list[str] | None = None
    source: str | None = None

    def always(self) -> set[str]:
        """The loaded figures; once fitted (``truncated`` known), the length figures too."""
        return set(self.LOADED) | (set(self.FITTED) if self.truncated is not None else set())


@dataclass
class TrainSummary(Part):
    """What training did (``record.train``): the policy's parameters, the optimizer steps taken, the last
    logged loss (None if none was logged), the trainer's log history, and how the prepared data and the
    reference log-probabilities were obtained (``{"computed", "seconds", "cache"}``, for methods that use
    them)."""

    parameters: int | None = None
    steps: int | None = None
    final_loss: float | None = None
    log_history: list[dict[str, Any]] | None = None
    prepared_data: dict[str, Any] | None = None
    reference_logprobs: dict[str, Any] | None = None

    def always(self) -> set[str]:
        """Once training ended (a log history), its steps and last loss too (the loss may be null)."""
        return {"steps", "final_loss", "log_history"} if self.log_history is not None else set()


@dataclass
class PeakMemory(Part):
    """Memory while training (``record.peak_memory``, MB): the process's peak resident memory, its resident
    memory before training, the difference, and the peak CUDA memory allocated (None without CUDA)."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("rss_peak_mb", "rss_baseline_mb", "rss_added_mb", "cuda_peak_mb")

    rss_peak_mb: float | None = None
    rss_baseline_mb: float | None = None
    rss_added_mb: float | None = None
    cuda_peak_mb: float | None = None


@dataclass
class Host(Part):
    """Where the trial ran (``record.host``): the machine, the device and precision (None until set up),
    torch's threads, and the processes that trained it (more than 1: one trial trained by several, DDP)."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("hostname", "device", "precision", "torch_threads")

    hostname: str | None = None
    device: str | None = None
    precision: str | None = None
    torch_threads: int | None = None
    processes: int | None = None


@dataclass
class TokenizerRendering(Part):
    """How one model's tokenizer renders text (:func:`harness.evaluation.rendering.describe_tokenizer`): which
    chat ``template`` (the first 12 hex digits of its SHA-256; None: no template), whether the template writes
    BOS itself (``template_adds_bos``) and whether tokenizing a string adds it (``tokenizer_adds_bos``), the
    special token the template ends an assistant turn with (``end_of_turn``; None: none found) and the
    tokenizer's ``eos``, ``bos`` and ``pad`` tokens."""

    template: str | None = None
    template_adds_bos: bool | None = None
    tokenizer_adds_bos: bool | None = None
    end_of_turn: str | None = None
    eos: str | None = None
    bos: str | None = None
    pad: str | None = None


@dataclass
class Rendering(Part):
    """What each model of the trial reads (``record.rendering``): the ``rule`` version
    (:mod:`harness.evaluation.rendering`), the ``policy``'s tokenizer (the reference shares it) and, when one
    is configured (``eval.reward_model.name_or_path``), the ``reward_model``'s, with the ids sampling stops at
    (``stop_ids``: the declared end-of-sequence ids and the template's end-of-turn)."""

    PARTS: ClassVar[dict[str, type[Part]]] = {
        "policy": TokenizerRendering,
        "reward_model": TokenizerRendering,
    }

    rule: int | None = None
    policy: TokenizerRendering | None = None
    reward_model: TokenizerRendering | None = None
    stop_ids: list[int] | None = None
