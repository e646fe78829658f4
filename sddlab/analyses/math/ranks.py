"""Rank correlations between a target (test accuracy) and candidate predictors across levels.

The paper's second claim is that the learning distance tracks the test-accuracy curve better than
flatness does. Rank correlations (Spearman's rho, Kendall's tau-b, from scipy.stats) put numbers on
"tracks": they ask only whether the orderings agree, not whether the relation is linear. Each
predictor uses the rows where both it and the target are finite (pairwise deletion), so ``n`` can
differ between predictors. A constant column, or fewer than three complete rows, gives NaN with the
reason in ``note`` instead of a warning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS: tuple[str, ...] = ("predictor", "spearman", "spearman_p", "kendall", "kendall_p", "n", "note")


def correlation_table(
    df: pd.DataFrame,
    target: str = "test_acc",
    predictors: Sequence[str] | None = None,
    *,
    min_rows: int = 3,
) -> pd.DataFrame:
    """One row per predictor: predictor, spearman, spearman_p, kendall, kendall_p, n, note.

    ``predictors`` default: every numeric column except the target and ``seed``. P-values are
    two-sided (scipy's defaults; Kendall's is exact for small samples without ties). Rows are one
    per level (or per level and seed): aggregate first if seeds should not count as extra evidence.
    """
    if target not in df.columns:
        raise KeyError(f"target column {target!r} not in the table")
    if predictors is None:
        predictors = [c for c in df.select_dtypes("number").columns if c not in (target, "seed")]
    missing = [p for p in predictors if p not in df.columns]
    if missing:
        raise KeyError(f"predictor columns not in the table: {', '.join(missing)}")
    rows = []
    for name in predictors:
        pair = df[[name, target]].apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
        row = {
            "predictor": name,
            "spearman": np.nan,
            "spearman_p": np.nan,
            "kendall": np.nan,
            "kendall_p": np.nan,
            "n": len(pair),
            "note": "",
        }
        if len(pair) < min_rows:
            row["note"] = f"fewer than {min_rows} complete rows"
        elif pair[name].nunique() < 2:
            row["note"] = "constant predictor"
        elif pair[target].nunique() < 2:
            row["note"] = "constant target"
        else:
            spearman = stats.spearmanr(pair[name], pair[target])
            kendall = stats.kendalltau(pair[name], pair[target])
            row.update(
                spearman=float(spearman.statistic),
                spearman_p=float(spearman.pvalue),
                kendall=float(kendall.statistic),
                kendall_p=float(kendall.pvalue),
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))
