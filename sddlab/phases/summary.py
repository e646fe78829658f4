"""The plain-language summary of what `detect_phases` found."""

from __future__ import annotations

import numpy as np

from sddlab.phases.curve import Curve, Findings, Settings


def _pct(sparsity: float) -> str:
    return f"{100 * sparsity:.1f} % sparsity"


def _where(curve: Curve, i: int) -> str:
    return f"{curve.raw[i]:.3f} at level {int(curve.levels[i])} ({_pct(curve.sparsity[i])})"


def _seeds(curve: Curve) -> str:
    return f" (mean of {curve.n_seeds} seeds)" if curve.n_seeds > 1 else ""


def _train_sentence(curve: Curve, threshold: int | None, tolerance: float) -> str:
    """Where the noisy labels stop being fitted."""
    if threshold is None:
        return f"Noisy-train accuracy never falls below {1 - tolerance:.3f}."
    if threshold == 0:
        return f"The dense model does not fit the noisy labels (train accuracy {float(curve.train[0]):.3f})."
    return (
        f"Noisy-train accuracy first falls below {1 - tolerance:.3f} at level {int(curve.levels[threshold])} "
        f"({_pct(curve.sparsity[threshold])})."
    )


def _double_descent(curve: Curve, found: Findings) -> str:
    """Dense -> critical minimum -> sweet peak -> collapse, in one sentence."""
    assert found.minimum is not None and found.peak is not None
    raw, peak, collapse = curve.raw, found.peak, found.collapse
    versus = "above" if raw[peak] > raw[0] else "not above"
    text = (
        f"Sparse double descent{_seeds(curve)}: test accuracy falls from {raw[0]:.3f} (dense) to a critical minimum "
        f"of {_where(curve, found.minimum)}, rises to a sweet peak of {_where(curve, peak)}, {versus} the dense model"
    )
    if collapse is None:
        return text + ", and does not collapse within the levels given."
    return text + (
        f", then collapses from level {int(curve.levels[collapse])} ({_pct(curve.sparsity[collapse])}, "
        f"{raw[collapse]:.3f})."
    )


def _shape(curve: Curve, found: Findings, margin: float) -> str:
    """Why there is no double descent: a monotone decline, no significant dip, or no significant recovery."""
    t, raw, evidence = curve.test, curve.raw, found.evidence
    largest_rise = float(np.max(t - np.minimum.accumulate(t)))  # over any level to any later one
    if largest_rise <= margin and t[-1] < t[0] - margin:
        return (
            f"test accuracy declines monotonically (never rises by more than {margin:.3f}) from "
            f"{raw[0]:.3f} (dense) to {_where(curve, curve.n - 1)}"
        )
    if evidence.dip is None or found.minimum is None or evidence.dip < evidence.need_dip:
        return (
            f"test accuracy never falls significantly below the dense model's {raw[0]:.3f} where the noisy "
            f"labels are still fitted (largest dip {max(evidence.dip or 0.0, 0.0):.3f}, "
            f"needed {evidence.need_dip:.3f})"
        )
    return (
        f"test accuracy dips to {_where(curve, found.minimum)} but does not recover significantly afterwards "
        f"(rise {max(evidence.rise or 0.0, 0.0):.3f}, needed {evidence.need_rise:.3f})"
    )


def _no_double_descent(curve: Curve, found: Findings, margin: float) -> str:
    text = f"No double descent{_seeds(curve)}: {_shape(curve, found, margin)}."
    if found.collapse is not None:
        collapse = found.collapse
        text += (
            f" Test accuracy falls for good from level {int(curve.levels[collapse])} "
            f"({_pct(curve.sparsity[collapse])})."
        )
    return text


def describe(curve: Curve, found: Findings, settings: Settings) -> str:
    """Plain-language description of what `detect_phases` found."""
    train = _train_sentence(curve, found.threshold, settings.tolerance)
    if curve.n < 3:
        return f"No double descent can be judged from {curve.n} level(s){_seeds(curve)}. {train}"
    text = _double_descent(curve, found) if found.double_descent else _no_double_descent(curve, found, settings.margin)
    return f"{text} {train}"
