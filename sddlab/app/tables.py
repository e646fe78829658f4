"""Level tables and analysis results as fixed-width text, for terminals and the explorer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sddlab.analyses.cache import AnalysisResult

TABLE_COLUMNS = [
    "level", "sparsity", "remaining", "test_acc", "test_loss", "train_acc_noisy", "train_acc_clean",
    "memorized", "learning_distance", "seconds",
]


def format_table(table: pd.DataFrame) -> str:
    """The level table for a terminal: sparsity in %, accuracies with three decimals."""
    if table.empty:
        return "(no finished level yet)"
    shown = table[[c for c in TABLE_COLUMNS if c in table]].copy()
    shown["sparsity"] = (100 * shown["sparsity"]).map("{:.2f}%".format)
    if "diverged" in table and table["diverged"].notna().any():  # a diverged level has no numbers: say so
        shown["diverged"] = ["yes" if isinstance(reason, str) else "" for reason in table["diverged"]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def format_result(result: AnalysisResult) -> str:
    """The result's compact table for a terminal: sparsity in %, floats with four significant decimals."""
    table = result.shown().copy()
    if table.empty:
        return "(empty)"
    if "sparsity" in table:
        table["sparsity"] = (100 * table["sparsity"]).map("{:.2f}%".format)
    if "note" in table:
        table["note"] = table["note"].fillna("")
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_rows", 500):
        return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")
