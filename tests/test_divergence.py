"""Divergence: an exploding or non-finite loss stops the run with one line naming the level, the level is
recorded with its reason, a rerun repeats the line without training, figures show a gap, phases skip it."""

from __future__ import annotations

import importlib
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sddlab
import sddlab.divergence
import sddlab.epoch_end
from sddlab.app.tables import format_table
from sddlab.divergence import (
    WEIGHT_LIMIT,
    Diverged,
    SeedsDiverged,
    advice,
    check_epoch,
    diverged_record,
    largest_weight,
    loss_limit,
)
from sddlab.events import LevelFinished
from sddlab.figures.curve import curve_figure
from sddlab.figures.live import LiveFigures, level_means
from sddlab.phases import detect_phases
from sddlab.preparation import prepare
from sddlab.runtime import Runtime
from sddlab.store import RunStore
from sddlab.training import EpochStats

REPO = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize(("step", "probe"), [("autograd", "divergence.largest_weight"),
                                             ("auto", "lockstep.group.largest_per_seed")])
def test_the_probe_changes_no_result(step, probe, tmp_path, small_config, run_config, without_seconds, monkeypatch):
    """Both training steps probe the weights once per epoch, and the probe changes no record."""
    calls = []
    module = importlib.import_module(f"sddlab.{probe.rpartition('.')[0]}")
    original = getattr(module, probe.rpartition(".")[2])

    def counted(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(module, probe.rpartition(".")[2], counted)
    probed = run_config(small_config(), tmp_path / "probed", step=step)
    assert len(calls) == 4 * 2  # once per epoch: 4 levels of 2 epochs
    monkeypatch.setattr(sddlab.epoch_end, "check_epoch", lambda *args: None)  # no check at all
    unchecked = run_config(small_config(), tmp_path / "unchecked", step=step)
    assert len(calls) == (8 if step == "autograd" else 16)  # the stacked loop takes its peaks before the check
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


SMALL_SET = ["--set", "model.hidden=16,16", "--set", "data.subset=200", "--set", "training.duration=2ep",
             "--set", "experiment.levels=2", "--set", "training.lr=1e8"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`sddlab ARGS` in a fresh process, progress bar on unless the args say --quiet; output decoded as is
    (text mode would turn the bar's carriage returns into new lines)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "sddlab", *args, "--data", str(cwd / "data")], cwd=cwd, env=env,
                          capture_output=True, timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def _lines(stderr: str) -> list[str]:
    """What a terminal keeps of stderr: lines, each as the progress bar last redrew it."""
    return [line.split("\r")[-1] for line in stderr.split("\n") if line.split("\r")[-1].strip()]


@pytest.mark.parametrize("quiet", [False, True], ids=["progress-bar", "quiet"])
def test_the_command_line_ends_with_the_one_diverged_line_and_exit_2(quiet, tmp_path):
    done = _cli("run", "--preset", "tiny", *SMALL_SET, "--results", str(tmp_path / "r"),
                *(["--quiet"] if quiet else []), cwd=tmp_path)
    lines = _lines(done.stderr)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert lines[-1].startswith("sddlab: error: level 0 diverged at epoch 1: weights exploded")
    assert "--set training.lr=1e+07" in lines[-1]
    assert [line for line in lines if "diverged at epoch" in line] == lines[-1:]
    if quiet:
        assert lines == lines[-1:]
    else:  # the bar ended its line at the diverged level, before the error
        assert len(lines) == 2 and "test=diverged" in lines[0] and "level=0" in lines[0]


def sorted_seeds(runs: list) -> list[int]:
    return [RunStore(run_dir).config().experiment.seed for run_dir in runs]


def test_a_sweep_records_its_diverged_seeds_and_reports_them(tmp_path):
    results = tmp_path / "r"
    done = _cli("sweep", "--preset", "tiny", *SMALL_SET, "--seeds", "0", "1", "--results", str(results), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    runs = sorted(path for path in results.iterdir() if path.name != "sweeps")
    assert len(runs) == 2
    for run_dir in runs:  # the diverged level, nothing after it
        (record,) = RunStore(run_dir).records()
        assert record["level"] == 0 and record["diverged"].startswith("level 0 diverged at epoch 1: ")
        assert "test_acc" not in record and not RunStore(run_dir).meta().get("finished")
        shown = format_table(RunStore(run_dir).table()).splitlines()  # `sddlab show`: the level says it diverged
        assert shown[0].split()[-1] == "diverged" and shown[1].split()[-1] == "yes"
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed: ")]
    assert sorted(line.split(":")[1].strip() for line in failed) == [f"{r.name} (seed {s})" for r, s in
                                                                      zip(runs, sorted_seeds(runs), strict=True)]
    assert all(": Diverged: level 0 diverged at epoch 1: " in line for line in failed)  # each seed its own reason
    assert "0 of 2 run(s) finished, 2 failed" in done.stdout and "diverge again when rerun" in done.stderr
    summary = (results / "sweeps" / "sweep" / "summary.csv").read_text().strip()
    assert summary == ""  # no level that looks ordinary
    assert "test_acc" not in done.stdout


def test_live_figures_and_the_band_skip_a_diverged_seed(finished_run):
    records = RunStore(finished_run).records()
    diverged = diverged_record(2, {"w": torch.ones(4, dtype=torch.bool)}, 0, Diverged.at(2, 1, "loss is nan", ""))
    by_seed = {0: records, 1: [*records[:2], {**diverged, "sparsity": records[2]["sparsity"]}]}
    means = level_means(by_seed)
    assert [m["seeds"] for m in means] == [2, 2, 1, 1]
    assert means[2]["test_acc"] == records[2]["test_acc"] and means[2]["test_acc_std"] == 0.0
    figures = LiveFigures()
    figures.show_seeds(by_seed)
    line = next(trace for trace in figures.levels.data if trace.meta == "seed:1")
    assert list(line.y) == [records[0]["test_acc"], records[1]["test_acc"], None]  # a gap, not a fake value
    alone = LiveFigures()
    for record in by_seed[1]:
        alone(LevelFinished(record))
    test = next(trace for trace in alone.levels.data if trace.meta == "test_acc")
    assert list(test.y) == [records[0]["test_acc"], records[1]["test_acc"], None]


def test_divergence_errors_cross_process_boundaries_unchanged():
    one = Diverged.at(1, 2, "training loss is nan", "lower training.lr")
    stored = Diverged.stored({"level": 0, "diverged": "level 0 diverged at epoch 1: x; y"})
    group = SeedsDiverged({4: one, 2: stored}, 3)
    assert str(group) == ("seeds 2, 4 diverged (the other seeds went on): seed 2: level 0 diverged at epoch 1: x; "
                          "seed 4: level 1 diverged at epoch 2: training loss is nan; lower training.lr; y")
    for error in (one, group):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)


def test_the_advice_names_the_learning_rate_the_diverged_level_trained_with():
    config = sddlab.get_preset("tiny").with_overrides({"retraining.mode": "finetune", "retraining.finetune_lr": 1e8})
    assert advice(config, 0).startswith("lower training.lr (now 0.003)")  # the dense level trains with training.lr
    assert advice(config, 1) == "lower retraining.finetune_lr (now 1e+08), e.g. --set retraining.finetune_lr=1e+07"
    rewind = config.with_overrides({"retraining.mode": "rewind"})
    assert advice(rewind, 1).startswith("lower training.lr")
