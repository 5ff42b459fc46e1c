"""Devices, seeds, mixed precision and torch.distributed setup, in one place."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from pipeline.config import PRECISIONS
from pipeline.errors import InputError


def resolve_device(name: str, local_rank: int = 0, key: str = "device") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; plain ``cuda`` -> this process's local GPU.

    ``cuda`` without a GPU, or an unknown name, is a user error naming params key ``key``. The
    CPU path never calls CUDA APIs beyond ``is_available``.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"{key}: {name}: CUDA is not available here")
        if name == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device(name)
    raise InputError(f"{key}: {name!r}: expected auto, cpu, cuda or cuda:N")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def effective_precision(device: torch.device, precision: str = "auto") -> str:
    """What a ``precision`` param means on ``device``: ``"bf16"`` or ``"fp32"``.

    The one precision vocabulary of every stage (features, training, evaluation; the
    ``Precision`` type of ``pipeline.config``): ``auto`` is bf16 on CUDA and fp32 on the CPU
    (bit-reproducible run to run); ``fp32`` and ``bf16`` mean themselves on either device. On a
    CPU with native bf16 (AVX512-BF16 or AMX) a paper-size training step runs 1.2-1.6x faster
    in bf16 than in fp32 (``benchmarks/README.md``); elsewhere bf16 is emulated, likely slower.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        raise InputError(
            "precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), which the"
            " oneDNN LSTM kernels need; use auto or fp32"
        )
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return "bf16"
    return "fp32"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast(device: torch.device, precision: str = "auto"):
    """The mixed-precision context of a forward pass (``precision`` of a params section):
    bf16 autocast where :func:`effective_precision` says bf16, none otherwise."""
    if effective_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            value = value.clone()
            dist.all_reduce(value)
        return value


def init_distributed(
    device_name: str, key: str = "device", timeout: timedelta | None = None
) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun (NCCL on CUDA, gloo on CPU)."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1"))
    rank, local_rank = int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank, key)
    if world > 1 and not dist.is_initialized():
        kwargs = {"timeout": timeout} if timeout else {}
        if device.type == "cuda":
            torch.cuda.set_device(device)
            kwargs["device_id"] = device
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", **kwargs)
    return Dist(rank, world, local_rank), device
