"""`detect_phases` as a pipeline of named steps over a `Curve`.

aggregate the levels -> interpolation threshold -> critical window and minimum -> sweet peak ->
significance of dip and rise -> collapse -> label the levels -> describe. Steps work on curve indices
(the i-th level present); the report turns them into level numbers.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from sddlab.phases.curve import Curve, Evidence, Findings, Settings, aggregate_levels
from sddlab.phases.landmarks import PhaseReport
from sddlab.phases.summary import describe


def interpolation_threshold(curve: Curve, tolerance: float) -> int | None:
    """First index whose mean noisy-train accuracy is below ``1 - tolerance`` (NaN never counts)."""
    train = curve.train
    return next((i for i in range(curve.n) if not np.isnan(train[i]) and train[i] < 1 - tolerance), None)


def critical_window(curve: Curve, threshold: int | None, settings: Settings) -> np.ndarray:
    """Indices searched for the critical minimum: 1 .. threshold + slack (never the dense level).

    No threshold: all levels. A dense model that does not fit the noisy labels (threshold 0): the
    window ends ``slack`` levels after train accuracy first drops ``tolerance`` below the dense one.
    """
    n, train = curve.n, curve.train
    if threshold is None:
        end = n - 1
    elif threshold > 0:
        end = min(n - 1, threshold + settings.slack)
    else:
        drop = (i for i in range(1, n) if not np.isnan(train[i]) and train[i] < train[0] - settings.tolerance)
        end = min(n - 1, next(drop, n - 1) + settings.slack)
    return np.arange(1, end + 1)


def critical_minimum(curve: Curve, threshold: int | None, settings: Settings) -> int | None:
    """Index of the lowest (smoothed) test accuracy in the critical window; None below three levels."""
    if curve.n < 3:
        return None
    window = critical_window(curve, threshold, settings)
    return int(window[np.argmin(curve.test[window])])


def sweet_peak(curve: Curve, minimum: int | None) -> int | None:
    """Index of the highest (smoothed) test accuracy after the minimum; None if nothing follows it."""
    if minimum is None or minimum >= curve.n - 1:
        return None
    return int(minimum + 1 + np.argmax(curve.test[minimum + 1 :]))


def weigh(curve: Curve, minimum: int | None, peak: int | None) -> Evidence:
    """The dip and rise of the candidates and the differences they need to be significant."""
    t = curve.test
    return Evidence(
        dip=None if minimum is None else float(t[0] - t[minimum]),
        rise=None if minimum is None or peak is None else float(t[peak] - t[minimum]),
        need_dip=curve.margin if minimum is None else curve.need(0, minimum),
        need_rise=curve.margin if minimum is None or peak is None else curve.need(minimum, peak),
    )


def collapse_start(curve: Curve, reference: int) -> int | None:
    """First index after ``reference`` from which test stays significantly below it, or None."""
    t, collapse = curve.test, None
    for k in range(curve.n - 1, reference, -1):
        if t[k] < t[reference] - curve.need(reference, k):
            collapse = k
        else:
            break
    return collapse


def critical_start(curve: Curve, minimum: int) -> int:
    """Walk back from the minimum while test stays significantly below dense (never onto the dense level)."""
    t, start = curve.test, minimum
    while start - 1 >= 1 and t[start - 1] < t[0] - curve.need(0, start - 1):
        start -= 1
    return start


def sweet_start(curve: Curve, minimum: int, peak: int) -> int:
    """First index after the minimum where test has recovered half the way to the peak."""
    t = curve.test
    half = (t[minimum] + t[peak]) / 2
    return next(i for i in range(minimum + 1, peak + 1) if t[i] >= half)


def label_levels(curve: Curve, found: Findings) -> list[str]:
    """One phase per index: light, then (with double descent) critical and sweet, then collapsed."""
    phase = ["light"] * curve.n
    if found.double_descent:
        assert found.minimum is not None and found.peak is not None
        sweet = sweet_start(curve, found.minimum, found.peak)
        for i in range(critical_start(curve, found.minimum), sweet):
            phase[i] = "critical"
        for i in range(sweet, curve.n):
            phase[i] = "sweet"
    if found.collapse is not None:
        for i in range(found.collapse, curve.n):
            phase[i] = "collapsed"
    return phase


def find_landmarks(curve: Curve, settings: Settings) -> Findings:
    """Threshold, critical minimum, sweet peak, their significance and the collapse, as curve indices."""
    threshold = interpolation_threshold(curve, settings.tolerance)
    minimum = critical_minimum(curve, threshold, settings)
    peak = sweet_peak(curve, minimum)
    evidence = weigh(curve, minimum, peak)
    reference = peak if evidence.double_descent and peak is not None else int(np.argmax(curve.test))
    return Findings(threshold, minimum, peak, evidence, collapse_start(curve, reference))


def build_report(curve: Curve, found: Findings, settings: Settings) -> PhaseReport:
    """The report: landmarks as level numbers with raw mean accuracies, per-level phases, the summary."""
    dd = found.double_descent
    return PhaseReport(
        has_double_descent=dd,
        summary=describe(curve, found, settings),
        dense_test_acc=float(curve.raw[0]),
        interpolation_threshold=curve.landmark(found.threshold),
        critical=curve.landmark(found.minimum) if dd else None,
        sweet=curve.landmark(found.peak) if dd else None,
        collapse=curve.landmark(found.collapse),
        dip=found.evidence.dip,
        rise=found.evidence.rise,
        peak_above_dense=bool(curve.raw[found.peak] > curve.raw[0]) if dd and found.peak is not None else None,
        n_seeds=curve.n_seeds,
        levels=curve.rows(label_levels(curve, found)),
        settings=asdict(settings),
    )


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
    settings = Settings(tolerance, margin, z, slack, smooth, test, train)
    if "diverged" in table:  # diverged levels have no measurements: skipped, the curve goes around them
        table = table[table["diverged"].isna()]
    curve = Curve.from_levels(aggregate_levels(table, test, train), settings)
    return build_report(curve, find_landmarks(curve, settings), settings)
