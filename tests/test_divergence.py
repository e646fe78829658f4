"""Divergence: an exploding or non-finite loss stops the run with one line naming the level, the level is
recorded with its reason, a rerun repeats the line without training, figures show a gap, phases skip it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import sddlab
import sddlab.divergence
import sddlab.experiment
from sddlab.divergence import WEIGHT_LIMIT, Diverged, check_epoch, largest_weight, loss_limit
from sddlab.events import LevelFinished
from sddlab.figures.curve import curve_figure
from sddlab.phases import detect_phases
from sddlab.preparation import prepare
from sddlab.runtime import Runtime
from sddlab.store import RunStore
from sddlab.training import EpochStats


def test_a_huge_learning_rate_stops_at_level_0_with_one_line(tmp_path, small_config, run_config):
    config = small_config({"training.lr": 1e8})
    events = []
    with pytest.raises(Diverged) as error:
        run_config(config, tmp_path, listener=events.append)
    message = str(error.value)
    assert "\n" not in message and message.startswith("level 0 diverged at epoch 1: weights exploded")
    assert "training.lr" in message and "--set training.lr=1e+07" in message
    run_dir = tmp_path / config.run_name()
    records = RunStore(run_dir).records()
    assert [r["level"] for r in records] == [0] and records[0]["diverged"] == message
    assert not any(key in records[0] for key in ("test_acc", "test_loss"))  # no meaningless measurements
    finished = [e.record for e in events if isinstance(e, LevelFinished)]
    assert finished == [{**records[0]}]  # the explorer gets the reason in the level event
    assert not list((run_dir / "checkpoints").glob("partial-*"))

    again = []
    with pytest.raises(sddlab.errors.SddError) as second:
        run_config(config, tmp_path, listener=again.append)
    assert str(second.value) == message
    assert not any(type(e).__name__ == "EpochEnded" for e in again)  # no training on the rerun


def test_the_check_flags_non_finite_and_exploding_losses_only(small_config):
    setup = prepare(small_config(), runtime=Runtime(device="cpu"))
    args = (setup.model, setup.data, setup.config)
    limit = loss_limit(setup.data.num_classes)
    assert limit == pytest.approx(100 * math.log(10))

    def stats(loss):
        return EpochStats(3, 5, 30, loss, 0.5, 0.1, 0.0)

    check_epoch(2, stats(limit * 0.99), *args)  # high but not exploded: training goes on
    for loss, words in ((math.nan, "training loss is nan"), (math.inf, "training loss is inf"),
                        (limit * 1.01, "training loss 233 exploded")):
        with pytest.raises(Diverged, match=f"level 2 diverged at epoch 3: {words}"):
            check_epoch(2, stats(loss), *args)
    assert 0 < largest_weight(setup.model) < 10  # a fresh network
    check_epoch(0, stats(None), *args)
    with torch.no_grad():
        next(setup.model.parameters()).mul_(2 * WEIGHT_LIMIT)
    with pytest.raises(Diverged, match="weights exploded"):  # untracked loss: the weights tell
        check_epoch(0, stats(None), *args)
    with torch.no_grad():
        next(setup.model.parameters())[0, 0] = math.nan
    with pytest.raises(Diverged, match="weights are not finite"):
        check_epoch(0, stats(None), *args)


def test_the_probe_changes_no_result(tmp_path, small_config, run_config, without_seconds, monkeypatch):
    calls = []
    original = sddlab.divergence.largest_weight

    def counted(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(sddlab.divergence, "largest_weight", counted)
    probed = run_config(small_config(), tmp_path / "probed")
    assert len(calls) == 4 * 2  # once per epoch: 4 levels of 2 epochs
    monkeypatch.setattr(sddlab.experiment, "check_epoch", lambda *args: None)  # no check at all
    unchecked = run_config(small_config(), tmp_path / "unchecked")
    assert len(calls) == 8
    assert without_seconds(RunStore(probed).records()) == without_seconds(RunStore(unchecked).records())


def test_figures_show_a_gap_and_phases_skip_a_diverged_level(finished_run):
    table = RunStore(finished_run).table()
    table["diverged"] = None
    table.loc[table["level"] == 2, "diverged"] = "level 2 diverged at epoch 1: training loss is nan"
    measured = [c for c in table.columns if c not in ("level", "sparsity", "remaining", "sparsity_paper",
                                                       "remaining_paper", "diverged")]
    table.loc[table["level"] == 2, measured] = np.nan
    fig = curve_figure(table)
    test = next(trace for trace in fig.data if trace.name == "test accuracy")
    assert np.isnan(test.y[2]) and np.isfinite(np.delete(np.asarray(test.y, float), 2)).all()
    assert [a.text for a in fig.layout.annotations if "diverged" in (a.text or "")] == ["level 2 diverged"]
    report = detect_phases(table)
    assert [row["level"] for row in report.levels] == [0, 1, 3]
