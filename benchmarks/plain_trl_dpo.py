"""The baseline of ``benchmarks/overhead.py``: DPO trained the way a plain TRL script would,
with nothing of the harness.

    python benchmarks/plain_trl_dpo.py JOB.json OUT.json

``JOB.json`` (written by overhead.py) names the model directory, the training rows (a JSON-lines file) and the
``DPOConfig`` keyword arguments; the script loads the policy, the reference and the tokenizer with
transformers, trains with ``trl.DPOTrainer`` and writes
``{"log_history": ..., "process_s_at_training_start": ...}`` to ``OUT.json``. It imports only torch,
transformers, datasets and TRL.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    """Train and write the log history and the seconds from process start to the start of training."""
    import psutil
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    torch.manual_seed(int(job["config"]["seed"]))
    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32)
    rows = load_dataset("json", data_files=job["rows"], split="train")
    started = time.time() - psutil.Process().create_time()
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=DPOConfig(**job["config"]),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    trainer.train()
    with open(sys.argv[2], "w") as out:
        json.dump({"log_history": trainer.state.log_history, "process_s_at_training_start": started}, out)


if __name__ == "__main__":
    main()
