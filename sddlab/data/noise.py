"""Label noise on the training set: exact counts, each draw from its own seeded stream."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sddlab.errors import ConfigError


@dataclass(frozen=True)
class NoisyLabels:
    """Noisy labels with the clean ones, which examples were drawn, and which now differ."""

    labels: np.ndarray  # the labels training sees
    clean: np.ndarray
    selected: np.ndarray  # bool: drawn for corruption (for `random`, the new label may equal the old)
    nominal_rate: float

    @property
    def noisy(self) -> np.ndarray:
        """bool: the training label differs from the true label."""
        return self.labels != self.clean

    @property
    def effective_rate(self) -> float:
        return float(self.noisy.mean()) if len(self.labels) else 0.0


def _count(rate: float, n: int) -> int:
    return math.ceil(round(rate * n, 9))


def corrupt_labels(
    labels: np.ndarray,
    num_classes: int,
    kind: str,
    rate: float,
    rng: np.random.Generator,
    asymmetric: dict[int, int] | None = None,
) -> NoisyLabels:
    """Corrupt ⌈rate·N⌉ training labels (per source class for `asymmetric`).

    random: new label uniform over all C classes (the paper's code; may keep the true label).
    symmetric: new label uniform over the C−1 other classes.  pairflip: i → i+1 mod C.
    asymmetric: the data set's class map (e.g. MNIST 2→7, 3→8, 5↔6).
    """
    clean = np.asarray(labels, dtype=np.int64)
    noisy = clean.copy()
    selected = np.zeros(len(clean), dtype=bool)
    if rate > 0:
        if kind == "asymmetric":
            if not asymmetric:
                raise ConfigError("noise.type", kind,
                                  "random, symmetric or pairflip for this data set (no asymmetric map)")
            for source in sorted(asymmetric):
                members = np.flatnonzero(clean == source)
                chosen = rng.choice(members, size=_count(rate, len(members)), replace=False)
                selected[chosen] = True
                noisy[chosen] = asymmetric[source]
        else:
            chosen = rng.choice(len(clean), size=_count(rate, len(clean)), replace=False)
            selected[chosen] = True
            if kind == "random":
                noisy[chosen] = rng.integers(0, num_classes, size=len(chosen))
            elif kind == "symmetric":
                noisy[chosen] = (clean[chosen] + rng.integers(1, num_classes, size=len(chosen))) % num_classes
            elif kind == "pairflip":
                noisy[chosen] = (clean[chosen] + 1) % num_classes
            else:
                raise ConfigError("noise.type", kind, "random, symmetric, pairflip or asymmetric")
    return NoisyLabels(labels=noisy, clean=clean, selected=selected, nominal_rate=rate)


def noise_limit(noise_type: str, num_classes: int) -> float | None:
    """The rate at or above which the true class is no longer the most likely training label (None: never).

    symmetric: the true class keeps 1 - e, each other class e / (C - 1), so the limit is (C - 1) / C;
    pairflip and asymmetric: the true class keeps 1 - e, the one it flips to e, so 1/2; random (redrawn from
    all C classes, the true one included) keeps the true class ahead for every rate below 1.
    """
    return {"symmetric": (num_classes - 1) / num_classes, "pairflip": 0.5, "asymmetric": 0.5}.get(noise_type)
