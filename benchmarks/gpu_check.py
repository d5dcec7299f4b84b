"""GPU readiness: every built-in method a few bf16 steps on a ~0.5B-parameter model and on the toy world.

    python benchmarks/gpu_check.py [--methods dpo,kto,...] [--steps 6] [--workdir DIR]
                                   [--override KEY=VALUE ...]
    python benchmarks/gpu_check.py --tiny       # a CPU smoke run of the same script on a tiny model

What it builds (in the work directory, in seconds): the test fixture of ``tests/realworld.py`` (a trained
byte-level BPE tokenizer with a ChatML template and two end-of-sequence ids, UltraFeedback-format data, a tiny
reward model), and a randomly initialised Qwen2 of about 0.5B parameters with that tokenizer (a 400-token
vocabulary: the logits take far less memory than a real 150k-token vocabulary's would). Each method (dpo, ipo,
kto, orpo, simpo, cpo, ppo, grpo, rloo, reward, and sft when it is registered) then trains ``--steps``
optimizer steps on it in a process of its own (``python -m harness model=hf ...``, ``train.precision=bf16``;
online methods score with the tiny reward model), and one multirun, beside them, runs every method on a small
toy world in bf16. It prints, per trial, the status, training seconds, tokens per second (TRL's
``num_tokens``; for PPO, estimated from its rollouts), the peak CUDA memory and whether the training loss fell
(online methods' losses need not). ``--override`` adds Hydra overrides to every 0.5B run, e.g.
``--override model.lora.r=16`` (LoRA) or ``--override model.lora.r=16 --override model.quantization=4bit``
(QLoRA, needs bitsandbytes). It is sized to finish within 5 minutes on one GPU (most of each process's time is
imports and loading; the toy world runs beside the model runs); without a GPU it says so and exits 0. Exit
status 1 when a trial failed. ``--tiny`` runs the same on the CPU with a tiny model (a smoke test of the
script itself: about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = ("dpo", "ipo", "kto", "orpo", "simpo", "cpo", "ppo", "grpo", "rloo", "reward", "sft")
ONLINE = ("ppo", "grpo", "rloo")
# ~0.5B parameters with a small vocabulary (Qwen2-0.5B's shape is 896 x 24 with a 151k vocabulary).
BIG = {
    "hidden_size": 1024,
    "intermediate_size": 4352,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
}
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}
TOY_SPEC = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_layers": 2,
    "num_heads": 2,
    "pretrain_steps": 80,
    "num_train_pairs": 128,
    "num_eval_pairs": 16,
    "num_eval_prompts": 16,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods", default=None, help="comma-separated methods (default: every built-in one)"
    )
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per method (default 6)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the runs go (default: a temp dir)")
    parser.add_argument(
        "--override", action="append", default=[], help="a Hydra override for every model run"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="CPU smoke run: a tiny model, fp32, no GPU needed"
    )
    parser.add_argument("--no-toy", dest="toy", action="store_false", help="skip the toy-world multirun")
    parser.add_argument("--timeout", type=int, default=240, help="seconds per process (default 240)")
    return parser.parse_args(argv)


def registered_methods(wanted: str | None) -> list[str]:
    """The methods to run: ``wanted`` (comma-separated) or every built-in one that is registered."""
    from harness.plugin.manager import get_plugin_manager

    known = get_plugin_manager().methods
    names = wanted.split(",") if wanted else [m for m in METHODS if m in known]
    unknown = [m for m in names if m not in known]
    if unknown:
        sys.exit(f"gpu_check: unknown method(s) {', '.join(unknown)}; registered: {', '.join(sorted(known))}")
    return names


def build_model(root: Path, shape: dict, device: str) -> tuple[Path, Path, Path, int]:
    """The fixture (tokenizer, data, tiny reward model) and a random Qwen2 of ``shape``; returns the model's
    directory, the data directory, the reward model's directory and the parameter count."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    sys.path.insert(0, str(REPO))
    from harness.verbosity import set_library_verbosity
    from tests.realworld import _save_model, build_real_world

    set_library_verbosity(False)
    world = build_real_world(root / "fixture")
    tokenizer = AutoTokenizer.from_pretrained(world.qwen2)
    ids = {
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = Qwen2Config(
        vocab_size=len(tokenizer), max_position_embeddings=2048, tie_word_embeddings=True, **shape, **ids
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    directory = _save_model(
        model.to(torch.bfloat16 if device == "cuda" else torch.float32), tokenizer, root / "model"
    )
    del model
    return directory, world.ultrafeedback, world.reward_model, params


def method_overrides(method: str, reward_model: Path, steps: int) -> list[str]:
    """Small, fast settings for ``method`` on the fixture's data (batch 8, short completions)."""
    common = [
        f"method={method}",
        f"method.max_steps={steps}",
        "method.batch_size=8",
        "method.grad_accum=1",
        "method.learning_rate=2e-5",
        "method.warmup=0",
    ]
    if method == "ppo":
        return [
            *common,
            f"method.reward={reward_model}",
            "method.response_length=32",
            "method.mini_batch_size=8",
        ]
    if method in ("grpo", "rloo"):
        return [
            *common,
            f"method.reward={reward_model}",
            "method.trl.max_completion_length=32",
            "method.trl.num_generations=4",
        ]
    return common


def _env(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HARNESS_CACHE_DIR": str(work / "cache"),
    }


def run(command: list[str], cwd: Path, timeout: int) -> tuple[int, str]:
    """Run ``command``; returns its exit status and the end of its stderr."""
    try:
        result = subprocess.run(
            command, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s"
    return result.returncode, result.stderr[-2000:]


def summary(record: dict, prompt_tokens: float) -> dict:
    """One row of the table from a trial record."""
    train = record.get("train") or {}
    history = [e for e in train.get("log_history") or [] if "loss" in e]
    losses = [float(e["loss"]) for e in history]
    train_s = (record.get("timings") or {}).get("train_s") or 0.0
    tokens = max(
        (float(e["num_tokens"]) for e in train.get("log_history") or [] if "num_tokens" in e), default=0.0
    )
    estimated = False
    if not tokens and record.get("method") == "ppo":  # rollouts: batch x (prompt + response) per step
        hp = record.get("hyperparameters") or {}
        tokens = (
            (train.get("steps") or 0)
            * hp.get("batch_size", 0)
            * (prompt_tokens + hp.get("response_length", 0))
        )
        estimated = True
    return {
        "method": record.get("method"),
        "status": record.get("status"),
        "steps": train.get("steps"),
        "train_s": train_s,
        "tokens_s": (tokens / train_s if tokens and train_s else None),
        "estimated": estimated,
        "cuda_mb": (record.get("peak_memory") or {}).get("cuda_peak_mb"),
        "loss": (losses[0], losses[-1]) if losses else None,
        "error": (record.get("error") or {}).get("message"),
    }


def mean_prompt_tokens(data: Path, model: Path) -> float:
    """Mean chat-rendered prompt length of the fixture's training prompts, in tokens."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = load_from_disk(str(data))["train_prefs"]
    lengths = [
        len(tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True))
        for p in rows["prompt"]
    ]
    return sum(lengths) / max(len(lengths), 1)


def run_model_methods(args: argparse.Namespace, methods: list[str], work: Path, device: str) -> list[dict]:
    """Each method in its own process on the built model; one row per method."""
    model, data, reward_model, params = build_model(work, TINY if args.tiny else BIG, device)
    print(f"model: random Qwen2, {params:,} parameters ({model})", flush=True)
    print(
        f"  {'world':<5} {'method':<7} {'status':<10} {'train':>9} "
        f"{'throughput':>18} {'peak CUDA':>12}  training loss",
        flush=True,
    )
    prompt_tokens = mean_prompt_tokens(data, model)
    precision = ["train.device=cpu", "train.precision=fp32"] if args.tiny else ["train.precision=bf16"]
    rows = []
    for method in methods:
        out = work / "runs" / method
        command = [
            sys.executable,
            "-m",
            "harness",
            "model=hf",
            f"model.name_or_path={model}",
            "data=files",
            f"data.path={data}",
            "data.split=train_prefs",
            "data.eval_split=test_prefs",
            *method_overrides(method, reward_model, args.steps),
            *precision,
            "train.logging_steps=1",
            "train.num_checkpoints=1",
            "train.save_checkpoints=false",
            "eval.evaluators=[kl]",
            "eval.num_prompts=8",
            "eval.max_new_tokens=32",
            *args.override,
            f"hydra.run.dir={out}",
        ]
        start = time.perf_counter()
        code, stderr = run(command, work, args.timeout)
        record_path = out / "trial.json"
        if record_path.is_file():
            row = summary(json.loads(record_path.read_text()), prompt_tokens)
        else:
            lines = stderr.strip().splitlines()
            row = {"method": method, "status": f"exit {code}", "error": lines[-1] if lines else ""}
        row.update(world="model", wall_s=time.perf_counter() - start)
        rows.append(row)
        print_row(row)
    return rows


def start_toy_world(args: argparse.Namespace, methods: list[str], work: Path) -> subprocess.Popen:
    """Every method a few steps on a small toy world: one multirun in one process, started in the background
    (its models are tiny; it runs beside the model runs, and each trial's CUDA peak is its own)."""
    precision = ["train.device=cpu", "train.precision=fp32"] if args.tiny else ["train.precision=bf16"]
    spec = [f"toyworld.spec.{k}={v}" for k, v in TOY_SPEC.items()]
    command = [
        sys.executable,
        "-m",
        "harness",
        "-m",
        f"method={','.join(methods)}",
        *spec,
        f"toyworld.cache_dir={work / 'toyworld'}",
        f"method.max_steps={args.steps}",
        *precision,
        "train.logging_steps=1",
        "train.num_checkpoints=1",
        "train.save_checkpoints=false",
        "eval.num_prompts=8",
        "sweep_name=toy",
        f"hydra.sweep.dir={work / 'toy'}",
        "leaderboard.print=false",
    ]
    log = (work / "toy.log").open("w")
    return subprocess.Popen(
        command, cwd=work, env=_env(work), stdout=log, stderr=subprocess.STDOUT, text=True
    )


def finish_toy_world(process: subprocess.Popen, work: Path, timeout: int) -> list[dict]:
    """Wait for the toy-world multirun; one row per trial."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        code = 124
    records = [json.loads(p.read_text()) for p in sorted((work / "toy").glob("*/trial.json"))]
    if not records:
        tail = (work / "toy.log").read_text()[-300:] if (work / "toy.log").is_file() else ""
        return [{"world": "toy", "method": "all", "status": f"exit {code}", "error": tail.strip()}]
    return [{**summary(r, 0.0), "world": "toy"} for r in records]


def print_row(row: dict) -> None:
    """One line per trial: status, time, throughput, memory, loss."""
    tokens = f"{row['tokens_s']:,.0f}{'~' if row.get('estimated') else ''}" if row.get("tokens_s") else "-"
    loss = row.get("loss")
    fell = "-" if loss is None else ("yes" if loss[1] < loss[0] else "no")
    if loss is not None and row["method"] in ONLINE:
        fell += " (online)"
    loss_text = f"{loss[0]:.4g} -> {loss[1]:.4g}" if loss else "-"
    memory = f"{row['cuda_mb']:,.0f}" if row.get("cuda_mb") is not None else "-"
    print(
        f"  {row['world']:<5} {row['method']:<7} {str(row['status']):<10} {row.get('train_s') or 0:>7.1f} s "
        f"{tokens:>12} tok/s {memory:>9} MB  loss {loss_text:<20} fell {fell}"
        + (f"  error: {row['error']}" if row.get("error") else ""),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns the exit status."""
    args = parse_args(argv)
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False): nothing to check here. "
            "Run it on a GPU machine, or with --tiny for a CPU smoke run of the same steps."
        )
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="harness-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    methods = registered_methods(args.methods)
    device = "cpu" if args.tiny else "cuda"
    if not args.tiny:
        print(
            f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; work directory {work}",
            flush=True,
        )
    start = time.perf_counter()
    toy = start_toy_world(args, methods, work) if args.toy else None
    rows = run_model_methods(args, methods, work, device)
    if toy is not None:
        toy_rows = finish_toy_world(toy, work, args.timeout * 2)
        for row in toy_rows:
            print_row(row)
        rows += toy_rows
    failed = [f"{r['world']}/{r['method']}" for r in rows if r.get("status") != "completed"]
    print(
        f"\n{len(rows) - len(failed)} of {len(rows)} trials completed in {time.perf_counter() - start:.0f} s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
