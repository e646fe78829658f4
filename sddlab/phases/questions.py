"""The graded lab's questions: each answer is read off the student's own noisy curve and checked against
the phases detected in the student's own run, so answers differ from student to student.

A student's seed comes from their student ID (`lab_seed`), and under nbgrader's autograde the ID written
in the notebook must be the submitter's (`check_student`): a copied notebook fails every question.
Sparsities are right when they are nearer to the landmark's level than to any other level (half a level
of tolerance on the log axis the figures use); accuracies and shares within `tolerance`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sddlab.phases.detect import detect_phases
from sddlab.phases.landmarks import PhaseReport

GRADING_ENV = "NBGRADER_EXECUTION"  # nbgrader sets it to 'autograde' while it grades a submission
NOT_ANSWERED = ...  # what the student version's answer cell holds until the student writes an answer
SEEDS = 10_000


@dataclass(frozen=True)
class Question:
    """One graded answer: what it asks, what kind of number it is, and how close counts as right."""

    prompt: str
    kind: str  # 'sparsity' (nearest level) or 'fraction' (absolute tolerance)
    tolerance: float = 0.0


QUESTIONS: dict[str, Question] = {
    "dense_test_acc": Question("test accuracy of the dense network (level 0)", "fraction", 0.005),
    "critical_sparsity": Question("sparsity of the critical minimum", "sparsity"),
    "critical_test_acc": Question("test accuracy at the critical minimum", "fraction", 0.005),
    "memorised_at_critical": Question("share of the noisy labels still memorised at the critical minimum",
                                      "fraction", 0.02),
    "sweet_sparsity": Question("sparsity of the sweet peak", "sparsity"),
    "sweet_test_acc": Question("test accuracy at the sweet peak", "fraction", 0.005),
}


def lab_seed(student: str, seed: int | None = None) -> int:
    """`seed` when given, else one drawn from the student ID (0 without one): each student their own run."""
    if seed is not None:
        return int(seed)
    name = student.strip().lower()
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % SEEDS if name else 0


def grading_student() -> str | None:
    """The submitter's ID while nbgrader autogrades (it runs in autograded/<student>/<assignment>/), else None."""
    return Path.cwd().parent.name if os.environ.get(GRADING_ENV) == "autograde" else None


def check_student(student: str) -> None:
    """Under autograde, the ID written in the notebook must be the submitter's (a copy fails every question)."""
    submitter = grading_student()
    if submitter is not None and student.strip().lower() != submitter.strip().lower():
        raise AssertionError(f"student={student!r} is not the submitter's ID {submitter!r}: answers belong to "
                             "the run of the student who wrote them")


def _landmarks(table: pd.DataFrame) -> tuple[PhaseReport, dict[int, pd.Series]]:
    report = detect_phases(table)
    rows = {int(level): part.mean(numeric_only=True) for level, part in table.groupby("level")}
    return report, rows


def answers(table: pd.DataFrame) -> dict[str, float | None]:
    """The right answers for a run's level table (None where the curve has no such phase)."""
    report, rows = _landmarks(table)
    critical, sweet = report.critical, report.sweet
    memorised = None if critical is None else rows[critical.level].get("memorized")
    return {
        "dense_test_acc": float(report.dense_test_acc),
        "critical_sparsity": None if critical is None else float(critical.sparsity),
        "critical_test_acc": None if critical is None else float(critical.test_acc),
        "memorised_at_critical": None if memorised is None or np.isnan(memorised) else float(memorised),
        "sweet_sparsity": None if sweet is None else float(sweet.sparsity),
        "sweet_test_acc": None if sweet is None else float(sweet.test_acc),
    }


def check_format(name: str, value: Any) -> None:
    """The visible test: an answer is given, and is None or a fraction in [0, 1] (0.87 for 87 %)."""
    if name not in QUESTIONS:
        raise KeyError(f"question={name!r} is not allowed: one of {', '.join(QUESTIONS)}")
    if value is NOT_ANSWERED:
        raise AssertionError(f"{name}: replace ... with your answer ({QUESTIONS[name].prompt}), or None")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise AssertionError(f"{name}={value!r} is not allowed: a fraction from 0 to 1 (0.87 for 87 %), or None")


def _level_of(sparsity: float, sparsities: np.ndarray) -> int:
    """Index of the level nearest to `sparsity` on the log axis of remaining weights."""
    remaining = np.log(np.clip(1.0 - sparsities, 1e-9, None))
    return int(np.argmin(np.abs(remaining - np.log(max(1.0 - sparsity, 1e-9)))))


def is_right(name: str, value: Any, table: pd.DataFrame) -> bool:
    """Whether `value` answers question `name` for this run's level table, within the question's tolerance."""
    check_format(name, value)
    truth = answers(table)[name]
    if truth is None or value is None:
        return truth is None and value is None
    if QUESTIONS[name].kind == "sparsity":
        sparsities = table.groupby("level")["sparsity"].mean().to_numpy(dtype=float)
        return _level_of(float(value), sparsities) == _level_of(truth, sparsities)
    return abs(float(value) - truth) <= QUESTIONS[name].tolerance + 1e-12


def check_answer(name: str, value: Any, table: pd.DataFrame, student: str) -> None:
    """The hidden test: the submitter's own notebook, and the answer right for the run's curve."""
    check_student(student)
    if not is_right(name, value, table):
        how = "the nearest level" if QUESTIONS[name].kind == "sparsity" else f"±{QUESTIONS[name].tolerance:g}"
        raise AssertionError(f"{name}={value!r} does not match your own curve ({QUESTIONS[name].prompt}, "
                             f"within {how}): read it again from your figure and table")
