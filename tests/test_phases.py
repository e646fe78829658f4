"""Phase detection on synthetic level tables whose answers are known by construction.

Settings are the defaults unless stated: tolerance 0.01 (train accuracy below 0.99 no longer fits),
margin 0.01 absolute, z = 2 standard errors when there are several seeds, slack 2 levels.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from sddlab.phases import PHASES, Landmark, aggregate_levels, check_curve, detect_phases, print_checks

# A LeNet/MNIST-like curve (paper Fig. 1: dense 0.834, minimum 0.765, peak 0.953), levels 0..24.
PAPER_TEST = [
    0.834,
    0.836,
    0.833,
    0.830,
    0.815,
    0.800,
    0.790,
    0.780,
    0.772,
    0.765,
    0.800,
    0.840,
    0.870,
    0.900,
    0.920,
    0.935,
    0.940,
    0.945,
    0.950,
    0.951,
    0.953,
    0.948,
    0.930,
    0.900,
    0.866,
]
PAPER_TRAIN = [1.0] * 10 + [0.985, 0.97, 0.95, 0.93, 0.91, 0.89, 0.87, 0.85, 0.83, 0.81, 0.80, 0.78, 0.75, 0.70, 0.65]
EXPECTED_PHASES = ["light"] * 4 + ["critical"] * 8 + ["sweet"] * 10 + ["collapsed"] * 3


def _table(test, train, seed=None):
    levels = np.arange(len(test))
    table = pd.DataFrame({"level": levels, "sparsity": 1 - 0.8**levels, "test_acc": test, "train_acc_noisy": train})
    if seed is not None:
        table["seed"] = seed
    return table


def test_paper_like_curve():
    report = detect_phases(_table(PAPER_TEST, PAPER_TRAIN))
    assert report.has_double_descent
    assert report.interpolation_threshold.level == 10
    assert report.critical.level == 9 and report.critical.test_acc == pytest.approx(0.765)
    assert report.sweet.level == 20 and report.sweet.test_acc == pytest.approx(0.953)
    # first level from which test stays more than 0.01 below the peak: 22 (level 21 is within the margin)
    assert report.collapse.level == 22
    assert report.peak_above_dense is True
    assert report.dip == pytest.approx(0.834 - 0.765) and report.rise == pytest.approx(0.953 - 0.765)
    assert report.critical.sparsity == pytest.approx(1 - 0.8**9)
    assert report.to_frame()["phase"].tolist() == EXPECTED_PHASES
    assert report.phase_of(12) == "sweet"
    assert report.summary.startswith("Sparse double descent")
    assert "level 9" in report.summary and "level 20" in report.summary and "level 22" in report.summary
    data = report.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False))["critical"]["level"] == 9
    assert set(data["levels"][0]) == {"level", "sparsity", "test_acc", "test_se", "train_acc_noisy", "n", "phase"}


def test_rows_in_any_order_and_train_that_never_drops():
    table = _table(PAPER_TEST, [1.0] * len(PAPER_TEST)).sample(frac=1.0, random_state=0)
    report = detect_phases(table)
    assert report.interpolation_threshold is None
    assert report.has_double_descent and report.critical.level == 9 and report.sweet.level == 20
    assert "never falls below" in report.summary


def test_monotone_decline_is_no_double_descent():
    test = [0.83 - 0.004 * level**1.5 for level in range(20)]
    train = [1.0] * 8 + [0.98 - 0.03 * i for i in range(12)]
    report = detect_phases(_table(test, train))
    assert not report.has_double_descent
    assert report.summary.startswith("No double descent")
    assert "monotonically" in report.summary
    assert report.critical is None and report.sweet is None
    assert set(report.to_frame()["phase"]) <= {"light", "collapsed"}
    assert report.collapse.level == 2  # 0.83 - 0.004 * 2**1.5 = 0.8187 < 0.82, and it never comes back


def test_dip_without_recovery_is_no_double_descent():
    # rises a little first (so not monotone), dips well below dense, never climbs back
    test = [0.83, 0.845, 0.85, 0.82, 0.79, 0.76, 0.755, 0.758, 0.757, 0.752, 0.74, 0.70, 0.60]
    train = [1.0] * 6 + [0.98, 0.95, 0.92, 0.88, 0.84, 0.80, 0.70]
    report = detect_phases(_table(test, train))
    assert not report.has_double_descent
    assert report.summary.startswith("No double descent") and "does not recover" in report.summary
    # minimum searched up to threshold (level 6) + slack 2 = level 8
    assert report.dip == pytest.approx(0.83 - 0.755) and report.rise == pytest.approx(0.758 - 0.755)


def test_dip_and_rise_below_margin_is_no_double_descent():
    test = [0.830, 0.827, 0.824, 0.829, 0.831, 0.828, 0.826, 0.80, 0.70]
    train = [1.0] * 4 + [0.97, 0.94, 0.90, 0.85, 0.75]
    report = detect_phases(_table(test, train))
    assert not report.has_double_descent
    assert "No double descent" in report.summary
    # a looser margin sees the (tiny) dip and rise as a double descent
    assert detect_phases(_table(test, train), margin=0.002).has_double_descent


def test_noisy_multi_seed_double_descent():
    rng = np.random.default_rng(0)
    tables = [
        _table(
            np.array(PAPER_TEST) + rng.normal(0, 0.01, len(PAPER_TEST)),
            np.clip(np.array(PAPER_TRAIN) + rng.normal(0, 0.002, len(PAPER_TRAIN)), 0, 1),
            seed,
        )
        for seed in range(5)
    ]
    report = detect_phases(pd.concat(tables, ignore_index=True))
    assert report.n_seeds == 5
    assert report.has_double_descent
    assert abs(report.critical.level - 9) <= 1
    assert abs(report.sweet.level - 20) <= 2
    assert "mean of 5 seeds" in report.summary
    frame = report.to_frame()
    assert (frame["n"] == 5).all() and (frame["test_se"] > 0).all()
    assert set(frame["phase"]) == set(PHASES)


def test_seed_noise_margin_rules_out_a_spurious_double_descent():
    # per-level means dip by 0.015 and rise back by 0.015 -- more than the 0.01 margin -- but the
    # three seeds spread +-0.03 around them (standard error 0.017), so the dip is not significant
    means = np.array([0.80, 0.80, 0.795, 0.785, 0.79, 0.80, 0.80, 0.78, 0.74, 0.70])
    train = [1.0] * 4 + [0.98, 0.95, 0.92, 0.88, 0.84, 0.80]
    table = pd.concat([_table(means + offset, train, seed) for seed, offset in enumerate([-0.03, 0.0, 0.03])])
    report = detect_phases(table)
    assert not report.has_double_descent
    assert report.summary.startswith("No double descent (mean of 3 seeds)")
    assert report.dip == pytest.approx(0.015) and report.rise == pytest.approx(0.015)
    assert "needed 0.049" in report.summary  # 2 * sqrt(2) * 0.03 / sqrt(3)
    # the same means seen as a single run pass the plain margin
    single = detect_phases(_table(means, train))
    assert single.has_double_descent and single.critical.level == 3 and single.sweet.level == 5


def test_peak_below_dense_still_counts():
    # CIFAR-100-like: dense 0.604, minimum 0.540, peak 0.598 (below dense), then collapse
    test = [0.604, 0.60, 0.59, 0.57, 0.55, 0.54, 0.56, 0.58, 0.598, 0.59, 0.547]
    train = [1.0] * 6 + [0.98, 0.95, 0.90, 0.85, 0.70]
    report = detect_phases(_table(test, train))
    assert report.has_double_descent and report.peak_above_dense is False
    assert report.critical.level == 5 and report.sweet.level == 8 and report.collapse.level == 10
    assert "not above the dense model" in report.summary


def test_other_columns_nans_and_errors():
    table = _table(PAPER_TEST, PAPER_TRAIN).rename(columns={"test_acc": "best_test_acc"})
    table.loc[3, "best_test_acc"] = np.nan  # a level with no result is skipped
    report = detect_phases(table, test="best_test_acc")
    assert report.has_double_descent and 3 not in report.to_frame()["level"].tolist()
    with pytest.raises(KeyError):
        detect_phases(table)
    with pytest.raises(ValueError):
        detect_phases(_table(PAPER_TEST, PAPER_TRAIN), smooth=2)
    short = detect_phases(_table([0.8, 0.7], [1.0, 1.0]))
    assert not short.has_double_descent and "No double descent can be judged" in short.summary


def test_smoothing_and_dense_that_does_not_fit():
    train = [0.97] * 10 + [0.95, 0.93, 0.90, 0.88, 0.86, 0.84, 0.82, 0.80, 0.78, 0.76, 0.74, 0.72, 0.70, 0.6, 0.5]
    report = detect_phases(_table(PAPER_TEST, train), smooth=3)
    assert report.interpolation_threshold.level == 0
    assert "does not fit the noisy labels" in report.summary
    assert report.has_double_descent and abs(report.critical.level - 9) <= 1


def test_aggregate_levels_means_over_seeds():
    table = pd.concat([_table([0.8, 0.7, 0.6], [1.0, 1.0, 0.9], 0), _table([0.6, 0.7, 0.8], [1.0, 0.9, 0.9], 1)])
    agg = aggregate_levels(table)
    assert agg["test_acc"].tolist() == pytest.approx([0.7, 0.7, 0.7])
    assert agg["train_acc_noisy"].tolist() == pytest.approx([1.0, 0.95, 0.9])
    assert agg["test_se"].tolist() == pytest.approx(
        [np.std([0.8, 0.6], ddof=1) / np.sqrt(2), 0.0, 0.1414 / 1.4142], abs=1e-3
    )


def test_phase_figure():
    from sddlab.figures.axis import phase_bands
    from sddlab.figures.curve import phase_figure

    report = detect_phases(_table(PAPER_TEST, PAPER_TRAIN))
    bands = phase_bands(report)
    assert [b["phase"] for b in bands] == ["light", "critical", "sweet", "collapsed"]
    assert all(b["x0"] > b["x1"] > 0 for b in bands)  # remaining fraction shrinks with the level
    assert all(a["x1"] == pytest.approx(b["x0"]) for a, b in zip(bands, bands[1:], strict=False))
    figure = phase_figure(report)
    assert figure.layout.xaxis.type == "log"
    assert len(figure.layout.shapes) == 4
    assert {trace.name for trace in figure.data} >= {"test accuracy", "critical minimum", "sweet peak", "collapse"}


def _hand_table():
    """Two seeds (+-0.001 around known means) at level numbers 0, 2, 4, ... so indices and levels differ."""
    means = [0.80, 0.79, 0.75, 0.70, 0.72, 0.78, 0.85, 0.86, 0.855, 0.60, 0.50, 0.40]
    train = [1.0, 1.0, 1.0, 1.0, 0.98, 0.95, 0.90, 0.85, 0.80, 0.70, 0.60, 0.50]
    levels = 2 * np.arange(len(means))
    seeds = [
        pd.DataFrame({"level": levels, "sparsity": 1 - 0.8**levels, "test_acc": np.array(means) + offset,
                      "train_acc_noisy": train, "seed": seed})
        for seed, offset in enumerate([-0.001, 0.001])
    ]
    return pd.concat(seeds, ignore_index=True)


def test_landmarks_match_a_hand_computation():
    table = _hand_table()
    report = detect_phases(table)
    means = table.groupby("level")[["sparsity", "test_acc", "train_acc_noisy"]].mean()
    levels = means.index.tolist()
    test, train = means["test_acc"].tolist(), means["train_acc_noisy"].tolist()
    # threshold: first level with train < 0.99; window: the levels after dense up to two past it
    threshold = next(i for i, acc in enumerate(train) if acc < 0.99)
    window = range(1, threshold + 2 + 1)
    critical = min(window, key=lambda i: test[i])  # the argmin inside the window ...
    assert test[critical] > min(test)  # ... which is not the argmin of the whole curve
    sweet = max(range(critical + 1, len(test)), key=lambda i: test[i])
    # collapse: first level after the peak from which every later level is more than 0.01 below it
    collapse = next(k for k in range(sweet + 1, len(test)) if all(t < test[sweet] - 0.01 for t in test[k:]))
    assert (threshold, critical, sweet, collapse) == (4, 3, 7, 9)  # the construction, for the reader

    def expected(i):
        return Landmark(levels[i], means["sparsity"].iloc[i], test[i])

    assert report.has_double_descent and report.n_seeds == 2
    for found, i in ((report.interpolation_threshold, threshold), (report.critical, critical),
                     (report.sweet, sweet), (report.collapse, collapse)):
        assert isinstance(found, Landmark)
        assert found.level == expected(i).level and isinstance(found.level, int)
        assert found.sparsity == pytest.approx(expected(i).sparsity)
        assert found.test_acc == pytest.approx(expected(i).test_acc)
    assert report.dip == pytest.approx(test[0] - test[critical])
    assert report.rise == pytest.approx(test[sweet] - test[critical])
    assert report.phase_of(levels[collapse]) == "collapsed" and report.phase_of(levels[collapse - 1]) == "sweet"
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.critical.level = 0


def test_to_dict_round_trips_through_strict_json():
    table = _hand_table()
    table.loc[table["level"] == 22, "train_acc_noisy"] = np.nan  # NaN must become null, not break the JSON
    for report in (detect_phases(table), detect_phases(_table([0.83 - 0.01 * i for i in range(8)], [1.0] * 8))):
        data = report.to_dict()
        assert json.loads(json.dumps(data, allow_nan=False)) == data
        for name in ("interpolation_threshold", "critical", "sweet", "collapse"):
            landmark = getattr(report, name)
            assert data[name] == (None if landmark is None else dataclasses.asdict(landmark))
    data = detect_phases(table).to_dict()
    assert data["critical"] == {"level": 6, "sparsity": pytest.approx(1 - 0.8**6), "test_acc": pytest.approx(0.70)}
    assert data["levels"][-1]["train_acc_noisy"] is None
    assert data["settings"] == {"tolerance": 0.01, "margin": 0.01, "z": 2.0, "slack": 2, "smooth": 1,
                                "test": "test_acc", "train": "train_acc_noisy"}
    assert not detect_phases(_table([0.83 - 0.01 * i for i in range(8)], [1.0] * 8)).to_dict()["has_double_descent"]


def test_lab_checks_read_the_landmarks(capsys):
    lines = check_curve(_table(PAPER_TEST, PAPER_TRAIN))
    assert lines[0] == "dense network: test accuracy 83.4%"
    assert lines[1] == ("✔ critical phase: test accuracy falls to 76.5% at 86.6% sparsity while the net still "
                        "fits the noisy labels")
    assert lines[2] == "✔ sweet phase: test accuracy rises to 95.3% at 98.8% sparsity (above the dense network)"
    assert lines[3] == "✔ collapsed phase: accuracy falls to 93.0% at 99.3% sparsity: too few weights are left"
    assert lines[4].startswith("double descent: yes — Sparse double descent")
    print_checks(_table(PAPER_TEST, PAPER_TRAIN))
    assert capsys.readouterr().out.splitlines() == lines


def test_lab_checks_report_missing_phases():
    test = [0.83 - 0.004 * level**1.5 for level in range(20)]
    train = [1.0] * 8 + [0.98 - 0.03 * i for i in range(12)]
    lines = check_curve(_table(test, train))
    assert lines[1] == "✘ critical phase: no clear dip below the dense accuracy"
    assert lines[2] == "✘ sweet phase: no rise after the dip"
    assert lines[3].startswith("✔ collapsed phase")
    assert lines[4].startswith("double descent: no — No double descent")
    no_collapse = check_curve(_table(PAPER_TEST[:21], PAPER_TRAIN[:21]))
    assert no_collapse[2].startswith("✔ sweet phase") and "below the dense" not in no_collapse[2]
    assert no_collapse[3] == "✘ collapsed phase: not reached; prune further (more levels)"
