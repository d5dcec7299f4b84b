"""``ToyWorldSpec``: every knob of the toy world, and the cache key derived from it.

This module owns the specification only. A world is a pure function of its spec and of :data:`VERSION`
(bumped whenever a change to the toy-world code changes what a spec builds), so ``spec.key()`` names the
cache directory. Specs come from Python or from a config mapping (``toyworld.spec`` in the Hydra config)
through :meth:`ToyWorldSpec.from_dict`, which rejects unknown keys and wrong types with one clear line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError, UnknownNameError

#: The world seeds the toy profiles' method defaults were tuned on (``benchmarks/toy_defaults.py``): a
#: comparison on one of them is not on held-out data; the committed comparisons use seeds 3 and up.
TUNING_WORLDS = (0, 1, 2)


#: Version of the toy-world code; part of every cache key.
VERSION = 3  # 3: selection prompts and pairs (drawn after the train pairs; everything else is unchanged)


@dataclass(frozen=True)
class ToyWorldSpec:
    """Everything that determines a toy world (defaults: the built-in world,
    about a minute on 2 CPU cores)."""

    seed: int = 0  # seeds the grammar sampler, the model initialisation, pretraining and all sampling

    # Text: tone mix of pretraining reviews and of the reviews prompts are cut from (relative weights).
    mix_positive: float = 0.25
    mix_negative: float = 0.25
    mix_neutral: float = 0.25
    mix_mixed: float = 0.25
    min_words: int = 8  # review length in tokens (punctuation included)
    max_words: int = 30

    # Model (Llama architecture, word-level tokenizer of ~300 tokens).
    hidden_size: int = 128
    intermediate_size: int = 512
    num_layers: int = 2
    num_heads: int = 4

    # Pretraining (next-token prediction on sampled reviews, AdamW, linear warm-up then cosine decay).
    pretrain_steps: int = 700
    pretrain_batch_size: int = 64
    pretrain_lr: float = 3e-3
    pretrain_warmup_steps: int = 50
    pretrain_weight_decay: float = 0.01

    # Preference data (two base-model samples per prompt, labelled by the gold reward with BT noise).
    num_train_pairs: int = 2000
    num_eval_pairs: int = 256
    num_eval_prompts: int = 128  # held-out prompts for evaluation (disjoint from all pair prompts)
    # Selection (validation) data: the prompts (and pairs) checkpoints are chosen on, disjoint from all the
    # others (drawn last, so that the rest of the world is the same whatever these are).
    num_selection_prompts: int = 64
    num_selection_pairs: int = 128
    max_new_tokens: int = 24
    temperature: float = 1.0  # sampling temperature of the completions (no top-k, no top-p)
    bt_tau: float = 0.1  # label noise: P(a preferred to b) = sigmoid((r_a - r_b) / bt_tau)
    sample_batch_size: int = 256

    # Base-model statistics in meta.json (samples per held-out eval prompt).
    stats_samples_per_prompt: int = 4

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # ToyWorldSpec(pretrain_lr=1) and pretrain_lr=1.0 share one key
            if isinstance(f.default, float) and isinstance(getattr(self, f.name), int):
                object.__setattr__(self, f.name, float(getattr(self, f.name)))
        problems = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "seed" and value < 0:
                problems.append(f"{f.name} must be >= 0 (got {value})")
        positive = (
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "pretrain_batch_size",
            "num_train_pairs",
            "num_eval_prompts",
            "max_new_tokens",
            "temperature",
            "bt_tau",
            "sample_batch_size",
            "pretrain_lr",
            "min_words",
            "stats_samples_per_prompt",
        )
        problems += [
            f"{name} must be > 0 (got {getattr(self, name)})" for name in positive if getattr(self, name) <= 0
        ]
        if self.hidden_size % max(self.num_heads, 1):
            problems.append(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})"
            )
        if sum(self.mix.values()) <= 0:
            problems.append("at least one of mix_positive/negative/neutral/mixed must be > 0")
        if self.max_words < max(self.min_words, 8):
            problems.append(f"max_words must be >= max(min_words, 8) (got {self.max_words})")
        if problems:
            raise ConfigError(f"Invalid toyworld.spec: {'; '.join(problems)}.")

    @property
    def mix(self) -> dict[str, float]:
        """Tone weights keyed by tone name (see :data:`harness.toyworld.reviews.TONES`)."""
        return {
            "positive": self.mix_positive,
            "negative": self.mix_negative,
            "neutral": self.mix_neutral,
            "mixed": self.mix_mixed,
        }

    def describe(self) -> str:
        """The world in one phrase for a report: its seed, whether the toy defaults were tuned on it, and its
        cache key (which names every other knob)."""
        tuned = ""
        if dataclasses.replace(self, seed=0) == ToyWorldSpec():  # the defaults were tuned on default specs
            tuned = (
                f", a world the toy defaults were tuned on (seeds {TUNING_WORLDS[0]}-{TUNING_WORLDS[-1]}): "
                "compare methods on held-out worlds, toyworld.spec.seed=3 and up"
                if self.seed in TUNING_WORLDS
                else ", held out from the toy defaults' tuning"
            )
        return f"toy world seed {self.seed} (spec {self.key()}{tuned})"

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A stable 16-hex-digit hash of the spec and :data:`VERSION` (the cache directory name)."""
        payload = json.dumps({"version": VERSION, **self.to_dict()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> ToyWorldSpec:
        """A spec from a config mapping: defaults for missing keys;
        a ConfigError for unknown keys or types."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in dict(values or {}).items():
            if name not in fields:
                raise UnknownNameError(
                    "toyworld.spec key", str(name), fields, hint="Remove it or fix its name in toyworld.spec."
                )
            kwargs[name] = _coerce(name, value, type(fields[name].default))
        return cls(**kwargs)


def _coerce(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (int or float), accepting ints for floats; a ConfigError otherwise."""
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)  # so that 1 and 1.0 give the same key
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ConfigError(
        f"toyworld.spec.{name} must be {'a number' if kind is float else 'an integer'}, got {value!r}."
    )
