"""The rendering rule: every text a model reads is rendered with that model's own tokenizer and chat template,
its special tokens exactly once, its template's end-of-turn.

This module owns the rule for the models the harness scores with (reward models, a method's trained reward
model) and the introspection of a tokenizer's rendering that the trial record keeps
(:func:`describe_tokenizer`) and that sampling stops by (:func:`end_of_turn_id`).

A reward model scores a (source prompt, completion) pair, the prompt as the data gave it (a string or a
message list, never the policy's rendering of it), rendered by :func:`reward_input` as TRL's RewardTrainer
renders its training examples:

- a message-list prompt and a tokenizer with a chat template: ``apply_chat_template(prompt + [assistant
  completion], tokenize=True)`` (the template writes every special token, end-of-turn included; nothing is
  appended), as TRL tokenizes conversational examples;
- a string prompt (plain-text data): ``tokenizer(prompt + completion + eos)`` with the tokenizer's own special
  tokens, as TRL appends EOS and tokenizes standard examples;
- a message-list prompt and a tokenizer without a chat template: plain text, the message contents and the
  completion joined by blank lines (:func:`plain_text`), then EOS, tokenized as a string.

Never two BOS: when the text already starts with BOS and the tokenizer adds one too, one is dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from harness.records.parts import Rendering, TokenizerRendering

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Version of the rule (part of the reference cache's key when a reward model is configured).
RULE_VERSION = 1

_PROBE = "harness-probe-7c1f"  # an assistant message's content, found again in the rendered text
_PROBE_CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _PROBE}]


def has_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether ``tokenizer`` has a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def _rendered_probe(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """A small conversation ending in an assistant message, rendered by the template (None: no template,
    or one that refuses it)."""
    if not has_template(tokenizer):
        return None
    try:
        return str(tokenizer.apply_chat_template(_PROBE_CHAT, tokenize=False))
    except Exception:  # a template with its own rules (a required system turn, ...): nothing is known
        return None


def end_of_turn(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The special token the chat template writes right after an assistant message's content, whitespace
    aside (``<|im_end|>``, ``<|eot_id|>``, Zephyr's ``</s>``), or None: no template, or nothing special
    follows the content."""
    text = _rendered_probe(tokenizer)
    if text is None or _PROBE not in text:
        return None
    tail = text[text.rindex(_PROBE) + len(_PROBE) :].lstrip()  # Llama-2 writes " </s>"
    specials = set(getattr(tokenizer, "all_special_tokens", []) or []) | set(
        getattr(tokenizer, "get_added_vocab", dict)()
    )
    found = [s for s in specials if s and tail.startswith(s)]
    return max(found, key=len) if found else None


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The id of :func:`end_of_turn` when it is one token, else None."""
    token = end_of_turn(tokenizer)
    if token is None:
        return None
    ids = tokenizer.convert_tokens_to_ids([token])
    return int(ids[0]) if ids and ids[0] is not None and ids[0] != tokenizer.unk_token_id else None


def template_adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template writes the BOS token itself (Llama-3's ``{{ bos_token }}``)."""
    text = _rendered_probe(tokenizer)
    bos = getattr(tokenizer, "bos_token", None)
    return bool(text is not None and bos and text.startswith(bos))


def tokenizer_adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether tokenizing a string with the default special tokens puts BOS first (its post-processor)."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    ids = tokenizer("a")["input_ids"]
    return bos_id is not None and bool(ids) and ids[0] == bos_id


def template_hash(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The first 12 hex digits of the chat template's SHA-256 (which template), or None without one."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    text = template if isinstance(template, str) else repr(template)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def describe_tokenizer(tokenizer: PreTrainedTokenizerBase) -> TokenizerRendering:
    """How ``tokenizer`` renders text, as the trial record keeps it (:class:`TokenizerRendering`)."""
    return TokenizerRendering(
        template=template_hash(tokenizer),
        template_adds_bos=template_adds_bos(tokenizer),
        tokenizer_adds_bos=tokenizer_adds_bos(tokenizer),
        end_of_turn=end_of_turn(tokenizer),
        eos=getattr(tokenizer, "eos_token", None),
        bos=getattr(tokenizer, "bos_token", None),
        pad=getattr(tokenizer, "pad_token", None),
    )


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # multimodal parts: their text
        return " ".join(str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content)
    return "" if content is None else str(content)


def plain_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """A conversation as plain text, for a tokenizer without a chat template: the message contents joined by
    blank lines (roles are not written)."""
    return "\n\n".join(_content(m) for m in messages)


def _conversation(prompt: Sequence[Mapping[str, Any]], completion: Any) -> list[dict[str, Any]]:
    """The prompt's messages then the completion: a message list as it is, a string as one assistant turn."""
    answer = (
        list(completion) if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
    )
    return [dict(m) for m in prompt] + [dict(m) for m in answer]


def _one_bos(encoding: dict[str, list[int]], bos_id: int | None) -> dict[str, list[int]]:
    """``encoding`` with a doubled leading BOS cut to one (every per-token list loses its first entry)."""
    ids = encoding["input_ids"]
    if bos_id is None or len(ids) < 2 or ids[0] != bos_id or ids[1] != bos_id:
        return encoding
    return {key: list(value[1:]) for key, value in encoding.items()}


def reward_input(
    tokenizer: PreTrainedTokenizerBase, prompt: Any, completion: Any, max_length: int | None = None
) -> dict[str, list[int]]:
    """What a reward model with ``tokenizer`` reads for (``prompt``, ``completion``): the encoding (input ids,
    attention mask and whatever else the tokenizer returns) by the rule of the module docstring. ``prompt``
    is the source prompt (a string or a message list); ``completion`` the completion's text (or, for a
    message-list prompt, a message list). Truncated to ``max_length`` tokens when given."""
    cut = max_length is not None
    if isinstance(prompt, list) and has_template(tokenizer):
        rendered = tokenizer.apply_chat_template(
            _conversation(prompt, completion), tokenize=True, truncation=cut, max_length=max_length
        )
        encoding = {key: list(value) for key, value in rendered.items()}
    else:
        if isinstance(prompt, list):
            text = plain_text(_conversation(prompt, completion))
        else:
            text = str(prompt) + (plain_text(completion) if isinstance(completion, list) else str(completion))
        eos = tokenizer.eos_token or ""
        text = text if text.endswith(eos) else text + eos
        encoding = tokenizer(text, truncation=cut, max_length=max_length)
        encoding = {key: list(value) for key, value in encoding.items()}
    return _one_bos(encoding, getattr(tokenizer, "bos_token_id", None))


@torch.no_grad()
def score_pairs(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    batch_size: int = 32,
) -> torch.Tensor:
    """A one-output sequence-classification model's score of each (source prompt, completion), each rendered
    by :func:`reward_input` with the model's own ``tokenizer`` (float64, shape [n]).

    Batches are right-padded (``tokenizer.padding_side`` must be ``"right"``: the score is read at the last
    real token) and cut to the model's ``max_position_embeddings``.
    """
    limit = getattr(model.config, "max_position_embeddings", None)
    encodings = [
        reward_input(tokenizer, p, c, max_length=limit) for p, c in zip(prompts, completions, strict=True)
    ]
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(encodings), batch_size):
        batch = tokenizer.pad(encodings[start : start + batch_size], return_tensors="pt").to(device)
        out.append(model(**batch).logits[:, 0].double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def describe_models(
    policy_tokenizer: PreTrainedTokenizerBase,
    stop_ids: Sequence[int],
    reward_model: str | None = None,
) -> Rendering:
    """The trial record's :class:`Rendering`: the policy's tokenizer, the ids its sampling stops at, and the
    tokenizer of ``reward_model`` (a path or Hub id; None: no reward model)."""
    reward_tokenizer = None
    if reward_model:
        from transformers import AutoTokenizer

        reward_tokenizer = describe_tokenizer(AutoTokenizer.from_pretrained(reward_model))
    return Rendering(
        rule=RULE_VERSION,
        policy=describe_tokenizer(policy_tokenizer),
        reward_model=reward_tokenizer,
        stop_ids=[int(i) for i in stop_ids],
    )
