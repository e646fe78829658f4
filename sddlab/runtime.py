"""How (not what) to compute: the device and its fast-path switches (precision is the config's, in its hash)."""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sddlab.errors import ConfigError

DEVICES = "auto, cpu, cuda or cuda:N"
CUDA_INDEX = re.compile(r"cuda:(0|[1-9][0-9]*)")


def resolve_device(device: str | torch.device) -> str:
    """'auto' becomes cuda when a GPU is there, else cpu; anything but auto, cpu, cuda or cuda:N (an existing
    GPU) is a ConfigError, so a bad device is refused in one line before any work, whichever command asks."""
    if isinstance(device, torch.device):  # the API may be handed a torch.device
        device = str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or (device not in ("cpu", "cuda") and not CUDA_INDEX.fullmatch(device)):
        raise ConfigError("device", device, DEVICES)
    if device.startswith("cuda"):
        _check_cuda(device)
    return device


def _check_cuda(device: str) -> None:
    """`cuda` or `cuda:N` needs CUDA, and N an index of one of its GPUs."""
    if not torch.cuda.is_available():
        raise ConfigError("device", device, "auto or cpu (no CUDA device is available)")
    count = torch.cuda.device_count()
    if device != "cuda" and int(device.removeprefix("cuda:")) >= count:
        raise ConfigError("device", device, f"auto, cpu, cuda or cuda:0 to cuda:{count - 1} ({count} CUDA "
                          "device(s) here)")


@dataclass(frozen=True)
class Runtime:
    """Device and GPU fast-path switches; CPU results depend on none but `amp` (from training.precision)."""

    device: str = "cpu"
    amp: bool = False  # bf16 autocast; experiments set it from the config's training.precision
    channels_last: bool = True  # conv nets only (the experiment turns it off for others)
    compile: bool = False  # torch.compile the model (in place, state keys unchanged)
    deterministic: bool = False  # CUDA: deterministic kernels, no cudnn autotuning
    eval_batch: int | None = None  # None: 1024 on the CPU (cache-friendly), 8192 on CUDA
    threads: int | None = None  # CPU intra-op threads; None: chosen per workload and load (`ThreadChoice`)

    def configure_backends(self, flop: float | None = None, since: CpuSample | None = None) -> ThreadChoice | None:
        """Process-wide switches: cudnn autotuning (or determinism) on CUDA, flushed denormals and the intra-op
        threads on CPU. `flop` is the workload (`step_flop`; None: unknown, treated as large); `since` a
        `cpu_sample()` taken before the run's set-up, so the load is measured over it instead of a pause.
        Returns the automatic thread choice, a run listener that re-chooses as the load moves (None when
        fixed or CUDA)."""
        if self.is_cuda:
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.backends.cudnn.deterministic = self.deterministic
            torch.use_deterministic_algorithms(self.deterministic, warn_only=True)
            torch.backends.cuda.matmul.allow_tf32 = not self.deterministic
            torch.backends.cudnn.allow_tf32 = not self.deterministic
            return None
        torch.set_flush_denormal(True)  # denormals (tiny weights of late, very sparse levels) are slow on CPUs
        if self.threads is not None:
            torch.set_num_threads(self.threads)
            return None
        choice = ThreadChoice(flop, since=since)
        choice.choose()
        return choice

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


SMALL_STEP_FLOP = 8e6  # below this a step's ops are too small for a second thread to repay its barriers
RECHOOSE_S = 1.0  # a run re-chooses its threads at most this often (at its events: epoch and level ends)
MARGIN = 0.2  # a core counts as free when others keep it busy less than this: a wrong "free" costs far more
_GIVEN: dict[str, int] = {}  # the threads this process was given, and the count last chosen here


def step_flop(model: nn.Module, batch: int) -> float:
    """A lower bound on one training step's matrix work: 6 x batch x weights of the linear and conv layers."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d)
    return 6.0 * batch * sum(m.weight.numel() for m in model.modules() if isinstance(m, kinds))


def given_threads() -> int:
    """The most intra-op threads this process may use (what it was given, whatever was chosen since)."""
    return _ceiling()


def _ceiling() -> int:
    """The threads this process was given (torch.set_num_threads, OMP_NUM_THREADS, a pool's share): a
    count set by anyone but `ThreadChoice` becomes the new ceiling; the choice never goes above it."""
    now = torch.get_num_threads()
    if _GIVEN.get("chosen") != now:
        _GIVEN["given"] = now
    return _GIVEN["given"]


CpuSample = tuple[float, float, float | None]  # (monotonic s, this process's CPU s, the machine's busy CPU s)


def cpu_sample() -> CpuSample:
    """(wall, this process's CPU seconds, every core's busy seconds or None without psutil)."""
    try:
        import psutil
    except ImportError:
        return time.monotonic(), time.process_time(), None
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return time.monotonic(), time.process_time(), sum(times) - idle


def _load_average() -> float:
    """Runnable threads over the last minute (0 where the platform has no load average)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def cores_busy_elsewhere(before: CpuSample, after: CpuSample) -> float:
    """Cores other processes kept busy between two `cpu_sample` samples (without psutil: the load
    average less this process's own use)."""
    wall = max(after[0] - before[0], 1e-6)
    own = (after[1] - before[1]) / wall
    if before[2] is None or after[2] is None:
        return max(0.0, _load_average() - own)
    return max(0.0, (after[2] - before[2]) / wall - own)


class ThreadChoice:
    """Intra-op threads for one workload: one for small steps, else the cores other processes leave free.

    Measured on a 2-core CPU (`digits`, levels 0-1): two threads 8.5 s idle but 4.9x slower beside one busy
    process (each op's barrier waits for the thread that shares a core); one thread 9.4 s idle and 1.02x
    beside it. So the count follows the load, erring low: the cores others keep busy less than `MARGIN`,
    at least one and at most the ceiling this process was given. The load is measured over at least
    `sample_s`. Without a run to listen to, the first choice pauses for that sample. A run passes `since`,
    a sample taken before its set-up, and listens: if the set-up was shorter than `sample_s`, it trains on
    one thread (the cheap mistake) until its first event after `sample_s`. From then on it re-chooses at
    events (epoch and level ends) at most every `RECHOOSE_S` seconds, from the load since its previous
    choice. Call it from the thread that trains (OpenMP's count is per calling thread).
    """

    def __init__(self, flop: float | None = None, sample_s: float = 0.2, since: CpuSample | None = None):
        self.flop, self.sample_s = flop, sample_s
        self.threads = torch.get_num_threads()
        self._last: CpuSample | None = since
        self._listened = since is not None  # a run listens: its events finish a short first sample
        self._measured = False

    def choose(self, now: CpuSample | None = None) -> int:
        """Set and return the thread count for the load since the previous choice (first: see the class)."""
        ceiling = _ceiling()
        if ceiling == 1 or (self.flop is not None and self.flop < SMALL_STEP_FLOP):
            return self._set(1, measured=True)
        self._last = self._last or cpu_sample()
        now = now or cpu_sample()
        if now[0] - self._last[0] < self.sample_s:  # too short a sample to tell a neighbour from noise
            if self._listened:
                return self._set(1, measured=False)
            time.sleep(self.sample_s - (now[0] - self._last[0]))
            now = cpu_sample()
        others = cores_busy_elsewhere(self._last, now)
        self._last = now
        return self._set(max(1, min(ceiling, int((os.cpu_count() or 1) - others + MARGIN))), measured=True)

    def _set(self, threads: int, measured: bool) -> int:
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self.threads = _GIVEN["chosen"] = threads
        self._measured = measured
        return threads

    def __call__(self, event: Any) -> None:
        """A run listener: re-choose at any event (a run emits them between steps: epoch and level ends)
        once `sample_s` (first choice) or `RECHOOSE_S` (later ones) have passed."""
        if self._last is not None:
            now = cpu_sample()
            if now[0] - self._last[0] >= (RECHOOSE_S if self._measured else self.sample_s):
                self.choose(now)
