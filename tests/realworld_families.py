"""Two more model families for the real-world fixture, whose rendering differs from ChatML's in the ways that
trip a harness up (built at test time, seeded, a second or two):

* **NeoX-like** (``GPTNeoXForCausalLM``): a tokenizer with NO pad token, ``<|endoftext|>`` as BOS and EOS,
  and a Zephyr-style chat template (``<|user|>\\n...</s>\\n<|assistant|>\\n...</s>\\n``) whose end-of-turn
  ``</s>`` is not the EOS token; the generation config declares ``<|endoftext|>`` only;
* **Phi3-like** (``Phi3ForCausalLM``): a tokenizer whose post-processor adds ``<|begin_of_text|>`` to every
  string AND a Llama-3-style template that writes ``{{ bos_token }}`` itself, ending turns with
  ``<|eot_id|>`` while EOS is ``<|end_of_text|>`` (both declared by the generation config);

each with a one-output sequence-classification reward model of the same architecture and tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ZEPHYR = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '</s>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
NEOX_SPECIALS = ["<|endoftext|>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
LLAMA3_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]


@dataclass(frozen=True)
class Family:
    """One family's models: a causal LM and a one-output reward model sharing its tokenizer."""

    policy: Path
    reward_model: Path


def _bpe(corpus: list[str], specials: list[str], bos: str | None = None):
    """A byte-level BPE tokenizer trained on ``corpus``; with ``bos``, its post-processor adds it first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    byte_level = processors.ByteLevel(trim_offsets=False)
    if bos is None:
        tok.post_processor = byte_level
    else:
        adds_bos = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
        tok.post_processor = processors.Sequence([byte_level, adds_bos])
    return tok


def neox_tokenizer(corpus: list[str]):
    """The NeoX-like tokenizer: no pad token, EOS ``<|endoftext|>``, Zephyr-style template ending in
    ``</s>``."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(corpus, NEOX_SPECIALS),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        additional_special_tokens=NEOX_SPECIALS[1:],
    )
    fast.chat_template = ZEPHYR
    return fast


def phi3_tokenizer(corpus: list[str]):
    """The Phi3-like tokenizer: BOS added by its post-processor and by its Llama-3-style template, which ends
    turns with ``<|eot_id|>`` while EOS is ``<|end_of_text|>``."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(corpus, LLAMA3_SPECIALS, bos="<|begin_of_text|>"),
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<|end_of_text|>",
        additional_special_tokens=LLAMA3_SPECIALS[2:],
    )
    fast.chat_template = LLAMA3
    return fast


def _save(model, tokenizer, directory: Path, eos: list[str]) -> Path:
    from transformers import GenerationConfig

    ids = [tokenizer.convert_tokens_to_ids(t) for t in eos]
    pad = tokenizer.pad_token_id
    model.config.eos_token_id = ids[0]
    model.config.bos_token_id = tokenizer.bos_token_id
    model.config.pad_token_id = pad
    if model.can_generate():
        model.generation_config = GenerationConfig(
            eos_token_id=ids if len(ids) > 1 else ids[0],
            bos_token_id=tokenizer.bos_token_id,
            pad_token_id=pad,
        )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_neox(root: Path, corpus: list[str]) -> Family:
    """The NeoX-like causal LM and reward model (one layer, hidden size 32)."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, GPTNeoXForSequenceClassification

    tok = neox_tokenizer(corpus)
    torch.manual_seed(1)
    shape = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=512,
    )
    eos = ["<|endoftext|>"]
    return Family(
        policy=_save(GPTNeoXForCausalLM(GPTNeoXConfig(**shape)), tok, root / "neox", eos),
        reward_model=_save(
            GPTNeoXForSequenceClassification(GPTNeoXConfig(**shape, num_labels=1)), tok, root / "neox-rm", eos
        ),
    )


def build_phi3(root: Path, corpus: list[str]) -> Family:
    """The Phi3-like causal LM and reward model (one layer, hidden size 32)."""
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM, Phi3ForSequenceClassification

    tok = phi3_tokenizer(corpus)
    torch.manual_seed(2)
    shape = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    eos = ["<|end_of_text|>", "<|eot_id|>"]
    return Family(
        policy=_save(Phi3ForCausalLM(Phi3Config(**shape)), tok, root / "phi3", eos),
        reward_model=_save(
            Phi3ForSequenceClassification(Phi3Config(**shape, num_labels=1)), tok, root / "phi3-rm", eos
        ),
    )
