"""Limits said up front: a sweep's name and size, worker counts, and whether a model fits the machine.

Each check is a one-line `ConfigError` (field, value, what is allowed) raised before anything starts: a
sweep's size is the product of its axes' lengths and its seeds, computed before a single point is built;
a model's parameter count comes from building it on PyTorch's `meta` device, which allocates nothing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from typing import Any

import torch

from sddlab.config import Config
from sddlab.data import DATASETS
from sddlab.errors import ConfigError
from sddlab.models.registry import MODELS

MAX_POINTS = 10_000  # runs in one sweep (grid points x seeds) unless the sweep raises it (--max-points)
NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
NAME_ALLOWED = ("a plain name of 1 to 100 letters, digits, '-', '_' or '.' (no '/', no '..', not dots alone): "
                "it names the folder results/sweeps/NAME")
# fp32 copies a run holds per parameter: weights, gradients, two optimizer moments, the dense init, the
# rewind point, the level's start and previous weights, and a checkpoint being serialised
BYTES_PER_PARAMETER = 9 * 4


def check_sweep_name(field: str, name: Any) -> str:
    """`name` when it is a plain folder name (see NAME_ALLOWED); else a `ConfigError` naming `field`."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name or not name.strip("."):
        raise ConfigError(field, name, NAME_ALLOWED)
    return name


def check_count(field: str, value: Any) -> int | None:
    """A worker or thread count: None (the default) or an integer of at least 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(field, value, "an integer of at least 1 (or leave it out for the default)")
    return value


def check_points(lengths: Iterable[int], seeds: int, limit: Any = MAX_POINTS) -> int:
    """The number of runs of a sweep (the product of its axes' lengths, times its seeds), refused above
    `limit` before any point is built; returns it."""
    limit = MAX_POINTS if limit is None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError("max_points", limit, "an integer of at least 1")
    grid_points = math.prod(lengths)
    points = grid_points * seeds
    if points > limit:
        raise ConfigError("grid x seeds", f"{grid_points} grid point(s) x {seeds} seed(s) = {points} runs",
                          f"at most {limit} runs; raise the limit with --max-points or max_points in the sweep "
                          "file if you mean it")
    return points


def parameter_count(config: Config, meta: bool = False) -> int:
    """The model's number of parameters and buffers, from building it on the `meta` device (no memory).

    An MLP's count is its widths' sum of (inputs + 1) x outputs, without building it (`meta` forces the
    build): a meta build costs milliseconds a layer."""
    data = DATASETS[config.data.name]
    if config.model.name == "mlp" and not meta:
        widths = (math.prod(data.input_shape), *config.model.hidden, data.num_classes)
        return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=False))
    model = meta_model(config)
    return sum(t.numel() for t in [*model.parameters(), *model.buffers()])


def meta_model(config: Config) -> torch.nn.Module:
    """The model's layers on the `meta` device (no memory, no initialisation); a size past what a tensor
    can describe is refused in one line naming the size field."""
    data = DATASETS[config.data.name]
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            return MODELS[config.model.name].build(config.model, tuple(data.input_shape), data.num_classes)
    except (RuntimeError, OverflowError, ValueError) as error:  # sizes past what a tensor can describe
        field, value = _size_field(config)
        raise ConfigError(field, value, f"a model whose size a tensor can hold ({str(error).splitlines()[0]})") \
            from None


def _size_field(config: Config) -> tuple[str, object]:
    """The field that sets the model's size, and its value as an error shows it (long lists summarised)."""
    if config.model.name != "mlp":
        return "model.width", config.model.width
    hidden = config.model.hidden
    return "model.hidden", list(hidden) if len(hidden) <= 8 else (
        f"{len(hidden)} layers of {min(hidden)} to {max(hidden)} units")


def available_memory(device: str) -> int:
    """Bytes this process may still use on `device`: free GPU memory, or the RAM the kernel calls available."""
    if torch.device(device).type == "cuda":
        return torch.cuda.mem_get_info(torch.device(device))[0]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_model_fits(config: Config, device: str = "cpu", copies: int = 1) -> int:
    """Refuse, in one line, a model whose parameters (times the copies a run keeps, times `copies` runs at
    once) would not fit in the device's available memory; returns the parameter count."""
    field, value = _size_field(config)
    count = parameter_count(config)
    need, have = count * BYTES_PER_PARAMETER * copies, available_memory(device)
    if need > have:
        raise ConfigError(field, value, f"a model that fits this machine: {config.model.name} with {_amount(count)} "
                          f"parameters needs about {_amount(need / 2**30)} GiB ({BYTES_PER_PARAMETER} bytes a "
                          f"parameter{f' x {copies} runs' if copies > 1 else ''}), {have / 2**30:,.1f} GiB are "
                          f"available on {device}")
    return count


def _amount(value: float) -> str:
    """A number for a message: with thousands separators, or in scientific notation past a trillion."""
    if value >= 1e12:
        return f"{value:.3g}"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
