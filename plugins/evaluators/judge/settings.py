"""The ``eval.judge`` settings of the judge evaluator: their declarations (:data:`OPTIONS`), and
:func:`read_settings`, which fills in the defaults, loads the template and checks what the judge needs (the
judge model, the endpoint's URL, the judge model's settings) without reaching a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness_plugins.evaluators.judge.local import MODEL_KWARG_DEFAULTS, model_settings
from harness_plugins.evaluators.judge.template import Template, load_template
from omegaconf import DictConfig, OmegaConf

from harness.plugin import ConfigError, Option

NAME = "judge"
OPTIONS = [
    Option(
        "backend",
        "openai",
        "who judges: openai (an OpenAI-compatible chat endpoint: vLLM, TGI, llama.cpp, a "
        "hosted API) or local (a causal LM loaded in this process)",
        choices=("openai", "local"),
    ),
    Option(
        "model",
        None,
        "the judge model: the served model's name (openai) or a model directory or Hub id (local)",
        types=(str,),
        nullable=True,
    ),
    Option(
        "base_url", None, "openai: the endpoint, e.g. http://127.0.0.1:8000/v1", types=(str,), nullable=True
    ),
    Option(
        "api_key_env",
        "OPENAI_API_KEY",
        "openai: the environment variable holding the API key (sent as a Bearer "
        "token; unset or null: no key)",
        types=(str,),
        nullable=True,
    ),
    Option(
        "max_tokens",
        512,
        "openai: cap on the judge's answer (explanation and verdict), tokens",
        bounds="[1, inf)",
    ),
    Option("concurrency", 4, "openai: requests in flight at once", bounds="[1, inf)"),
    Option("timeout", 120.0, "openai: seconds per request", bounds="(0, inf)"),
    Option(
        "retries",
        3,
        "openai: retries after HTTP 408/409/429/5xx or a connection error (exponential backoff)",
        bounds="[0, inf)",
    ),
    Option(
        "model_kwargs",
        MODEL_KWARG_DEFAULTS,
        "local: model.* settings for the judge model (dtype: auto is "
        "bfloat16 on a GPU that has it, float16 on others, float32 on a CPU; revision, trust_remote_code, "
        "attn_implementation, device_map, quantization, bnb_4bit)",
    ),
    Option("batch_size", 4, "local: comparisons per forward pass", bounds="[1, inf)"),
    Option(
        "min_label_prob",
        0.5,
        "local: a verdict whose labels A, B, C hold less probability than this is unusable (a judge that "
        "does not follow the format); 0: never",
        bounds="[0, 1]",
    ),
    Option(
        "max_unusable",
        0.5,
        "when more than this share of a checkpoint's verdicts is unusable (unreadable, under min_label_prob, "
        "refused by the server), the win rates are withheld: reported unusable, never a number",
        bounds="[0, 1]",
    ),
    Option(
        "template",
        None,
        "judge prompt: null (built-in, MT-Bench pairwise) or a text file with {prompt}, "
        "{answer_a}, {answer_b} (lines <<<system>>> and <<<user>>> split it into messages)",
        types=(str,),
        nullable=True,
    ),
    Option(
        "num_prompts",
        None,
        "judge only the first N evaluation prompts (bounds API cost); null: all",
        types=(int,),
        nullable=True,
        bounds="[1, inf)",
    ),
    Option(
        "length_controlled",
        True,
        "also report judge_win_rate_lc, the win rate at equal length (AlpacaEval-LC style)",
    ),
    Option(
        "length_unit",
        "chars",
        "length for the length control: chars, or tokens of the policy's tokenizer",
        choices=("chars", "tokens"),
    ),
    Option("cache", True, "reuse verdicts from disk ($HARNESS_CACHE_DIR/judge, else ~/.cache/harness/judge)"),
]
DEFAULTS: dict[str, Any] = {o.name: o.default for o in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """``eval.judge`` with defaults filled in and the template loaded."""

    backend: str
    model: str
    base_url: str | None
    api_key_env: str | None
    max_tokens: int
    concurrency: int
    timeout: float
    retries: int
    model_kwargs: dict[str, Any]
    batch_size: int
    min_label_prob: float
    max_unusable: float
    template_path: str | None
    template: Template
    num_prompts: int | None
    length_controlled: bool
    length_unit: str
    cache: bool


def _section(cfg: DictConfig) -> dict[str, Any]:
    node = cfg.eval.get(NAME) if cfg.get("eval") is not None else None
    raw = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
    return {**DEFAULTS, **raw}


def read_settings(cfg: DictConfig) -> Settings:
    """``eval.judge`` of ``cfg`` as :class:`Settings`; a one-line ConfigError for what is missing or unusable
    (the judge model, the endpoint's URL, the template, the judge model's settings). Reaches no server."""
    values = _section(cfg)
    backend = str(values["backend"])
    if not values["model"]:
        what = (
            "a model directory or Hub id, e.g. eval.judge.model=Qwen/Qwen2.5-7B-Instruct"
            if backend == "local"
            else "the name its server serves it under, e.g. eval.judge.model=Qwen/Qwen2.5-72B-Instruct"
        )
        raise ConfigError(f"eval.judge.model is not set; name the judge model ({what}).")
    if backend == "openai" and not values["base_url"]:
        raise ConfigError(
            "eval.judge.base_url is not set; point it at an OpenAI-compatible server, e.g. "
            "eval.judge.base_url=http://127.0.0.1:8000/v1 (vllm serve <model>), or use "
            "eval.judge.backend=local."
        )
    try:
        template = load_template(values["template"])
    except ValueError as exc:
        raise ConfigError(f"eval.judge.template={values['template']}: {exc}.") from None
    if backend == "local":
        try:
            model_settings(values["model_kwargs"])  # checked here, merged by the judge
        except ValueError as exc:
            raise ConfigError(f"eval.judge.model_kwargs: {exc}.") from None
    return Settings(
        **{
            **values,
            "backend": backend,
            "model": str(values["model"]),
            "template_path": values["template"],
            "template": template,
        }
    )
