"""Multi-process trials: which process this is, and what the processes of one trial agree on.

``torchrun --nproc_per_node N -m harness ...`` (or ``accelerate launch -m harness ...``) starts N processes
that train one trial's model together: the transformers Trainer under a TRL method runs them as DDP (or
FSDP/DeepSpeed with ``method.trl.fsdp``/``method.trl.deepspeed``). The launcher tells each process its place
through the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). The harness joins the process group before
Hydra starts, so that every process agrees on one trial directory (the main process's), and then only the main
process (rank 0) evaluates, writes the record, saves checkpoints and calls the plugins' trial hooks; the
others train and wait for its decisions (a pruned or failed checkpoint ends every process). The batch size
stays the trial's: each process takes ``method.batch_size / N`` rows per step.

Accelerate (through the Trainer) reuses the group joined here; its backend is gloo on CPU and NCCL on GPUs
(gloo for the harness's own small messages). The group's timeout covers the main process's checkpoint
evaluations, during which the others wait: ``$HARNESS_DDP_TIMEOUT_S`` (default 7200 s).
"""

from __future__ import annotations

import datetime
import os
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from omegaconf import DictConfig

T = TypeVar("T")
TIMEOUT_ENV = "HARNESS_DDP_TIMEOUT_S"


def world_size() -> int:
    """How many processes train this trial (1 unless a distributed launcher started it)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's rank among them (0: the main process)."""
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    """This process's rank on its machine (its GPU's index)."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def local_world_size() -> int:
    """How many processes of this trial run on this machine (they share its cores)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)


def launched() -> bool:
    """Whether a distributed launcher started several processes for this trial."""
    return world_size() > 1


def is_main() -> bool:
    """Whether this is the process that evaluates, writes and reports (rank 0)."""
    return rank() == 0


def join() -> None:
    """Join the trial's process group (a no-op in a single process or once joined): NCCL for CUDA tensors when
    a GPU is visible (this process on GPU ``LOCAL_RANK``), gloo for the rest."""
    import torch
    import torch.distributed as dist

    if not launched() or dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank() % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "7200")))
    dist.init_process_group(backend=backend, timeout=timeout)


def _group() -> Any:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast(value: T) -> T:
    """The main process's ``value`` (any picklable object), in every process of the group
    (``value`` itself outside one)."""
    if not _group():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0, device=None if not _uses_cuda() else _cuda_device())
    return box[0]


def _uses_cuda() -> bool:
    import torch.distributed as dist

    return "nccl" in str(dist.get_backend()).lower()


def _cuda_device() -> Any:
    import torch

    return torch.device("cuda", torch.cuda.current_device())


def barrier() -> None:
    """Wait until every process of the group gets here (a no-op outside one)."""
    if _group():
        import torch.distributed as dist

        dist.barrier()


def check_distributed(cfg: DictConfig, trains_with_trainer: bool) -> None:
    """The trial's multi-process settings, before anything loads: under a distributed launcher the method
    trains through a transformers Trainer and ``method.batch_size`` splits evenly over the processes;
    ``method.trl.fsdp`` needs such a launch; ``method.trl.deepspeed`` needs the ``deepspeed`` package and a
    readable JSON config (or an inline mapping) that does not shard the weights (ZeRO 1 or 2), and FSDP is
    refused for the same reason: each checkpoint is evaluated in the main process, on the whole model. Raises
    a one-line ConfigError naming the fix."""
    from harness.errors import ConfigError

    n = world_size()
    trl = cfg.method.get("trl") or {}
    launch = "torchrun --nproc_per_node N -m harness ... (or accelerate launch -m harness ...)"
    if n > 1 and not trains_with_trainer:
        raise ConfigError(
            f"method {cfg.method.name} trains with its own loop, which runs in one process; start it "
            "without torchrun/accelerate launch."
        )
    batch = cfg.method.get("batch_size")
    if n > 1 and isinstance(batch, int) and batch % n:
        raise ConfigError(
            f"method.batch_size={batch} does not split over {n} processes; use a multiple of {n} (each "
            "process takes batch_size / N rows per step, so the trial's batch stays the same)."
        )
    if trl.get("fsdp"):
        raise ConfigError(
            f"method.trl.fsdp={trl.get('fsdp')!r} is not supported: the harness evaluates each checkpoint "
            "in the main process, which needs the whole model there, and FSDP shards it; drop "
            f"method.trl.fsdp (several GPUs train with DDP: {launch})."
        )
    if trl.get("deepspeed"):
        _check_deepspeed(trl.get("deepspeed"), launch)


def _check_deepspeed(setting: Any, launch: str) -> None:
    import importlib.util
    import json
    from pathlib import Path

    from harness.errors import ConfigError

    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(
            "method.trl.deepspeed is set but the deepspeed package is not installed; pip install "
            "deepspeed (on a machine with CUDA), or drop method.trl.deepspeed."
        )
    config = setting
    if isinstance(setting, str):
        path = Path(setting).expanduser()
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except OSError:
            raise ConfigError(
                f"method.trl.deepspeed={setting!r}: no such file; give the path of a DeepSpeed JSON "
                f"config (launch with {launch})."
            ) from None
        except ValueError as exc:
            raise ConfigError(
                f"method.trl.deepspeed={setting!r} is not valid JSON ({exc}); fix the file."
            ) from None
    stage = ((config or {}).get("zero_optimization") or {}).get("stage") if isinstance(config, dict) else None
    if stage == 3:
        raise ConfigError(
            "method.trl.deepspeed uses ZeRO stage 3, which shards the model, but the harness evaluates "
            "each checkpoint in the main process, which needs the whole model there; use stage 1 or 2."
        )
