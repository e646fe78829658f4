"""Is this run slower than it should be, and why? A listener of a run's events for status lines.

A run is slow when an epoch takes `factor` times its fastest epoch so far, or when other processes keep
so many cores busy that this process's threads must share them (measured on a 2-core CPU: two intra-op
threads beside one busy process made a lab run 4.9× slower). The reason is what the machine shows: how
many cores other processes keep busy, and the busiest of them (with psutil, when installed), else the
load average against the core count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sddlab.events import EpochEnded, Event, RunStarted


@dataclass(frozen=True)
class Load:
    """Cores kept busy by other processes (of `cores`), and the busiest of them as (name, pid, % of a core)."""

    others: float
    cores: int
    busiest: list[tuple[str, int, float]] = field(default_factory=list)


class LoadSampler:
    """CPU use of other processes since the previous sample (psutil when installed, else the load average)."""

    def __init__(self, top: int = 3, min_share: float = 20.0):
        """Name at most `top` processes, each using at least `min_share` % of a core."""
        self.top, self.min_share = top, min_share
        self.cores = os.cpu_count() or 1
        try:
            import psutil
        except ImportError:
            psutil = None
        self._psutil = psutil
        self._own = (time.monotonic(), time.process_time())
        if psutil is not None:
            psutil.cpu_percent(None)
            self._processes: dict[int, object] = {}
            self._busiest()

    def _busiest(self) -> list[tuple[str, int, float]]:
        """Other processes' CPU use since the last call (each Process object remembers its last reading)."""
        psutil, seen, found = self._psutil, {}, []
        for process in psutil.process_iter(["name"]):
            known = self._processes.get(process.pid, process)
            seen[process.pid] = known
            try:
                share = known.cpu_percent(None)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if process.pid != os.getpid() and share >= self.min_share:
                found.append((process.info.get("name") or "?", process.pid, share))
        self._processes = seen
        return sorted(found, key=lambda item: -item[2])[: self.top]

    def _own_cores(self) -> float:
        """Cores this process used since the previous sample."""
        wall, cpu = time.monotonic(), time.process_time()
        used = (cpu - self._own[1]) / max(wall - self._own[0], 1e-6)
        self._own = (wall, cpu)
        return used

    def sample(self) -> Load:
        """The load since the previous sample."""
        own = self._own_cores()
        if self._psutil is not None:
            busy = self._psutil.cpu_percent(None) / 100.0 * self.cores
            return Load(max(0.0, busy - own), self.cores, self._busiest())
        return Load(max(0.0, os.getloadavg()[0] - own), self.cores)


def describe_load(load: Load) -> str:
    """'other processes keep 1.0 of 2 cores busy: python (pid 12) 99%' (no names without psutil)."""
    text = f"other processes keep {load.others:.1f} of {load.cores} cores busy"
    if load.busiest:
        text += ": " + ", ".join(f"{name} (pid {pid}) {share:.0f}%" for name, pid, share in load.busiest)
    return text


class Pace:
    """A run listener: after each epoch, `note` says whether the run is slower than expected and why.

    `on_note(text)` is called when the note starts, changes its reason, or clears (with ''); `threads` is
    the intra-op thread count this run uses (torch.get_num_threads() when None); samples are at most one a
    `interval` seconds apart.
    """

    def __init__(self, on_note: Callable[[str], None] | None = None, *, factor: float = 1.5,
                 threads: int | None = None, sampler: LoadSampler | None = None, interval: float = 1.0):
        self.on_note, self.factor, self.interval = on_note, factor, interval
        self._threads = threads
        self._sampler = sampler
        self.fastest: float | None = None
        self.note = ""
        self._key: tuple = ()
        self._sampled = -float("inf")
        self._load: Load | None = None

    @property
    def threads(self) -> int:
        if self._threads is None:
            import torch

            return torch.get_num_threads()
        return self._threads

    def reset(self) -> None:
        """Forget the run (its fastest epoch, the note) without calling `on_note`: the run has ended."""
        self.fastest, self.note, self._key, self._load = None, "", (), None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.reset()
            self._sampler = self._sampler or LoadSampler()
        elif isinstance(event, EpochEnded) and event.level >= 0:
            self._epoch(event.stats.seconds)

    def _epoch(self, seconds: float) -> None:
        now = time.monotonic()
        if self._sampler is None:
            self._sampler = LoadSampler()
        if self._load is None or now - self._sampled >= self.interval:
            self._load, self._sampled = self._sampler.sample(), now
        load = self._load
        ratio = seconds / self.fastest if self.fastest else 1.0
        self.fastest = seconds if self.fastest is None else min(self.fastest, seconds)
        crowded = load.others >= 0.5 and load.others + self.threads > load.cores + 0.25
        if ratio < self.factor and not crowded:
            self._say("", ())
            return
        slower = f"{ratio:.1f}× slower than its fastest epoch" if ratio >= self.factor else "slower than expected"
        reason = (describe_load(load) + f", beside this run's {self.threads} thread(s)" if load.others >= 0.5
                  else f"no other busy process found ({load.others:.1f} of {load.cores} cores busy)")
        self._say(f"slow: this run is {slower}: {reason}",
                  (ratio >= self.factor, crowded, tuple(name for name, _, _ in load.busiest)))

    def _say(self, text: str, key: tuple) -> None:
        self.note = text
        if key != self._key:
            self._key = key
            if self.on_note is not None:
                self.on_note(text)


def print_note(text: str) -> None:
    """An `on_note` for notebooks and terminals: the note printed above the progress bar (nothing when it clears)."""
    if text:
        from tqdm.auto import tqdm

        tqdm.write(text)
