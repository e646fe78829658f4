"""Calibration: ECE against hand-computed examples, the values every level records, and older runs (records
without calibration) filled in from their level checkpoints, or marked missing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import sddlab
import sddlab.experiment
import sddlab.metrics
from sddlab.analyses.calibration import calibration, with_calibration
from sddlab.confidence import (
    calibration_fields,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from sddlab.data.device import prepare_data
from sddlab.models import build_model
from sddlab.store import RunStore

CONFIDENCE = [0.1, 0.3, 0.35, 0.7, 0.9, 0.95]
CORRECT = [0, 1, 0, 1, 1, 0]


def test_ece_of_a_hand_computed_example():
    # five equal-width bins (0, .2], (.2, .4], ..., (.8, 1]: {.1: wrong}, {.3: right, .35: wrong}, {.7: right},
    # {.9: right, .95: wrong}; gaps .1, .175, .3, .425 weighted by 1, 2, 1, 2 of 6 examples
    assert expected_calibration_error(CONFIDENCE, CORRECT, bins=5) == pytest.approx(1.6 / 6)
    # three equal-mass bins of two: {.1, .3} (acc .5, conf .2), {.35, .7} (.5, .525), {.9, .95} (.5, .925)
    assert expected_calibration_error(CONFIDENCE, CORRECT, bins=3, adaptive=True) == pytest.approx(1.5 / 6)
    # fifteen bins put every example alone: the mean of |correct - confidence|
    assert expected_calibration_error(CONFIDENCE, CORRECT) == pytest.approx(2.5 / 6)
    bins = reliability_bins(CONFIDENCE, CORRECT, bins=5)
    assert bins["bin"].tolist() == [0, 1, 3, 4] and bins["count"].tolist() == [1, 2, 1, 2]
    assert bins["gap"].tolist() == pytest.approx([-0.1, 0.175, 0.3, -0.425])


def test_ece_edges_and_perfect_calibration():
    # a confidence on a bin's upper edge belongs to that bin, zero to the first
    assert reliability_bins([0.0, 0.4], [0, 1], bins=5)["bin"].tolist() == [0, 1]
    assert expected_calibration_error([0.5, 0.5, 0.8, 0.8, 0.8, 0.8, 0.8], [1, 0, 1, 1, 1, 1, 0]) == pytest.approx(0)
    fields = calibration_fields(CONFIDENCE, CORRECT)
    assert fields["test_confidence"] == pytest.approx(np.mean(CONFIDENCE))
    assert fields["test_ece"] == pytest.approx(2.5 / 6)
    nll = negative_log_likelihood([[0.5, 0.5], [0.1, 0.9]], [0, 1])
    assert nll == pytest.approx(-(math.log(0.5) + math.log(0.9)) / 2)
    for confidence, correct in (([], []), ([0.5], [1, 0]), ([1.5], [1])):
        with pytest.raises(ValueError):
            expected_calibration_error(confidence, correct)


def _direct(run_dir, level: int, data_dir) -> dict[str, float]:
    """Calibration of a stored level computed without sddlab's evaluation: softmax of the model's logits."""
    store = RunStore(run_dir)
    config = store.config()
    data = prepare_data(config.data, config.noise, config.experiment.seed, data_dir)
    model = build_model(config.model, data.spec.input_shape, data.num_classes, 0)
    mask, weights = store.load_level_state(level)
    model.load_state_dict(weights)
    model.eval()
    with torch.no_grad():
        probabilities = model(data.spec.eval_transform(data.x_test)).double().softmax(1).numpy()
    labels = data.y_test.numpy()
    top = probabilities.max(1)
    return {**calibration_fields(top, probabilities.argmax(1) == labels),
            "test_loss": negative_log_likelihood(probabilities, labels)}


def test_every_level_records_its_calibration(finished_run, data_dir):
    for record in RunStore(finished_run).records():
        expected = _direct(finished_run, record["level"], data_dir)
        for key, value in expected.items():
            assert record[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (record["level"], key)
        assert 0 <= record["test_ece"] <= 1 and 0 < record["test_confidence"] <= 1


def test_older_runs_are_filled_from_checkpoints_or_marked_missing(tmp_path, small_config, run_config, monkeypatch):
    config = small_config({"noise.rate": 0.4})
    new = run_config(config, tmp_path / "new")
    measure = sddlab.metrics.measure_with_predictions

    def as_before(*args, **kwargs):  # what sddlab recorded before calibration existed
        fields, predictions = measure(*args, **kwargs)
        return {k: v for k, v in fields.items() if k not in ("test_ece", "test_ece_adaptive", "test_confidence")}, \
            predictions

    monkeypatch.setattr(sddlab.experiment, "measure_with_predictions", as_before)
    old = run_config(config, tmp_path / "old")
    monkeypatch.undo()
    assert "test_ece" not in RunStore(old).records()[0]
    recorded = pd.DataFrame(RunStore(new).records())
    filled = calibration(old, reliability=[0, 2], progress=False)
    assert filled.table["source"].tolist() == ["checkpoint"] * len(recorded)
    for key in ("test_ece", "test_ece_adaptive", "test_confidence"):
        assert filled.table[key].tolist() == pytest.approx(recorded[key].tolist(), rel=1e-9)
    assert filled.table["overconfidence"].tolist() == pytest.approx(
        (recorded["test_confidence"] - recorded["test_acc"]).tolist())
    bins = filled.extra["reliability"]
    dense = bins[(bins["level"] == 0) & (bins["scheme"] == "equal-width")]
    assert int(dense["count"].sum()) == len(RunStore(old).load_examples()["test"])
    assert (dense["count"] * dense["gap"].abs()).sum() / dense["count"].sum() == pytest.approx(recorded["test_ece"][0])
    # a new run reads its own records; an index table of both runs gets the old run's values filled in
    assert set(calibration(new, progress=False).table["source"]) == {"record"}
    both = with_calibration(sddlab.index([new, old]))
    by_run = {name: rows.sort_values("level")["test_ece"].tolist() for name, rows in both.groupby("run_dir")}
    assert by_run[str(old)] == pytest.approx(by_run[str(new)], rel=1e-9)
    # a level whose checkpoint is gone is missing, the others still there
    monkeypatch.setattr(sddlab.experiment, "measure_with_predictions", as_before)
    gone = run_config(config, tmp_path / "gone")
    monkeypatch.undo()
    RunStore(gone).remove_checkpoint("level_01")
    table = calibration(gone, reliability=[0], progress=False).table
    assert table["source"].tolist() == ["checkpoint", "missing", "checkpoint", "checkpoint"]
    assert math.isnan(table.loc[1, "test_ece"]) and not math.isnan(table.loc[1, "test_acc"])
