"""A run slower than expected says so, with the reason the machine shows (other busy processes)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sddlab.events import EpochEnded, RunStarted
from sddlab.pace import Load, LoadSampler, Pace, describe_load
from sddlab.training import EpochStats


class FakeSampler:
    def __init__(self, loads: list[Load]):
        self.loads = loads

    def sample(self) -> Load:
        return self.loads.pop(0) if len(self.loads) > 1 else self.loads[0]


def _epoch(seconds: float, level: int = 1) -> EpochEnded:
    return EpochEnded(level=level, stats=EpochStats(1, 3, 10, 0.5, 0.6, 0.1, seconds))


def test_a_slower_epoch_beside_a_busy_process_names_it():
    busy = Load(1.0, 2, [("python", 4242, 99.0)])
    notes: list[str] = []
    pace = Pace(notes.append, threads=1, sampler=FakeSampler([Load(0.0, 2), Load(0.0, 2), busy]), interval=0.0)
    pace(RunStarted(Path("r"), 2, 0))
    pace(_epoch(0.10))
    pace(_epoch(0.11))
    assert pace.note == "" and notes == [], "as fast as expected: nothing to say"
    pace(_epoch(0.30))
    assert pace.note == ("slow: this run is 3.0× slower than its fastest epoch: other processes keep 1.0 of 2 cores "
                         "busy: python (pid 4242) 99%, beside this run's 1 thread(s)")
    assert notes == [pace.note]
    pace(_epoch(0.31))
    assert len(notes) == 1, "the same reason is said once"
    pace.fastest = 0.3
    pace._sampler = FakeSampler([Load(0.0, 2)])
    pace(_epoch(0.3))
    assert pace.note == "" and notes[-1] == "", "the note clears when the run is fast again"


def test_two_threads_beside_a_busy_core_are_slow_before_any_epoch_is():
    """The measured 4.9× case: two intra-op threads on two cores while one core is busy elsewhere."""
    pace = Pace(threads=2, sampler=FakeSampler([Load(1.0, 2, [("stress", 7, 100.0)])]), interval=0.0)
    pace(RunStarted(Path("r"), 2, 0))
    pace(_epoch(0.1))
    assert pace.note.startswith("slow: this run is slower than expected: other processes keep 1.0 of 2 cores busy")
    alone = Pace(threads=1, sampler=FakeSampler([Load(1.0, 2)]), interval=0.0)
    alone(_epoch(0.1))
    assert alone.note == "", "one thread beside one busy core fits the two cores"


def test_an_unexplained_slowdown_says_no_busy_process_was_found():
    pace = Pace(threads=1, sampler=FakeSampler([Load(0.1, 4)]), interval=0.0)
    pace(_epoch(0.1))
    pace(_epoch(0.2))
    assert pace.note == ("slow: this run is 2.0× slower than its fastest epoch: no other busy process found "
                         "(0.1 of 4 cores busy)")


def test_the_sampler_finds_a_busy_process():
    pytest.importorskip("psutil")
    sampler = LoadSampler(top=1000, min_share=0.5)  # on a crowded machine the spinner gets a small share
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        found = []
        for _ in range(10):  # a loaded machine may give the spinner little time at first
            time.sleep(1.0)
            load = sampler.sample()
            found = [pid for _, pid, _ in load.busiest]
            if busy.pid in found:
                break
        assert busy.pid in found, describe_load(load)
        assert load.others > 0.2 and load.cores >= 1
    finally:
        busy.kill()
        busy.wait()
