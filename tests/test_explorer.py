"""The explorer's logic without a browser: simulated clicks drive a background run."""

from __future__ import annotations

import time

from sddlab.app.widgets import Explorer
from sddlab.events import EpochEnded

SMALL = {"model.hidden": [16, 16], "data.subset": 200}


def _explorer(tmp_path, data_dir, name="results") -> Explorer:
    explorer = Explorer(results=tmp_path / name, data_dir=data_dir, preset="tiny")
    explorer.presets = {k: v.with_overrides(SMALL) if k == "tiny" else v for k, v in explorer.presets.items()}
    explorer.levels.value = 3
    explorer.epochs.value = 4
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
    fresh = _explorer(tmp_path, data_dir)
    assert len(fresh.figures.records) == 4
    assert "from the store" in fresh.status.value
    assert len(fresh.figures.levels.data[0].x) == 4


def test_invalid_choice_shows_an_error_in_the_widget(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir)
    explorer.epochs.value = 0
    explorer.run_button.click()
    assert not explorer.running
    assert "error" in explorer.status.value and "training.duration" in explorer.status.value
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


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
