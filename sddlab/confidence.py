"""Calibration of a classifier's confidence: expected calibration error over equal-width bins (Guo et al.,
2017) and over equal-mass bins (the adaptive variant, Nixon et al., 2019), the reliability bins behind
them, negative log-likelihood and mean confidence. Pure functions of arrays: no files, no models.

`confidence` is the top softmax probability of each example and `correct` whether its top class is the
true one. ECE = sum over bins of (examples in the bin / all) x |accuracy in the bin - mean confidence in it|.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BINS = 15  # the usual choice since Guo et al. (2017)


def _checked(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    """(confidence as float64 in [0, 1], correct as bool), one-dimensional, non-empty, of equal length."""
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    right = np.asarray(correct).reshape(-1).astype(bool)
    if conf.size == 0 or conf.size != right.size:
        raise ValueError(f"need non-empty confidence and correct of equal length, got {conf.size} and {right.size}")
    if not np.all((conf >= 0) & (conf <= 1)):
        raise ValueError("confidence must lie in [0, 1] (a probability)")
    return conf, right


def _bin_index(conf: np.ndarray, bins: int, adaptive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each example's bin and the bins' edges. Equal width: bin i holds (i/B, (i+1)/B], zero in the first.
    Equal mass: the examples sorted by confidence, cut into `bins` runs of sizes differing by at most one."""
    if bins < 1:
        raise ValueError(f"bins={bins} is not allowed: a positive number of bins")
    if not adaptive:
        edges = np.linspace(0.0, 1.0, bins + 1)
        return np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1), edges
    runs = np.array_split(np.argsort(conf, kind="stable"), min(bins, conf.size))
    index = np.empty(conf.size, dtype=np.int64)
    for b, members in enumerate(runs):
        index[members] = b
    return index, np.array([0.0, *(conf[members[0]] for members in runs[1:]), 1.0])


def reliability_bins(confidence: Any, correct: Any, bins: int = BINS, adaptive: bool = False) -> pd.DataFrame:
    """One row per non-empty bin: its edges, example count, mean confidence, accuracy and their gap
    (accuracy - confidence: negative means over-confident); what a reliability diagram draws."""
    conf, right = _checked(confidence, correct)
    index, edges = _bin_index(conf, bins, adaptive)
    rows = []
    for b in np.unique(index):
        inside = index == b
        rows.append({"bin": int(b), "lower": float(edges[b]), "upper": float(edges[min(b + 1, len(edges) - 1)]),
                     "count": int(inside.sum()), "confidence": float(conf[inside].mean()),
                     "accuracy": float(right[inside].mean())})
    table = pd.DataFrame(rows)
    table["gap"] = table["accuracy"] - table["confidence"]
    return table


def expected_calibration_error(confidence: Any, correct: Any, bins: int = BINS, adaptive: bool = False) -> float:
    """ECE over `bins` equal-width bins of confidence, or equal-mass bins with `adaptive`."""
    table = reliability_bins(confidence, correct, bins, adaptive)
    return float((table["count"] * table["gap"].abs()).sum() / table["count"].sum())


def negative_log_likelihood(probabilities: Any, labels: Any) -> float:
    """Mean -log p(true class) over examples; probabilities of shape (examples, classes)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError(f"need probabilities (examples, classes) and one label per example, got {p.shape}, {y.shape}")
    return float(-np.log(np.clip(p[np.arange(len(y)), y], np.finfo(np.float64).tiny, None)).mean())


def calibration_fields(confidence: Any, correct: Any, bins: int = BINS) -> dict[str, float]:
    """The calibration part of a level record: ECE (equal width), adaptive ECE (equal mass), mean confidence."""
    conf, right = _checked(confidence, correct)
    return {"test_ece": expected_calibration_error(conf, right, bins),
            "test_ece_adaptive": expected_calibration_error(conf, right, bins, adaptive=True),
            "test_confidence": float(conf.mean())}
