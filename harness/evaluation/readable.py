"""Readable samples: a few completions of each checkpoint kept as text,
so a person can read what a method produces.

After the evaluators of a checkpoint have run, :func:`readable_samples` takes the first
``eval.readable_samples`` held-out prompts and, for each, the reference model's and the policy's completion
(the first sample of the prompt, from the evaluation's own shared sampling pass: same seed, so the reference
texts are the same at every checkpoint of every trial with the same settings) with the per-sample scores
evaluators reported through :meth:`harness.evaluation.context.EvalContext.add_sample_scores`. Texts longer
than :data:`MAX_CHARS` are cut with a marker saying how much was left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plugin API's protocol, which the evaluation context satisfies (no import circle)
    from harness.plugin.contexts import EvalContext

#: Longest text kept per prompt or completion; the rest is replaced by :func:`clip`'s marker.
MAX_CHARS = 2000


def clip(text: Any, limit: int = MAX_CHARS) -> str:
    """``text`` as valid Unicode (unpaired surrogates replaced), cut to ``limit`` characters plus a marker
    ``… [N more characters]`` when longer."""
    text = str(text).encode("utf-8", "replace").decode("utf-8")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def _content(content: Any) -> str:
    """A message's content as text: a string as it is, a list of parts (multimodal messages) by their text."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content)
    return "" if content is None else str(content)


def prompt_text(prompt: Any) -> str:
    """The prompt as a person reads it: a string as it is; a one-message list by its content; a longer message
    list as ``role: content`` paragraphs (the chat-template rendering the model reads is not shown)."""
    if not isinstance(prompt, list):
        return str(prompt)
    messages = [m for m in prompt if isinstance(m, Mapping)]
    if len(messages) == 1:
        return _content(messages[0].get("content"))
    return "\n\n".join(f"{m.get('role', '?')}: {_content(m.get('content'))}" for m in messages)


def _value(values: Sequence[float], index: int) -> float | None:
    value = float(values[index])
    return value if math.isfinite(value) else None  # NaN (no score) as null: records stay strict JSON


def _scores(
    sample_scores: Mapping[str, Mapping[str, Sequence[float]]], index: int, is_reference: bool
) -> dict[str, dict[str, float | None]]:
    """Each score's values for sample ``index``; at step 0 only scores with a reference side,
    as ``reference``."""
    out: dict[str, dict[str, float | None]] = {}
    for name, sides in sample_scores.items():
        if is_reference:
            if "reference" in sides:
                out[name] = {"reference": _value(sides["reference"], index)}
        else:
            out[name] = {side: _value(values, index) for side, values in sides.items()}
    return out


def readable_samples(ctx: EvalContext, count: int) -> list[dict[str, Any]]:
    """The readable samples of ``ctx``'s checkpoint: one dict per prompt among the first
    ``count`` held-out ones.

    Each holds ``prompt`` (:func:`prompt_text`), ``reference`` (the reference model's completion), ``policy``
    (the policy's; absent at step 0, where the policy is the reference) and ``scores``
    (``{name: {"policy": x, "reference": y}}`` from :attr:`EvalContext.sample_scores`; null where a sample has
    no score). With several samples per prompt, the first of each prompt is kept. Reads ``ctx.policy_samples``
    and ``ctx.reference_samples``, so it samples only when no evaluator did. Returns [] when ``count`` is 0.
    """
    count = min(int(count), len(ctx.source_prompts))
    if count <= 0:
        return []
    per_prompt = int(ctx.eval_cfg.get("samples_per_prompt", 1))
    reference = ctx.reference_samples.completions
    policy = None if ctx.is_reference else ctx.policy_samples.completions
    rows = []
    for i in range(count):
        j = i * per_prompt  # samples are laid out prompt by prompt
        row: dict[str, Any] = {
            "prompt": clip(prompt_text(ctx.source_prompts[i])),
            "reference": clip(reference[j]),
        }
        if policy is not None:
            row["policy"] = clip(policy[j])
        row["scores"] = _scores(ctx.sample_scores, j, ctx.is_reference)
        rows.append(row)
    return rows


def prompt_scores(ctx: EvalContext) -> dict[str, list[float | None]]:
    """The policy's per-sample scores of ``ctx``'s checkpoint on **every** held-out prompt (the first sample
    of each prompt, rounded to 6 decimals; None where a sample has no score), by score name
    (:attr:`EvalContext.sample_scores`): what the leaderboard's paired tests compare prompt by prompt."""
    if not ctx.sample_scores:
        return {}
    per_prompt = int(ctx.eval_cfg.get("samples_per_prompt", 1))
    out: dict[str, list[float | None]] = {}
    for name, sides in ctx.sample_scores.items():
        values = sides.get("policy") or []
        out[name] = [round(float(v), 6) if math.isfinite(float(v)) else None for v in values[::per_prompt]]
    return out
