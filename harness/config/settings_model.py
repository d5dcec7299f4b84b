"""The model's settings, declared: ``model.*``, ``model.bnb_4bit.*`` and ``model.lora.*``.

Hydra gets their defaults as the ``model/base`` node (:func:`harness.config.store.register_configs`); every
model config extends it (``defaults: [base, _self_]``) and holds only what differs: ``conf/model/toy.yaml``
(the toy world's model and profile), ``hf.yaml`` (any causal LM: ``model.name_or_path`` to set), ``lora.yaml``
(the toy model with an adapter), or a user's own. What these declarations cannot check alone (quantization and
flash attention on the trial's device, LoRA target modules against the model, extra ``peft.LoraConfig``
fields) is :mod:`harness.config.model_settings`. See :mod:`harness.config.setting` for what a declaration
holds.
"""

from __future__ import annotations

from typing import Any

from harness.config.setting import Setting, SettingsGroup

DTYPES = ("float32", "bfloat16", "float16")  # model.dtype names: torch.<name> (imported when loading)
QUANTIZATIONS = ("4bit", "8bit")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
ALL_LINEAR = "all-linear"


def quantization(value: Any) -> str | None:
    """``"4bit"``, ``"8bit"`` (or what else was written) for ``model.quantization``;
    None when off (null, false, ``none``)."""
    return None if value in (None, False, "none", "null") else str(value)


def _quantization(value: Any) -> str | None:
    mode = quantization(value)
    return None if mode is None or mode in QUANTIZATIONS else "it is not a quantization"


def _device_map(value: Any) -> str | None:
    return None if isinstance(value, dict) or value in DEVICE_MAPS else "it is not a device map"


def _not_empty(value: Any) -> str | None:
    return None if value else "it is empty"


BNB_4BIT = SettingsGroup(
    "model.bnb_4bit",
    "With quantization=4bit: BitsAndBytesConfig's bnb_4bit_* settings.",
    (
        Setting(
            "compute_dtype",
            "auto",
            "auto (bfloat16 where the GPU supports it, else float16) | float32 | bfloat16 | float16",
            choices=("auto", *DTYPES),
            fix=f"use auto, {', '.join(DTYPES)}",
        ),
        Setting(
            "quant_type",
            "nf4",
            "nf4 (QLoRA's NormalFloat4) | fp4",
            choices=("nf4", "fp4"),
            fix="use nf4 or fp4",
        ),
        Setting(
            "use_double_quant", True, "quantize the quantization constants too (saves ~0.4 bits per weight)"
        ),
    ),
)

LORA = SettingsGroup(
    "model.lora",
    "LoRA through peft: only the adapter trains; the reference is the base with the adapter disabled. Other "
    "peft.LoraConfig fields may be added with +model.lora.<field>=<value>.",
    (
        Setting(
            "r",
            0,
            "adapter rank; 0 = no LoRA (full fine-tuning), e.g. 16 to train an adapter",
            bounds="[0, inf)",
            fix="use 0 (no LoRA, full fine-tuning) or a rank such as 16",
        ),
        Setting(
            "alpha",
            32,
            "scaling numerator (effective scale alpha / r)",
            types=(int, float),
            bounds="[0, inf)",
            fix="it must be a number >= 0",
        ),
        Setting(
            "dropout",
            0.05,
            "dropout on the adapter input",
            bounds="[0, 1)",
            fix="it must be a number in [0, 1)",
        ),
        Setting(
            "target_modules",
            ALL_LINEAR,
            "all-linear (every linear layer but the output head) or module names, "
            "e.g. [q_proj, v_proj]; checked against the model",
            types=(str, list),
            check=_not_empty,
            fix="use all-linear or a list of module names",
        ),
    ),
)

MODEL = SettingsGroup(
    "model",
    "The policy (and reference) model: model=toy (the toy world's), model=hf "
    "model.name_or_path=<dir or Hub id> (any causal LM loadable with AutoModelForCausalLM; offline by "
    "default: export HF_HUB_OFFLINE=0 to download), or a model config of your own extending base.",
    (
        Setting(
            "name_or_path",
            "???",
            "a local directory, a Hub id (in the local cache), or a name a plugin resolves (toyworld)",
            types=(str,),
        ),
        Setting(
            "profile",
            None,
            "the defaults this model gets beyond the real-model ones: each method's values "
            "for the profile and the evaluation's (conf/eval_profile/<profile>.yaml); toy = "
            "the toy world's tuning; null: real-model defaults",
            types=(str,),
            nullable=True,
        ),
        Setting(
            "revision",
            None,
            "Hub revision (branch, tag or commit) when name_or_path is a Hub id",
            types=(str,),
            nullable=True,
        ),
        Setting(
            "dtype",
            "auto",
            "weights dtype: auto (fp32 master weights; train.precision=auto trains "
            "in bf16 on a GPU) | float32 | bfloat16 | float16",
            choices=("auto", *DTYPES),
            fix=f"use auto, {', '.join(DTYPES)}",
        ),
        Setting(
            "attn_implementation",
            None,
            "attention kernel: null = transformers' default (sdpa) | eager | sdpa | "
            "flash_attention_2 (CUDA, pip install flash-attn)",
            types=(str,),
            nullable=True,
            check=_not_empty,
            fix="use null (transformers' default), eager, sdpa or flash_attention_2",
        ),
        Setting(
            "device_map",
            None,
            "null: the whole model on train.device; auto: shard a model too "
            "large for one GPU over all visible GPUs (accelerate)",
            types=(str, dict),
            nullable=True,
            check=_device_map,
            fix="use null (the whole model on train.device), "
            f"{', '.join(DEVICE_MAPS)} or a mapping of module names to devices",
        ),
        Setting(
            "quantization",
            None,
            "null | 4bit | 8bit: load the weights quantized with bitsandbytes (CUDA only; needs LoRA: QLoRA)",
            types=(str, bool),
            nullable=True,
            check=_quantization,
            fix="use null (full precision), 4bit or 8bit",
        ),
        Setting(
            "trust_remote_code",
            False,
            "allow models that ship their own Python code",
        ),
        Setting(
            "sft",
            None,
            "an SFT stage trained first, its final checkpoint then being the policy and reference "
            "(method=sft settings, e.g. {max_steps: 200}); null: none (see the sft plugin)",
            nullable=True,
        ),
    ),
    groups=(BNB_4BIT, LORA),
)
