"""Rank correlations on constructed data with known rank order (exact to 1e-12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sddlab.analyses.math.ranks import COLUMNS, correlation_table
from sddlab.figures.panels import correlation_figure


@pytest.fixture
def table():
    n = 12
    x = np.arange(n, dtype=float)
    permuted = np.array([0, 2, 1, 3, 5, 4, 6, 7, 9, 8, 10, 11], dtype=float)
    return pd.DataFrame(
        {
            "level": x,
            "test_acc": x / 20,
            "exp_distance": np.exp(x),  # monotone but far from linear
            "flatness": -(x**3),  # reversed order
            "shuffled": permuted,
            "constant": np.full(n, 3.0),
            "seed": np.zeros(n),
        }
    )


def test_known_rank_orders(table):
    out = correlation_table(table, "test_acc", ["exp_distance", "flatness", "shuffled"]).set_index("predictor")
    assert list(out.reset_index().columns) == list(COLUMNS)
    assert out.loc["exp_distance", "spearman"] == pytest.approx(1.0, abs=1e-12)
    assert out.loc["exp_distance", "kendall"] == pytest.approx(1.0, abs=1e-12)
    assert out.loc["flatness", "spearman"] == pytest.approx(-1.0, abs=1e-12)
    assert out.loc["flatness", "kendall"] == pytest.approx(-1.0, abs=1e-12)
    # three adjacent swaps: sum d^2 = 6 -> rho = 1 - 6*6 / (12 * 143); 3 discordant of 66 pairs
    assert out.loc["shuffled", "spearman"] == pytest.approx(1 - 36 / (12 * 143), abs=1e-12)
    assert out.loc["shuffled", "kendall"] == pytest.approx((63 - 3) / 66, abs=1e-12)
    assert out.loc["exp_distance", "spearman_p"] < 1e-6 and out.loc["exp_distance", "kendall_p"] < 1e-6
    assert (out["n"] == 12).all() and (out["note"] == "").all()


def test_defaults_nans_and_constants(table):
    table.loc[[1, 4], "exp_distance"] = np.nan
    table.loc[7, "flatness"] = np.inf
    out = correlation_table(table).set_index("predictor")
    assert "test_acc" not in out.index and "seed" not in out.index
    assert set(out.index) == {"level", "exp_distance", "flatness", "shuffled", "constant"}
    assert out.loc["exp_distance", "n"] == 10 and out.loc["exp_distance", "spearman"] == pytest.approx(1.0)
    assert out.loc["flatness", "n"] == 11 and out.loc["flatness", "kendall"] == pytest.approx(-1.0)
    assert np.isnan(out.loc["constant", "spearman"]) and np.isnan(out.loc["constant", "kendall_p"])
    assert out.loc["constant", "note"] == "constant predictor"


def test_too_few_rows_constant_target_and_missing_columns(table):
    few = correlation_table(table.head(2), "test_acc", ["level"]).iloc[0]
    assert np.isnan(few["spearman"]) and few["n"] == 2 and "fewer than 3" in few["note"]
    flat = correlation_table(table.assign(test_acc=0.5), "test_acc", ["level"]).iloc[0]
    assert np.isnan(flat["kendall"]) and flat["note"] == "constant target"
    with pytest.raises(KeyError):
        correlation_table(table, "test_acc", ["nope"])
    with pytest.raises(KeyError):
        correlation_table(table, "nope", ["level"])


def test_correlation_figure(table):
    out = correlation_table(table, "test_acc", ["exp_distance", "flatness", "constant"])
    figure = correlation_figure(out)
    assert list(figure.data[0].x) == ["exp_distance", "flatness", "constant"]
    assert list(figure.data[0].text) == ["1.00", "-1.00", "n/a"]
    with pytest.raises(ValueError):
        correlation_figure(out, method="pearson")
