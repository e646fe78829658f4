"""The data-size study: its sweep file, the landmarks per training-set size and their figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sddlab
from sddlab.datasize import phases_by_size
from sddlab.figures.datasize import datasize_figure
from sddlab.sweeps import load_sweep

SWEEP_FILE = Path(__file__).resolve().parents[1] / "sweeps" / "fashion-size.toml"


def test_sweep_file_runs_the_study_and_shares_the_full_size_runs():
    spec = load_sweep(SWEEP_FILE)
    assert spec.grid == {"data.subset": (4000, 12000, 30000, None)} and spec.seeds == (0, 1)
    assert spec.base.name == "fig1-lenet-fashion" and str(spec.base.training.duration) == "40ep"
    names = [config.run_name() for group in spec.groups() for config in group]
    assert len(set(names)) == 8
    # the whole-set point is the preset at 40 epochs: the same run directories as
    # `sddlab sweep --preset fig1-lenet-fashion --set training.duration=40ep --seeds 0 1 2`
    full = sddlab.get_preset("fig1-lenet-fashion").with_overrides({"training.duration": "40ep"})
    assert [c.run_name() for c in spec.groups()[-1]] == [
        full.with_overrides({"experiment.seed": seed}).run_name() for seed in (0, 1)]


def size_table() -> pd.DataFrame:
    """Two seeds at three sizes: the dip and the peak move to higher sparsity as the data shrinks."""
    rows = []
    for size, dip in ((1000, 4), (5000, 3), (20000, 2)):
        for seed, shift in ((0, 0.0), (1, 0.02)):
            test = [0.80 + shift, 0.79, 0.78, 0.76, 0.75, 0.74, 0.70]
            test[dip], test[dip + 2] = 0.60 + shift, 0.90 - shift  # critical minimum, then the sweet peak
            train = [1.0] * (dip + 1) + [0.8] * (6 - dip)
            rows += [{"train_examples": size, "experiment.seed": seed, "level": lv, "sparsity": 1 - 0.5 ** lv,
                      "remaining": 4096 * 0.5 ** lv, "test_acc": acc, "train_acc_noisy": train[lv]}
                     for lv, acc in enumerate(test)]
    return pd.DataFrame(rows)


def test_phases_by_size_and_its_figure():
    sizes = phases_by_size(size_table())
    assert list(sizes["train_examples"]) == [1000, 5000, 20000]
    assert list(sizes["critical_level"]) == [4, 3, 2] and list(sizes["sweet_level"]) == [6, 5, 4]
    assert list(sizes["sweet_remaining"]) == [64.0, 128.0, 256.0]
    margins = [0.90 - 0.80, 0.88 - 0.82]  # each seed's sweet level minus its own dense level
    assert sizes["margin"].tolist() == pytest.approx([np.mean([0.90, 0.88]) - np.mean([0.80, 0.82])] * 3)
    assert sizes["margin_std"].tolist() == pytest.approx([np.std(margins, ddof=1)] * 3)
    fig = datasize_figure(sizes)
    critical = [trace for trace in fig.data if trace.name == "critical minimum"]
    assert list(critical[0].x) == [1000, 5000, 20000]
    assert list(critical[0].y) == pytest.approx([0.5 ** 4, 0.5 ** 3, 0.5 ** 2])  # remaining fraction (log axis)
    assert list(critical[1].y) == [256.0, 512.0, 1024.0]  # remaining weights
    margin = next(trace for trace in fig.data if trace.name.startswith("sweet peak −"))
    assert list(margin.y) == pytest.approx(sizes["margin"].tolist())
    assert list(margin.error_y.array) == pytest.approx(sizes["margin_std"].tolist())
