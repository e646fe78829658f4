"""The explorer's logic without a browser: simulated clicks drive a background run."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from sddlab.app import explorer_choices as ec
from sddlab.app.widgets import NO_CURVES, Explorer
from sddlab.config import choices
from sddlab.data import DATASETS
from sddlab.errors import DatasetMissing
from sddlab.events import EpochEnded
from sddlab.selection import pick_level
from sddlab.store import RunStore

SMALL = {"model.hidden": [16, 16], "data.subset": 200}


def _explorer(tmp_path, data_dir, name="results") -> Explorer:
    explorer = Explorer(results=tmp_path / name, data_dir=data_dir, preset="tiny")
    explorer.presets = {k: v.with_overrides(SMALL) if k == "tiny" else v for k, v in explorer.presets.items()}
    explorer.controls.fill(explorer.presets["tiny"])
    explorer.controls.levels.value = 3
    explorer.controls.epochs.value = 4
    return explorer


def _wait_for(condition, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_run_stop_resume_matches_an_uninterrupted_run(tmp_path, data_dir, without_seconds):
    explorer = _explorer(tmp_path, data_dir)
    epochs_after_stop: list[EpochEnded] = []
    stop_clicked = []
    original = explorer._on_event

    def spy(event):
        if isinstance(event, EpochEnded):
            time.sleep(0.05)  # a slower "epoch", so the click lands mid-run on any machine
            if stop_clicked:
                epochs_after_stop.append(event)
        original(event)

    explorer._on_event = spy
    explorer.run_button.click()
    assert explorer.running and not explorer.stop_button.disabled
    _wait_for(lambda: len(explorer.figures.records) >= 1 and len(explorer.figures.epochs.data[0].x) >= 1)
    stop_clicked.append(True)
    explorer.stop_button.click()
    assert explorer.wait(60)
    kept = len(explorer.figures.records)
    assert 1 <= kept < 4, "stopped part-way with the finished levels kept"
    assert len(epochs_after_stop) <= 1, "stops within one epoch"
    assert "stopped" in explorer.status.value
    assert not explorer.resume_button.disabled

    explorer.resume_button.click()
    assert explorer.wait(120)
    assert "finished" in explorer.status.value
    assert len(explorer.figures.records) == 4

    reference = _explorer(tmp_path, data_dir, name="reference")
    reference.run_button.click()
    assert reference.wait(120)
    assert without_seconds(explorer.figures.records) == without_seconds(reference.figures.records)
    assert "level" in explorer.table.value


def test_configuration_that_ran_shows_from_the_store(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir)
    explorer.run_button.click()
    assert explorer.wait(120)
    run_dir = tmp_path / "results" / explorer.config().run_name()
    figure = (run_dir / "figure.html").read_text()
    assert "digits[200]" in figure and "3 levels" in figure and "4ep per level" in figure, "subtitle from the config"
    assert explorer.presets["tiny"].description not in figure
    fresh = _explorer(tmp_path, data_dir)
    assert len(fresh.figures.records) == 4
    assert "from the store" in fresh.status.value
    assert len(fresh.figures.levels.data[0].x) == 4
    # under the table: the level a noisy-labels-only rule keeps (no held-out split: the noise-floor rule)
    records = pd.DataFrame(RunStore(run_dir).records()).assign(**{"noise.rate": explorer.config().noise.rate})
    assert f"the noise-floor rule keeps level {pick_level(records, 'noise-floor')} (" in fresh.table.value




def test_failure_inside_the_run_is_shown_not_a_dead_thread(tmp_path, data_dir, monkeypatch):
    import sddlab.app.widgets

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sddlab.app.widgets, "run", boom)
    explorer = _explorer(tmp_path, data_dir)
    explorer.run_button.click()
    assert explorer.wait(10)
    assert "error" in explorer.status.value and "disk on fire" in explorer.status.value
    assert not explorer.run_button.disabled


# -- choices as users name them ---------------------------------------------------------------------
def _error(explorer: Explorer) -> str:
    assert not explorer.running
    return explorer.status.value


def test_one_wording_per_rule_shown_in_place_of_stale_curves(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir)
    explorer.run_button.click()
    assert explorer.wait(120) and len(explorer.figures.levels.data[0].x) == 4
    explorer.controls.epochs.value = 0
    zero = _error(explorer)
    assert "epochs / level must be a whole number from 1 to 10000 (got 0)" in zero
    assert "training.duration" not in zero, "the control's name, not the config field"
    assert explorer.figures.levels.data[0].x == () and explorer.figures.levels.layout.title.text == NO_CURVES
    explorer.controls.epochs.value = -3
    assert _error(explorer) == zero.replace("(got 0)", "(got -3)"), "the same wording for every value breaking a rule"
    explorer.run_button.click()
    assert not explorer.running and len(list((tmp_path / "results").iterdir())) == 1, "nothing new written"
    explorer.controls.epochs.value = 4
    assert "finished (from the store)" in explorer.status.value and len(explorer.figures.records) == 4


def test_out_of_range_noise_is_rejected_not_clamped_and_inverted_noise_flagged(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir)
    explorer.controls.noise_rate.value = 1.5
    assert explorer.controls.noise_rate.value == 1.5
    assert "noise rate must be at least 0 and below 1 (got 1.5)" in _error(explorer)
    classes = DATASETS["digits"].num_classes
    limit = (classes - 1) / classes
    explorer.controls.noise_rate.value = 0.95
    assert "at or above 0.9 for symmetric noise on 10 classes" in _error(explorer)
    explorer.controls.noise_rate.value = round(limit - 0.01, 2)
    assert "error" not in explorer.status.value
    explorer.controls.noise_type.value = "pairflip"  # the true class competes with one other: limit 1/2
    assert "at or above 0.5 for pairflip" in _error(explorer)
    explorer.controls.noise_type.value = "random"  # redrawn from all classes: the true class always leads
    assert "error" not in explorer.status.value
    with pytest.raises(ec.ChoiceError, match="noise rate"):
        explorer.controls.noise_rate.value = 1.0
        explorer.config()


def test_option_lists_follow_the_registries_and_the_data_set(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir)
    controls = explorer.controls
    assert controls.data.options == choices("data.name")
    for field, control in (("noise.type", controls.noise_type), ("pruning.score", controls.score),
                           ("pruning.scope", controls.scope), ("retraining.mode", controls.mode)):
        assert tuple(control.options) == choices(field)
    assert {value for _, value in controls.schedule.options} == set(choices("pruning.strategy"))
    assert controls.model.options == ("lenet-300-100", "mlp"), "conv nets need C×H×W input"
    assert controls.hidden.layout.display is None and controls.width.layout.display == "none"
    controls.data.value = "cifar10"
    assert set(controls.model.options) == set(choices("model.name")) and controls.model.value == "mlp"
    controls.model.value = "resnet18"
    assert controls.hidden.layout.display == "none" and controls.width.layout.display is None
    controls.data.value = "mnist1d"
    assert controls.model.value == "mlp", "an architecture that no longer fits is replaced by one that does"


def test_a_preset_fills_the_controls_and_changes_show_the_run_directory(tmp_path, data_dir):
    explorer = Explorer(results=tmp_path / "results", data_dir=data_dir, preset="tiny")
    assert explorer.config() == explorer.presets["tiny"], "an untouched preset is the preset, exactly"
    assert "preset <b>tiny</b> unchanged" in explorer.note.value
    assert explorer.presets["tiny"].run_name() in explorer.note.value
    explorer.controls.model.value = "lenet-300-100"
    chosen = explorer.config()
    assert chosen.model.name == "lenet-300-100" and chosen.run_name() != explorer.presets["tiny"].run_name()
    assert "changed: architecture mlp → lenet-300-100" in explorer.note.value
    assert chosen.run_name() in explorer.note.value
    explorer.controls.preset.value = "digits"
    assert explorer.config() == explorer.presets["digits"] and explorer.controls.model.value == "mlp"
    assert explorer.controls.epochs.value == 150 and explorer.controls.levels.value == 30


def test_schedule_shows_its_reach_and_weights_left(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir)
    weights = 64 * 16 + 16 * 16 + 16 * 10  # the tiny MLP's prunable weights, from its shape
    assert f"reaches {1 - 0.8 ** 3:.2%} sparsity, ≈{round(weights * 0.8 ** 3):,} of {weights:,}" in \
        explorer.controls.reach.value
    explorer.controls.schedule.value = "oneshot"
    explorer.controls.final_sparsity.value = 0.875
    config = explorer.config()
    assert config.pruning.strategy == "oneshot" and config.pruning.fraction == pytest.approx(0.5)
    assert "targets 50.0%, 75.0%, 87.5%" in explorer.controls.reach.value
    assert explorer.controls.fraction.layout.display == "none"


def test_oneshot_and_another_architecture_run_to_their_targets(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir)
    explorer.controls.model.value = "lenet-300-100"
    explorer.controls.schedule.value = "oneshot"
    explorer.controls.final_sparsity.value = 0.875
    explorer.controls.epochs.value = 1
    explorer.run_button.click()
    assert explorer.wait(300)
    assert "finished" in explorer.status.value, explorer.status.value
    run_dir = tmp_path / "results" / explorer.config().run_name()
    config = RunStore(run_dir).config()
    assert config.model.name == "lenet-300-100" and config.pruning.strategy == "oneshot"
    records = explorer.figures.records
    prunable = records[0]["remaining"]
    for record, target in zip(records[1:], (0.5, 0.75, 0.875), strict=True):
        assert abs(record["sparsity"] - target) <= 1 / prunable
    assert list(explorer.figures.levels.data[0].x) == pytest.approx([1 - r["sparsity"] for r in records])
    assert "one-shot levels to 87.50%" in (run_dir / "figure.html").read_text()


def test_notebook_parameters_and_controls_build_the_same_config():
    from sddlab.presets import get_preset

    base = get_preset("tiny")
    chosen = ec.choices_of(base).updated(model="lenet-300-100", schedule="oneshot", final_sparsity=0.875, epochs=2)
    parameters = {**ec.as_parameters(chosen), "hidden": None}
    assert ec.from_parameters(base, **parameters) == ec.to_config(base, chosen)
    assert ec.from_parameters(base) == base
    with pytest.raises(ec.ChoiceError, match="architecture 'resnet18' does not fit data set digits"):
        ec.from_parameters(base, model="resnet18")
    with pytest.raises(ec.ChoiceError, match="hidden sizes must be positive whole numbers"):
        ec.from_parameters(base, hidden="64,-1")
    with pytest.raises(ec.ChoiceError, match="'depth' is not one of"):
        ec.from_parameters(base, depth=3)


def test_missing_data_set_is_one_line_and_leaves_no_empty_folders(tmp_path, monkeypatch):
    import sddlab.app.widgets

    data = tmp_path / "data"
    (data / "kept").mkdir(parents=True)

    def missing(config, results, data_dir, **kwargs):
        (data_dir / "mnist" / "MNIST" / "raw").mkdir(parents=True)
        raise DatasetMissing("mnist not found under data/mnist: put train-images-idx3-ubyte.gz in data/mnist/MNIST/raw/"
                             ", or run with internet to download them (download failed: Error downloading x.gz:)")

    monkeypatch.setattr(sddlab.app.widgets, "run", missing)
    explorer = Explorer(results=tmp_path / "results", data_dir=data, preset="tiny")
    explorer.controls.data.value = "mnist"
    explorer.run_button.click()
    assert explorer.wait(10)
    message = explorer.status.value
    assert "data set mnist is not on disk and could not be downloaded here" in message
    assert "put train-images-idx3-ubyte.gz" in message and "download failed" not in message
    assert sorted(p.name for p in data.rglob("*")) == ["kept"], "the download's empty folders are removed"


# -- live figures --------------------------------------------------------------
def test_epoch_plot_has_markers_and_a_current_title(tmp_path, data_dir):
    from sddlab.events import LevelStarted
    from sddlab.training import EpochStats

    figures = _explorer(tmp_path, data_dir).figures
    assert all("markers" in trace.mode for trace in figures.epochs.data)
    figures(LevelStarted(level=2, sparsity=0.36, remaining=100))
    assert figures.epochs.layout.title.text.startswith("level 2 ")
    figures(EpochEnded(level=2, stats=EpochStats(1, 5, 10, 0.5, 0.6, 0.1, 0.0, test_acc=0.7)))
    assert figures.epochs.layout.title.text == "level 2, epoch 1/5"
    assert figures.epochs.data[0].x == (1,) and figures.epochs.data[1].y == (0.7,)
    figures(LevelStarted(level=3, sparsity=0.49, remaining=80))
    assert figures.epochs.layout.title.text.startswith("level 3 ") and figures.epochs.data[0].x == ()
    figures.show_records([])
    assert figures.epochs.layout.title.text == "current level, per epoch"


def test_phases_are_shaded_live_with_labels_above_the_data(finished_run):
    from sddlab.figures.live import LiveFigures
    from sddlab.phases import detect_phases

    records = RunStore(finished_run).records()
    figures = LiveFigures()
    figures.show_records(records)
    report = detect_phases(RunStore(finished_run).table())
    assert figures.phases == report.summary
    named = {f"{phase} {glyph}": phase for phase, glyph in
             (("light", "●"), ("critical", "▼"), ("sweet", "★"), ("collapsed", "✕"))}
    labels = [a for a in figures.levels.layout.annotations if a.text in named]
    assert labels and all(a.y >= 1.0 and a.yanchor == "bottom" for a in labels), "labels sit above the plot"
    symbols = {"light": "circle", "critical": "triangle-down", "sweet": "star", "collapsed": "x"}
    by_level = {row["level"]: row["phase"] for row in report.to_frame().to_dict("records")}
    test = figures.levels.data[0]
    assert test.meta == "test_acc"
    assert list(test.marker.symbol) == [symbols[by_level[r["level"]]] for r in records], "phases not by colour alone"



@pytest.mark.slow
def test_explore_notebook_takes_the_controls_as_papermill_parameters(tmp_path):
    from sddlab.app.notebooks import execute

    out = tmp_path / "explore"
    execute("explore", {"results": str(tmp_path / "results"), "preset": "tiny", "interactive": False,
                        "model": "lenet-300-100", "schedule": "oneshot", "final_sparsity": 0.875, "levels": 3,
                        "epochs": 1}, out, progress=False)
    values = json.loads((out / "values.json").read_text())
    assert values["model"] == "lenet-300-100" and values["strategy"] == "oneshot" and values["levels"] == 4
    prunable = 64 * 300 + 300 * 100  # LeNet-300-100 on digits; its output layer is never pruned
    for sparsity, target in zip(values["sparsity"][1:], (0.5, 0.75, 0.875), strict=True):
        assert abs(sparsity - target) <= 1 / prunable
    run_dir = tmp_path / "results" / values["run"]
    assert "one-shot levels to 87.50%" in (run_dir / "figure.html").read_text()
