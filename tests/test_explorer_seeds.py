"""The explorer's seeds control: K seeds run through `run_seeds`, each seed's line and the mean ± std band."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from sddlab.app import explorer_choices as ec
from sddlab.app.widgets import Explorer
from sddlab.events import EpochEnded, LevelFinished, LevelStarted, RunStarted
from sddlab.figures.axis import remaining_fraction
from sddlab.figures.live import LiveFigures
from sddlab.runs import run_dir_of, run_seeds, with_seeds
from sddlab.store import RunStore
from sddlab.training import EpochStats

SMALL = {"model.hidden": [16, 16], "data.subset": 200}


def _explorer(tmp_path, data_dir, seeds: int, name: str = "results") -> Explorer:
    explorer = Explorer(results=tmp_path / name, data_dir=data_dir, preset="tiny")
    explorer.presets = {k: v.with_overrides(SMALL) if k == "tiny" else v for k, v in explorer.presets.items()}
    explorer.controls.fill(explorer.presets["tiny"])
    explorer.controls.levels.value = 3
    explorer.controls.epochs.value = 4
    explorer.controls.seeds.value = seeds
    return explorer


def _trace(figures: LiveFigures, meta: str):
    return next(trace for trace in figures.levels.data if trace.meta == meta)


def _expected_band(per_seed: list[list[dict]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, mean, mean - std, mean + std per level, computed here from the stored records (sample std, ddof=1)."""
    accs = np.array([[record["test_acc"] for record in records] for records in per_seed])  # (K, levels)
    mean, std = accs.mean(axis=0), accs.std(axis=0, ddof=1)
    sparsity = np.array([[record["sparsity"] for record in records] for records in per_seed]).mean(axis=0)
    return remaining_fraction(sparsity), mean, mean - std, mean + std


def _check_figure(figures: LiveFigures, per_seed: list[list[dict]], seeds: list[int]) -> None:
    x, mean, lower, upper = _expected_band(per_seed)
    assert list(_trace(figures, "band:lower").y) == pytest.approx(lower, rel=1e-12, abs=1e-15)
    assert list(_trace(figures, "band:upper").y) == pytest.approx(upper, rel=1e-12, abs=1e-15)
    assert _trace(figures, "band:upper").fill == "tonexty", "the upper edge fills down to the lower one"
    assert list(_trace(figures, "band:upper").x) == pytest.approx(x) == list(_trace(figures, "band:lower").x)
    assert list(_trace(figures, "test_acc").y) == pytest.approx(mean, rel=1e-12), "the test line is the mean"
    for seed, records in zip(seeds, per_seed, strict=True):
        line = _trace(figures, f"seed:{seed}")
        assert list(line.y) == [record["test_acc"] for record in records] and line.line.width < 2, "thin"
        assert list(line.x) == pytest.approx(remaining_fraction([record["sparsity"] for record in records]))


@pytest.mark.parametrize("count", [2, 3])
def test_seeds_run_in_lockstep_and_draw_each_seed_and_the_band(tmp_path, data_dir, without_seconds, count):
    explorer = _explorer(tmp_path, data_dir, count)
    assert f"and {count - 1} more: {count} seeds ({', '.join(map(str, range(count)))}) in lockstep" in \
        explorer.note.value
    explorer.run_button.click()
    assert explorer.wait(300)
    assert "finished" in explorer.status.value, explorer.status.value
    config = explorer.config()
    seeds = list(range(config.experiment.seed, config.experiment.seed + count))
    run_dirs = [run_dir_of(seeded, tmp_path / "results") for seeded in with_seeds(config, seeds)]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == sorted(d.name for d in run_dirs)
    assert all((d / "figure.html").exists() for d in run_dirs)
    stored = [RunStore(d).records() for d in run_dirs]
    assert [RunStore(d).config().experiment.seed for d in run_dirs] == seeds
    assert all(len(records) == 4 for records in stored)

    reference = run_seeds(config, seeds, tmp_path / "reference", data_dir=data_dir, progress=False)
    assert [without_seconds(records) for records in stored] == \
        [without_seconds(RunStore(d).records()) for d in reference], "the explorer's runs are run_seeds' runs"
    _check_figure(explorer.figures, stored, seeds)
    assert f"of {count} seeds" in explorer.table.value and explorer.resume_button.disabled

    fresh = _explorer(tmp_path, data_dir, count)  # read back from the store: the same lines and band
    assert "finished (from the store)" in fresh.status.value
    _check_figure(fresh.figures, stored, seeds)


def test_stop_and_resume_with_two_seeds_match_run_seeds(tmp_path, data_dir, without_seconds):
    explorer = _explorer(tmp_path, data_dir, 2)
    original = explorer._on_seed_event

    def slow(seed, event):
        if isinstance(event, EpochEnded):
            time.sleep(0.05)  # a slower "epoch", so the click lands mid-run on any machine
        original(seed, event)

    explorer._on_seed_event = slow
    explorer.run_button.click()
    deadline = time.monotonic() + 120
    while not all(explorer.figures.by_seed.values()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    explorer.stop_button.click()
    assert explorer.wait(120)
    assert "stopped" in explorer.status.value and not explorer.resume_button.disabled
    kept = [len(records) for records in explorer.figures.by_seed.values()]
    assert all(1 <= n < 4 for n in kept), kept
    explorer.resume_button.click()
    assert explorer.wait(300)
    assert "finished" in explorer.status.value, explorer.status.value
    config = explorer.config()
    run_dirs = [run_dir_of(seeded, tmp_path / "results") for seeded in with_seeds(config, [0, 1])]
    stored = [RunStore(d).records() for d in run_dirs]
    reference = run_seeds(config, [0, 1], tmp_path / "reference", data_dir=data_dir, progress=False)
    assert [without_seconds(records) for records in stored] == \
        [without_seconds(RunStore(d).records()) for d in reference]
    _check_figure(explorer.figures, stored, [0, 1])


@pytest.mark.parametrize("count", [0, 9])
def test_out_of_range_seeds_are_refused_before_any_run_directory(tmp_path, data_dir, count):
    explorer = _explorer(tmp_path, data_dir, count)
    assert f"seeds must be a whole number from 1 to 8 (got {count})" in explorer.status.value
    assert "error" in explorer.status.value
    explorer.run_button.click()
    assert not explorer.running
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir()), "nothing written"


def test_seeds_parameters_are_checked_like_the_control():
    from sddlab.presets import get_preset

    base = get_preset("tiny")
    assert ec.from_parameters(base, seeds=3) == base, "seeds is no part of the config"
    for bad in (0, 9, 2.5, "2", True):
        with pytest.raises(ec.ChoiceError, match=rf"^seeds must be a whole number from 1 to 8 \(got {bad!r}\)$"):
            ec.from_parameters(base, seeds=bad)
    assert ec.as_parameters(ec.choices_of(base))["seeds"] == 1


def test_the_note_says_one_after_another_for_a_conv_net(tmp_path, data_dir):
    explorer = _explorer(tmp_path, data_dir, 3)
    explorer.controls.data.value = "cifar10"
    explorer.controls.model.value = "resnet18"
    assert "3 seeds (0, 1, 2) one after another" in explorer.note.value
    explorer.controls.seeds.value = 1
    assert "seeds" not in explorer.note.value, "one seed: the note as before"


def test_one_seed_draws_exactly_the_one_run_figure(tmp_path, data_dir, finished_run):
    records = RunStore(finished_run).records()
    one = LiveFigures()
    one.show_records(records)
    assert len(one.levels.data) == 4 and not any(str(t.meta).startswith(("band", "seed")) for t in one.levels.data)
    after_seeds = LiveFigures()
    after_seeds.show_seeds({0: records, 1: records})
    assert len(after_seeds.levels.data) == 4 + 2 + 2
    after_seeds.show_records(records)
    assert after_seeds.levels.to_json() == one.levels.to_json(), "back to one seed: exactly the one-run figure"


def test_band_covers_the_seeds_that_finished_each_level_and_epochs_follow_one_seed(finished_run):
    records = RunStore(finished_run).records()
    other = [{**record, "test_acc": record["test_acc"] - 0.1 * (record["level"] + 1)} for record in records]
    figures = LiveFigures()
    figures.start_seeds([4, 5])
    for seed, run in ((4, records), (5, other[:2])):  # one after another; seed 5 stopped after level 1
        figures.seed_event(seed, RunStarted(finished_run, 4, 0))
        for record in run:
            figures.seed_event(seed, LevelStarted(record["level"], record["sparsity"], record["remaining"]))
            figures.seed_event(seed, LevelFinished(record))
    assert len(figures.levels.data) == 4 + 2 + 2, "a seed's RunStarted keeps the other seeds"
    both = np.array([[r["test_acc"] for r in records[:2]], [r["test_acc"] for r in other[:2]]])
    mean = list(both.mean(axis=0)) + [r["test_acc"] for r in records[2:]]
    std = list(both.std(axis=0, ddof=1)) + [0.0, 0.0]
    assert list(_trace(figures, "band:upper").y) == pytest.approx(np.add(mean, std), rel=1e-12)
    assert list(_trace(figures, "band:lower").y) == pytest.approx(np.subtract(mean, std), rel=1e-12)
    assert [r["seeds"] for r in figures.records] == [2, 2, 1, 1]
    figures.seed_event(4, EpochEnded(level=3, stats=EpochStats(1, 5, 10, 0.5, 0.6, 0.1, 0.0, test_acc=0.7)))
    assert figures.epochs.data[1].y == (), "seed 5 started a level last: the epoch plot follows it"
    figures.seed_event(5, EpochEnded(level=1, stats=EpochStats(1, 5, 10, 0.5, 0.6, 0.1, 0.0, test_acc=0.7)))
    assert figures.epochs.data[1].y == (0.7,)


@pytest.mark.slow
def test_explore_notebook_takes_seeds_as_a_papermill_parameter(tmp_path):
    from sddlab.app.notebooks import execute

    out = tmp_path / "explore"
    execute("explore", {"results": str(tmp_path / "results"), "preset": "tiny", "interactive": False, "seeds": 2,
                        "levels": 2, "epochs": 1}, out, progress=False)
    values = json.loads((out / "values.json").read_text())
    assert len(values["runs"]) == 2 and values["run"] == values["runs"][0]
    seeds = [RunStore(tmp_path / "results" / name).config().experiment.seed for name in values["runs"]]
    assert seeds == [0, 1] and all(len(RunStore(tmp_path / "results" / n).records()) == 3 for n in values["runs"])
    page = (out / "curve.html").read_text()
    assert page.count('"meta":"seed:') == 2 and '"meta":"band:upper"' in page, "each seed's line and the band"


@pytest.mark.parametrize("count", [1, 2])
def test_a_diverging_run_keeps_its_curves_and_says_so_in_the_status(tmp_path, data_dir, count):
    """lr = 1e8: every seed diverges at level 0; the explorer says so in one red line (not a dead thread, not
    the wiped 'fix the choice' figure), and the diverged level is drawn as a gap."""
    explorer = _explorer(tmp_path, data_dir, count)
    explorer.presets["tiny"] = explorer.presets["tiny"].with_overrides({"training.lr": 1e8})
    explorer.controls.fill(explorer.presets["tiny"])
    explorer.controls.levels.value, explorer.controls.epochs.value, explorer.controls.seeds.value = 3, 4, count
    explorer.run_button.click()
    assert explorer.wait(120)
    status = explorer.status.value
    expected = "level 0 diverged at epoch 1" if count == 1 else "seeds 0, 1 diverged: seed 0: level 0 diverged"
    assert "<b>diverged:</b>" in status and expected in status and "error" not in status
    runs = list(explorer.figures.by_seed.values()) if count > 1 else [explorer.figures.records]
    assert [[r["level"] for r in records] for records in runs] == [[0]] * count
    assert all("diverged" in records[0] and "test_acc" not in records[0] for records in runs)
    assert list(_trace(explorer.figures, "test_acc").y) == [None]  # a gap, not a number
    assert not explorer.run_button.disabled and explorer.stop_button.disabled
