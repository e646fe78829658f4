"""How (not what) to compute: the device and its fast-path switches (precision is the config's, in its hash)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from sddlab.errors import ConfigError


def resolve_device(device: str) -> str:
    """'auto' becomes cuda when a GPU is there, else cpu; asking for cuda without one is a ConfigError."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", device, "auto or cpu (no CUDA device is available)")
    return device


@dataclass(frozen=True)
class Runtime:
    """Device and GPU fast-path switches; CPU results depend on none but `amp` (from training.precision)."""

    device: str = "cpu"
    amp: bool = False  # bf16 autocast; experiments set it from the config's training.precision
    channels_last: bool = True  # conv nets only (the experiment turns it off for others)
    compile: bool = False  # torch.compile the model (in place, state keys unchanged)
    deterministic: bool = False  # CUDA: deterministic kernels, no cudnn autotuning
    eval_batch: int | None = None  # None: 1024 on the CPU (cache-friendly), 8192 on CUDA

    def configure_backends(self) -> None:
        """Process-wide switches: cudnn autotuning (or determinism) on CUDA, flushed denormals on CPU."""
        if self.is_cuda:
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.backends.cudnn.deterministic = self.deterministic
            torch.use_deterministic_algorithms(self.deterministic, warn_only=True)
            torch.backends.cuda.matmul.allow_tf32 = not self.deterministic
            torch.backends.cudnn.allow_tf32 = not self.deterministic
        else:
            torch.set_flush_denormal(True)  # denormals made late, very sparse levels 2-3x slower on CPU

    def prepare_inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    @property
    def eval_chunk(self) -> int:
        return self.eval_batch or (8192 if self.is_cuda else 1024)

    @property
    def is_cuda(self) -> bool:
        return torch.device(self.device).type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast when `amp` is on (CUDA, or the CPU: the same path runs in tests), else nothing."""
        if self.amp:
            return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()
