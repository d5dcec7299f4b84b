"""What one trial asks of a cluster node: GPU memory, host memory and cores,
estimated from its method's models.

A SLURM job gets what it asks for, and a trial that asks too little dies after its model loads. The estimate
needs no weights: the model's parameters are counted on its meta-device skeleton (:func:`parameter_count`);
the method says how many full models it holds (``MethodSpec.models_in_memory``: policy, reference, reward and
value models); the trained model adds its gradients and AdamW's two moments (three more copies in its dtype),
or almost nothing with LoRA. Activations and the CUDA context are a margin (30% and 2 GiB), so treat the
figure as a floor to round up, not a measurement; the trial record's ``peak_memory`` is the measurement.

With ``hydra/launcher=submitit_slurm`` the command line fills the launcher's resources the user left unset
(:func:`slurm_resources`, applied in :mod:`harness.cli.app`) and prints them in one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from harness.plugin.manager import HarnessPluginManager

GIB = 1024**3
BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}
LORA_TRAINED_SHARE = (
    0.01  # a LoRA adapter's parameters, as a share of the model's (r=16 on the attention: < 1%)
)
TRAINING_COPIES = 3  # the trained weights' gradients and AdamW's two moments
MARGIN, CONTEXT_GIB = 1.3, 2.0  # activations, allocator slack and the CUDA context
CPUS_PER_TRIAL = 8  # data loading, tokenisation, sampling for evaluation


@dataclass(frozen=True)
class Footprint:
    """One trial's estimated needs: its method, the full models it holds, the parameters of one, the GPU
    memory (GiB) of weights, training state and margin, and the host memory (GiB) to load them."""

    method: str
    models: int
    parameters: int | None
    gpu_gib: float | None
    host_gib: float | None
    resident_gib: float | None = None  # weights and training state alone, no margin: what must fit at least

    def text(self) -> str:
        """``dpo: 2 models of 1.1B parameters, ~19 GiB of GPU memory`` (or what is unknown)."""
        if self.parameters is None:
            return f"{self.method}: {self.models} model(s) of unknown size"
        return (
            f"{self.method}: {self.models} model(s) of {self.parameters / 1e9:.2g}B parameters, "
            f"~{self.gpu_gib:.0f} GiB of GPU memory"
        )


def parameter_count(path: str, revision: str | None = None, trust_remote_code: bool = False) -> int | None:
    """The parameters of the causal LM at ``path``, counted on its meta-device skeleton (no weights are read);
    None when its config cannot be read."""
    from harness.config.model_settings import meta_skeleton

    model = meta_skeleton(path, revision, trust_remote_code)
    if model is None:
        return None
    model.tie_weights()  # a tied output layer is the embedding, counted once (as loaded weights are)
    return sum(p.numel() for p in model.parameters())


def trial_footprint(cfg: DictConfig, pm: HarnessPluginManager) -> Footprint:
    """The estimated needs of the trial configured by ``cfg`` (a composed config) on a GPU."""
    from harness.config.model_settings import lora_enabled, quantization
    from harness.config.resources import resolve_model_path

    spec = pm.method(cfg.method.name)
    models = spec.count_models(cfg)
    path = resolve_model_path(pm, cfg, dry_run=True)
    params = parameter_count(path, cfg.model.get("revision"), bool(cfg.model.get("trust_remote_code", False)))
    if params is None:
        return Footprint(spec.name, models, None, None, None)
    dtype = str(cfg.model.get("dtype", "auto"))
    size = BYTES.get(dtype, 4)  # auto: fp32 master weights under mixed precision
    bits = quantization(cfg.model)
    if bits:
        size = 0.5 if bits == "4bit" else 1
    trained = params * (LORA_TRAINED_SHARE if lora_enabled(cfg.model) else 1.0)
    weights = models * params * size
    state = trained * TRAINING_COPIES * (4 if lora_enabled(cfg.model) else size)
    gpu = (weights + state) * MARGIN / GIB + CONTEXT_GIB
    host = max(
        16.0, 1.5 * params * BYTES.get(dtype, 4) / GIB + 8.0
    )  # one model's weights while loading, and data
    return Footprint(spec.name, models, params, gpu, host, (weights + state) / GIB)


def machine_memory(device: str) -> tuple[float, float]:
    """The memory (GiB) a trial on ``device`` trains in, ``(total, available now)``: the GPU's for ``cuda``,
    else the host's."""
    if device.startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(device))
        return total / GIB, free / GIB
    import psutil

    memory = psutil.virtual_memory()
    return memory.total / GIB, memory.available / GIB


def check_machine_memory(footprint: Footprint, device: str) -> str | None:
    """Before a trial loads anything: refuse it when its models' weights and training state alone exceed the
    memory of the device it trains on (it could only fail, after minutes of loading); a warning (returned)
    when the estimate with its margin exceeds the memory available now. None: it fits, or its size is
    unknown.

    :raises ConfigError: one line with the estimate, the machine's memory and the ways to need less."""
    from harness.errors import ConfigError

    if footprint.resident_gib is None or footprint.gpu_gib is None:
        return None
    total, available = machine_memory(device)
    where = "GPU" if device.startswith("cuda") else "host"
    if footprint.resident_gib > total:
        raise ConfigError(
            f"{footprint.text()}: its weights and training state alone need "
            f"~{footprint.resident_gib:.1f} GiB and the {where} has {total:.1f} GiB; train with LoRA "
            "(model=lora), 4-bit weights (model.quantization=4bit), a smaller model or a larger machine."
        )
    wanted = footprint.gpu_gib if device.startswith("cuda") else footprint.gpu_gib - CONTEXT_GIB
    if wanted > available:
        return (
            f"{footprint.method} may run out of memory: ~{wanted:.1f} GiB estimated with margins, "
            f"{available:.1f} GiB of {where} memory available now (of {total:.1f})."
        )
    return None


def slurm_resources(footprints: Sequence[Footprint], launcher: Mapping[str, Any]) -> dict[str, Any]:
    """The ``hydra.launcher`` settings of a SLURM sweep left unset in ``launcher`` (the composed launcher
    config), for its largest trial: one GPU per trial (``gpus_per_node``), ``cpus_per_task`` cores, and the
    host memory (``mem_gb``). Settings the user gave are kept."""
    known = [f for f in footprints if f.host_gib is not None]
    wanted: dict[str, Any] = {"gpus_per_node": 1, "tasks_per_node": 1, "cpus_per_task": CPUS_PER_TRIAL}
    if known:
        wanted["mem_gb"] = int(math.ceil(max(f.host_gib for f in known)))  # type: ignore[type-var]
    return {key: value for key, value in wanted.items() if launcher.get(key) is None}
