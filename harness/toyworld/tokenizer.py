"""The toy model's word-level tokenizer, as a ``transformers`` fast tokenizer.

This module owns the mapping between toy text and token ids. One token per word of
:data:`harness.toyworld.vocab.WORDS` (punctuation included), split on whitespace, plus four special tokens.
Properties that TRL and the harness rely on:

- ``tok(text)`` prepends BOS (a post-processor), ``tok(text, add_special_tokens=False)`` does not; EOS is
  never added by the tokenizer (TRL appends the EOS *string*, e.g. ``"... .</s>"``, and the special tokens
  are split out of the text before whitespace splitting, so ``".</s>"`` is two tokens).
- Leading, trailing and repeated spaces are ignored, so ``prompt + " " + completion`` tokenizes to the
  prompt's tokens followed by the completion's.
- ``decode`` joins words with single spaces (no clean-up that would glue "." to the previous word).
- Left padding (generation and TRL's collators expect it).
- A minimal chat template: BOS, then the message contents joined by single spaces, each assistant message
  followed by EOS; ``add_generation_prompt`` adds nothing. So TRL's conversational format gives the same
  ids as the standard format.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from harness.toyworld.vocab import WORDS

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # ids 0..3, in this order
MODEL_MAX_LENGTH = 128

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if not loop.first %} {% endif %}"
    "{{ message['content'] | trim }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The toy tokenizer (special tokens get ids 0-3, then the words in :data:`WORDS` order)."""
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *WORDS))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B:1", special_tokens=[(BOS, vocab[BOS])]
    )
    # A decoder that only joins tokens with spaces ("##" never occurs in the vocabulary).
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=MODEL_MAX_LENGTH,
        chat_template=CHAT_TEMPLATE,
    )
