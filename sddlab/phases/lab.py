"""The course lab's checks: which phases a student's curve shows, in words."""

from __future__ import annotations

import pandas as pd

from sddlab.phases.detect import detect_phases

PASS, MISS = "✔", "✘"


def check_curve(table: pd.DataFrame) -> list[str]:
    """One line per phase: whether the curve shows it, with the numbers that decide."""
    report = detect_phases(table)
    critical, sweet, collapse = report.critical, report.sweet, report.collapse
    lines = [f"dense network: test accuracy {report.dense_test_acc:.1%}"]
    if critical is not None:
        lines.append(f"{PASS} critical phase: test accuracy falls to {critical.test_acc:.1%} at "
                     f"{critical.sparsity:.1%} sparsity while the net still fits the noisy labels")
    else:
        lines.append(f"{MISS} critical phase: no clear dip below the dense accuracy")
    if sweet is not None:
        above = "above" if report.peak_above_dense else "below"
        lines.append(f"{PASS} sweet phase: test accuracy rises to {sweet.test_acc:.1%} at "
                     f"{sweet.sparsity:.1%} sparsity ({above} the dense network)")
    else:
        lines.append(f"{MISS} sweet phase: no rise after the dip")
    if collapse is not None:
        lines.append(f"{PASS} collapsed phase: accuracy falls to {collapse.test_acc:.1%} at "
                     f"{collapse.sparsity:.1%} sparsity: too few weights are left")
    else:
        lines.append(f"{MISS} collapsed phase: not reached; prune further (more levels)")
    lines.append(("double descent: yes — " if report.has_double_descent else "double descent: no — ") + report.summary)
    return lines


def print_checks(table: pd.DataFrame) -> None:
    """Print `check_curve`'s lines."""
    for line in check_curve(table):
        print(line)
