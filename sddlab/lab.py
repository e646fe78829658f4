"""Checks for the course lab: tell a student, in words, which phases their curve shows."""

from __future__ import annotations

import pandas as pd

from sddlab.analysis import detect_phases

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
