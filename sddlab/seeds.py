"""Independent, named random streams derived from one experiment seed."""

from __future__ import annotations

import zlib

import numpy as np
import torch


def stream_seed(seed: int, *names: object) -> int:
    """A 63-bit seed for the stream `names` (e.g. 'noise', or 'order', epoch); streams never overlap."""
    words = [int(seed)] + [zlib.crc32(str(name).encode()) for name in names]
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> 1


def numpy_stream(seed: int, *names: object) -> np.random.Generator:
    return np.random.default_rng(stream_seed(seed, *names))


def torch_stream(seed: int, *names: object, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(stream_seed(seed, *names))
