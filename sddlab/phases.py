"""Locate the four phases of sparse double descent in a table of pruning levels.

Input: one row per (level, seed) with columns ``level`` (0 = dense), ``sparsity``, the test accuracy
and the accuracy on the *noisy* training labels; a ``seed`` column (or simply repeated levels) means
several runs, which are averaged per level first. Decisions compare accuracies with a margin that
grows with seed noise: two levels differ only if they differ by at least
``max(margin, z * sqrt(se_i**2 + se_j**2))``, ``se`` being the standard error of the mean over seeds
(zero for a single seed). An optional centred running mean over ``smooth`` levels is applied to the
mean test accuracy before locating anything.

The landmarks, in the paper's terms (He et al. 2022, Fig. 1):

- **interpolation threshold**: first level whose mean noisy-train accuracy is below ``1 - tolerance``.
- **critical minimum**: the lowest test accuracy among levels 1 .. threshold + ``slack`` ("at or around
  where train accuracy is still high", never the dense level). If the dense model itself does not
  fit the noisy labels, the window ends where train accuracy drops ``tolerance`` below the dense one.
- **sweet peak**: the highest test accuracy after the critical minimum.
- **double descent** if the minimum is significantly below the dense model *and* the peak
  significantly above the minimum. The peak need not beat the dense model (it does not in the paper's
  CIFAR-100 run); ``peak_above_dense`` says whether it does.
- **collapse**: first level after the peak from which test accuracy stays significantly below the peak
  (without double descent: below the best level).

Phases per level: ``light`` (before test falls significantly below dense for good), ``critical`` (from
there to just before test has recovered half the way from the minimum to the peak), ``sweet`` (from
there to just before the collapse), ``collapsed``. Without double descent only light and collapsed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sddlab.io import json_safe

PHASES: tuple[str, ...] = ("light", "critical", "sweet", "collapsed")


@dataclass
class PhaseReport:
    """Where the phases are; levels are the table's level numbers, accuracies per-level means.

    Critical and sweet fields are None without double descent; ``dip`` (dense minus candidate
    minimum) and ``rise`` (candidate peak minus minimum) are reported either way, as the evidence.
    """

    has_double_descent: bool
    summary: str
    dense_test_acc: float
    interpolation_threshold: int | None
    interpolation_threshold_sparsity: float | None
    critical_level: int | None
    critical_sparsity: float | None
    critical_test_acc: float | None
    sweet_level: int | None
    sweet_sparsity: float | None
    sweet_test_acc: float | None
    collapse_level: int | None
    collapse_sparsity: float | None
    collapse_test_acc: float | None
    dip: float | None
    rise: float | None
    peak_above_dense: bool | None
    n_seeds: int
    levels: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (plain Python types, NaN as None)."""
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


def _pct(sparsity: float) -> str:
    return f"{100 * sparsity:.1f} % sparsity"


def detect_phases(
    table: pd.DataFrame,
    tolerance: float = 0.01,
    *,
    margin: float = 0.01,
    z: float = 2.0,
    slack: int = 2,
    smooth: int = 1,
    test: str = "test_acc",
    train: str = "train_acc_noisy",
) -> PhaseReport:
    """Find the interpolation threshold, critical minimum, sweet peak and collapse; label every level.

    ``tolerance``: train accuracy below ``1 - tolerance`` no longer fits the noisy labels.
    ``margin``: smallest accuracy difference that counts (absolute), raised to ``z`` standard errors
    of the difference when there are several seeds. ``slack``: levels past the interpolation threshold
    still searched for the critical minimum. ``smooth``: odd window of a centred running mean over
    levels applied to mean test accuracy (1 = none). ``test``/``train`` name the columns, so e.g. a
    best-epoch accuracy column can be analysed the same way.
    """
    if smooth < 1 or smooth % 2 == 0:
        raise ValueError(f"smooth must be a positive odd number of levels, got {smooth}")
    agg = aggregate_levels(table, test, train)
    levels = agg["level"].to_numpy()
    sparsity = agg["sparsity"].to_numpy(dtype=float)
    raw = agg["test_acc"].to_numpy(dtype=float)
    t = pd.Series(raw).rolling(smooth, center=True, min_periods=1).mean().to_numpy() if smooth > 1 else raw
    se = agg["test_se"].to_numpy(dtype=float)
    r = agg["train_acc_noisy"].to_numpy(dtype=float)
    n = len(agg)
    n_seeds = int(agg["n"].max())
    settings = {
        "tolerance": tolerance,
        "margin": margin,
        "z": z,
        "slack": slack,
        "smooth": smooth,
        "test": test,
        "train": train,
    }

    def sig(i: int, j: int) -> float:
        return max(margin, z * math.hypot(se[i], se[j]))

    below = [i for i in range(n) if not np.isnan(r[i]) and r[i] < 1 - tolerance]
    threshold = below[0] if below else None

    # --- candidate critical minimum and sweet peak -------------------------------------------
    i_min = i_peak = None
    dip = rise = None
    if n >= 3:
        if threshold is None:
            end = n - 1
        elif threshold > 0:
            end = min(n - 1, threshold + slack)
        else:  # the dense model does not fit the noisy labels: use a drop relative to it instead
            rel = [i for i in range(1, n) if not np.isnan(r[i]) and r[i] < r[0] - tolerance]
            end = min(n - 1, (rel[0] if rel else n - 1) + slack)
        window = np.arange(1, end + 1)
        i_min = int(window[np.argmin(t[window])])
        if i_min < n - 1:
            i_peak = int(i_min + 1 + np.argmax(t[i_min + 1 :]))
            rise = float(t[i_peak] - t[i_min])
        dip = float(t[0] - t[i_min])
    need_dip = sig(0, i_min) if i_min is not None else margin
    need_rise = sig(i_min, i_peak) if i_min is not None and i_peak is not None else margin
    dip_ok = dip is not None and dip >= need_dip
    rise_ok = rise is not None and rise >= need_rise
    dd = dip_ok and rise_ok

    # --- collapse: from here on test stays significantly below the peak (or the best level) ------
    ref = i_peak if dd else int(np.argmax(t))
    collapse = None
    for k in range(n - 1, ref, -1):
        if t[k] < t[ref] - sig(ref, k):
            collapse = k
        else:
            break

    # --- phase labels ---------------------------------------------------------------------------
    phase = ["light"] * n
    if dd:
        assert i_min is not None and i_peak is not None
        start = i_min
        while start - 1 >= 1 and t[start - 1] < t[0] - sig(0, start - 1):
            start -= 1
        half = (t[i_min] + t[i_peak]) / 2
        sweet_start = next(i for i in range(i_min + 1, i_peak + 1) if t[i] >= half)
        for i in range(start, sweet_start):
            phase[i] = "critical"
        for i in range(sweet_start, n):
            phase[i] = "sweet"
    if collapse is not None:
        for i in range(collapse, n):
            phase[i] = "collapsed"

    def at(i: int | None, values: np.ndarray) -> float | None:
        return None if i is None else float(values[i])

    def lvl(i: int | None) -> int | None:
        return None if i is None else int(levels[i])

    summary = _summary(
        dd=dd,
        n=n,
        n_seeds=n_seeds,
        t=t,
        raw=raw,
        levels=levels,
        sparsity=sparsity,
        i_min=i_min,
        i_peak=i_peak,
        dip=dip,
        rise=rise,
        need_dip=need_dip,
        need_rise=need_rise,
        collapse=collapse,
        threshold=threshold,
        tolerance=tolerance,
        margin=margin,
        dense_train=float(r[0]),
    )
    table_rows = [
        {
            "level": int(levels[i]),
            "sparsity": float(sparsity[i]),
            "test_acc": float(raw[i]),
            "test_se": float(se[i]),
            "train_acc_noisy": float(r[i]),
            "n": int(agg["n"].iloc[i]),
            "phase": phase[i],
        }
        for i in range(n)
    ]
    return PhaseReport(
        has_double_descent=bool(dd),
        summary=summary,
        dense_test_acc=float(raw[0]),
        interpolation_threshold=lvl(threshold),
        interpolation_threshold_sparsity=at(threshold, sparsity),
        critical_level=lvl(i_min) if dd else None,
        critical_sparsity=at(i_min, sparsity) if dd else None,
        critical_test_acc=at(i_min, raw) if dd else None,
        sweet_level=lvl(i_peak) if dd else None,
        sweet_sparsity=at(i_peak, sparsity) if dd else None,
        sweet_test_acc=at(i_peak, raw) if dd else None,
        collapse_level=lvl(collapse),
        collapse_sparsity=at(collapse, sparsity),
        collapse_test_acc=at(collapse, raw),
        dip=dip,
        rise=rise,
        peak_above_dense=bool(raw[i_peak] > raw[0]) if dd and i_peak is not None else None,
        n_seeds=n_seeds,
        levels=table_rows,
        settings=settings,
    )


def _summary(
    *,
    dd: bool,
    n: int,
    n_seeds: int,
    t: np.ndarray,
    raw: np.ndarray,
    levels: np.ndarray,
    sparsity: np.ndarray,
    i_min: int | None,
    i_peak: int | None,
    dip: float | None,
    rise: float | None,
    need_dip: float,
    need_rise: float,
    collapse: int | None,
    threshold: int | None,
    tolerance: float,
    margin: float,
    dense_train: float,
) -> str:
    """Plain-language description of what `detect_phases` found."""
    seeds = f" (mean of {n_seeds} seeds)" if n_seeds > 1 else ""

    def where(i: int) -> str:
        return f"{raw[i]:.3f} at level {int(levels[i])} ({_pct(sparsity[i])})"

    if threshold is None:
        train = f"Noisy-train accuracy never falls below {1 - tolerance:.3f}."
    elif threshold == 0:
        train = f"The dense model does not fit the noisy labels (train accuracy {dense_train:.3f})."
    else:
        train = (
            f"Noisy-train accuracy first falls below {1 - tolerance:.3f} at level {int(levels[threshold])} "
            f"({_pct(sparsity[threshold])})."
        )
    if n < 3:
        return f"No double descent can be judged from {n} level(s){seeds}. {train}"
    if dd:
        assert i_min is not None and i_peak is not None
        versus = "above" if raw[i_peak] > raw[0] else "not above"
        text = (
            f"Sparse double descent{seeds}: test accuracy falls from {raw[0]:.3f} (dense) to a critical minimum "
            f"of {where(i_min)}, rises to a sweet peak of {where(i_peak)}, {versus} the dense model"
        )
        if collapse is not None:
            text += (
                f", then collapses from level {int(levels[collapse])} ({_pct(sparsity[collapse])}, "
                f"{raw[collapse]:.3f})."
            )
        else:
            text += ", and does not collapse within the levels given."
        return f"{text} {train}"
    largest_rise = float(np.max(t - np.minimum.accumulate(t)))  # over any level to any later one
    if largest_rise <= margin and t[-1] < t[0] - margin:
        shape = (
            f"test accuracy declines monotonically (never rises by more than {margin:.3f}) from "
            f"{raw[0]:.3f} (dense) to {where(n - 1)}"
        )
    elif dip is None or i_min is None or dip < need_dip:
        shape = (
            f"test accuracy never falls significantly below the dense model's {raw[0]:.3f} where the noisy "
            f"labels are still fitted (largest dip {max(dip or 0.0, 0.0):.3f}, needed {need_dip:.3f})"
        )
    else:
        shape = (
            f"test accuracy dips to {where(i_min)} but does not recover significantly afterwards "
            f"(rise {max(rise or 0.0, 0.0):.3f}, needed {need_rise:.3f})"
        )
    text = f"No double descent{seeds}: {shape}."
    if collapse is not None:
        text += f" Test accuracy falls for good from level {int(levels[collapse])} ({_pct(sparsity[collapse])})."
    return f"{text} {train}"


# -- the course lab's checks: which phases a student's curve shows, in words ---------------------
PASS, MISS = "✔", "✘"


def check_curve(table: pd.DataFrame) -> list[str]:
    """One line per phase: whether the curve shows it, with the numbers that decide."""
    report = detect_phases(table)
    dense = report.dense_test_acc
    lines = [f"dense network: test accuracy {dense:.1%}"]
    if report.critical_level is not None:
        lines.append(f"{PASS} critical phase: test accuracy falls to {report.critical_test_acc:.1%} at "
                     f"{report.critical_sparsity:.1%} sparsity while the net still fits the noisy labels")
    else:
        lines.append(f"{MISS} critical phase: no clear dip below the dense accuracy")
    if report.sweet_level is not None:
        above = "above" if report.peak_above_dense else "below"
        lines.append(f"{PASS} sweet phase: test accuracy rises to {report.sweet_test_acc:.1%} at "
                     f"{report.sweet_sparsity:.1%} sparsity ({above} the dense network)")
    else:
        lines.append(f"{MISS} sweet phase: no rise after the dip")
    if report.collapse_level is not None:
        lines.append(f"{PASS} collapsed phase: accuracy falls to {report.collapse_test_acc:.1%} at "
                     f"{report.collapse_sparsity:.1%} sparsity: too few weights are left")
    else:
        lines.append(f"{MISS} collapsed phase: not reached; prune further (more levels)")
    lines.append(("double descent: yes — " if report.has_double_descent else "double descent: no — ") + report.summary)
    return lines


def print_checks(table: pd.DataFrame) -> None:
    for line in check_curve(table):
        print(line)
