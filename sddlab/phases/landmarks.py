"""What `detect_phases` returns: the phase names, a landmark on the curve, and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from sddlab.io import json_safe

PHASES: tuple[str, ...] = ("light", "critical", "sweet", "collapsed")


@dataclass(frozen=True)
class Landmark:
    """One level of the curve: its level number, sparsity and (unsmoothed, seed-mean) test accuracy."""

    level: int
    sparsity: float
    test_acc: float


@dataclass
class PhaseReport:
    """Where the phases are; levels are the table's level numbers, accuracies per-level means.

    ``critical`` and ``sweet`` are None without double descent; ``dip`` (dense minus candidate
    minimum) and ``rise`` (candidate peak minus minimum) are reported either way, as the evidence.
    ``interpolation_threshold`` is the first level that no longer fits the noisy labels, if any;
    ``collapse`` the first level from which test accuracy stays significantly low, if any.
    """

    has_double_descent: bool
    summary: str
    dense_test_acc: float
    interpolation_threshold: Landmark | None
    critical: Landmark | None
    sweet: Landmark | None
    collapse: Landmark | None
    dip: float | None
    rise: float | None
    peak_above_dense: bool | None
    n_seeds: int
    levels: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (plain Python types, NaN as None); landmarks become nested dicts or None."""
        return json_safe(asdict(self))

    def to_frame(self) -> pd.DataFrame:
        """The per-level table: level, sparsity, test_acc, test_se, train_acc_noisy, n, phase."""
        return pd.DataFrame(self.levels)

    def phase_of(self, level: int) -> str:
        """The phase label of one level."""
        for row in self.levels:
            if row["level"] == level:
                return row["phase"]
        raise KeyError(f"level {level} not in the report")
