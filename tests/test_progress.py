"""The run's progress bar: epochs still to train, level and accuracy in its postfix, nothing for a finished run."""

from __future__ import annotations

from pathlib import Path

from sddlab.events import EpochEnded, LevelFinished, LevelStarted, RunFinished, RunStarted
from sddlab.progress import ProgressBar
from sddlab.training import EpochStats


def _stats(epoch: int) -> EpochStats:
    return EpochStats(epoch, 2, 10 * epoch, None, None, 0.1, 0.01)


def test_the_bar_counts_the_epochs_left_and_shows_the_last_accuracy(capsys):
    bar = ProgressBar(mininterval=0)
    bar(RunStarted(Path("runs/abc"), 3, 1, [2, 2, 2]))  # level 0 already stored: 4 epochs to go
    bar(LevelStarted(1, 0.2, 80))
    for epoch in (1, 2):
        bar(EpochEnded(1, _stats(epoch)))
    bar(LevelFinished({"level": 1, "test_acc": 0.8125}))
    bar(RunFinished(Path("runs/abc")))
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "2/4" in err and "level=1" in err and "test=0.812" in err and "3/4" not in err


def test_a_finished_run_read_back_shows_no_bar(capsys):
    bar = ProgressBar(mininterval=0)
    bar(RunStarted(Path("runs/abc"), 3, 3, [0, 0, 0]))
    bar(LevelFinished({"level": 0, "test_acc": 0.5}, cached=True))
    bar(RunFinished(Path("runs/abc")))
    assert capsys.readouterr().err == ""
