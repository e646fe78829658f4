"""The value objects the phase-detection steps pass along: the settings, the per-level curve and what was found."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sddlab.phases.landmarks import Landmark


def aggregate_levels(table: pd.DataFrame, test: str = "test_acc", train: str = "train_acc_noisy") -> pd.DataFrame:
    """Mean per level over seeds: level, sparsity, test_acc, test_se, train_acc_noisy, n (sorted by level)."""
    required = ["level", "sparsity", test, train]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise KeyError(f"level table lacks columns: {', '.join(missing)}")
    rows = table.dropna(subset=[test])
    if rows.empty:
        raise ValueError(f"no level has a {test} value")
    grouped = rows.groupby("level", sort=True)
    n = grouped[test].count()
    std = grouped[test].std(ddof=1).fillna(0.0)
    out = pd.DataFrame(
        {
            "level": n.index.astype(int),
            "sparsity": grouped["sparsity"].mean().to_numpy(),
            "test_acc": grouped[test].mean().to_numpy(),
            "test_se": (std / np.sqrt(n)).to_numpy(),
            "train_acc_noisy": grouped[train].mean().to_numpy(),
            "n": n.to_numpy().astype(int),
        }
    )
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class Settings:
    """The arguments of `detect_phases`; stored in the report as a dict, in this order."""

    tolerance: float
    margin: float
    z: float
    slack: int
    smooth: int
    test: str
    train: str

    def __post_init__(self) -> None:
        if self.smooth < 1 or self.smooth % 2 == 0:
            raise ValueError(f"smooth must be a positive odd number of levels, got {self.smooth}")


@dataclass(frozen=True, eq=False)
class Curve:
    """Per-level means (index i = i-th level present, sorted) and the rule for a significant difference.

    ``raw`` is the mean test accuracy, ``test`` the same after the running mean (what decisions use),
    ``se`` its standard error over seeds, ``train`` the mean noisy-train accuracy, ``counts`` seeds per level.
    """

    levels: np.ndarray
    sparsity: np.ndarray
    raw: np.ndarray
    test: np.ndarray
    se: np.ndarray
    train: np.ndarray
    counts: np.ndarray
    margin: float
    z: float

    @classmethod
    def from_levels(cls, agg: pd.DataFrame, settings: Settings) -> Curve:
        """The curve of an `aggregate_levels` table, smoothed over ``settings.smooth`` levels."""
        raw = agg["test_acc"].to_numpy(dtype=float)
        smooth = settings.smooth
        test = pd.Series(raw).rolling(smooth, center=True, min_periods=1).mean().to_numpy() if smooth > 1 else raw
        return cls(levels=agg["level"].to_numpy(), sparsity=agg["sparsity"].to_numpy(dtype=float), raw=raw,
                   test=test, se=agg["test_se"].to_numpy(dtype=float),
                   train=agg["train_acc_noisy"].to_numpy(dtype=float), counts=agg["n"].to_numpy(),
                   margin=settings.margin, z=settings.z)

    @property
    def n(self) -> int:
        return len(self.levels)

    @property
    def n_seeds(self) -> int:
        return int(self.counts.max())

    def need(self, i: int, j: int) -> float:
        """Smallest difference between levels i and j that counts: ``max(margin, z * sqrt(se_i² + se_j²))``."""
        return max(self.margin, self.z * math.hypot(self.se[i], self.se[j]))

    def landmark(self, i: int | None) -> Landmark | None:
        """Level i as a landmark (raw mean test accuracy), None for None."""
        if i is None:
            return None
        return Landmark(level=int(self.levels[i]), sparsity=float(self.sparsity[i]), test_acc=float(self.raw[i]))

    def rows(self, phases: list[str]) -> list[dict]:
        """The report's per-level table rows, with one phase label per level."""
        return [
            {
                "level": int(self.levels[i]),
                "sparsity": float(self.sparsity[i]),
                "test_acc": float(self.raw[i]),
                "test_se": float(self.se[i]),
                "train_acc_noisy": float(self.train[i]),
                "n": int(self.counts[i]),
                "phase": phases[i],
            }
            for i in range(self.n)
        ]


@dataclass(frozen=True)
class Evidence:
    """The candidate dip (dense - minimum) and rise (peak - minimum), and how large each must be."""

    dip: float | None
    rise: float | None
    need_dip: float
    need_rise: float

    @property
    def double_descent(self) -> bool:
        dip_ok = self.dip is not None and self.dip >= self.need_dip
        rise_ok = self.rise is not None and self.rise >= self.need_rise
        return dip_ok and rise_ok


@dataclass(frozen=True)
class Findings:
    """Curve indices (not level numbers) of the landmarks, None where there is none, and the evidence."""

    threshold: int | None
    minimum: int | None
    peak: int | None
    evidence: Evidence
    collapse: int | None

    @property
    def double_descent(self) -> bool:
        return self.evidence.double_descent
