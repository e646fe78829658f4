"""Intra-op threads follow the workload and the load other processes put on the machine, within a ceiling."""

from __future__ import annotations

import pytest
import torch

import sddlab.runtime as runtime_module
from sddlab.events import EpochEnded
from sddlab.models.mlp import MLP
from sddlab.runtime import SMALL_STEP_FLOP, Runtime, ThreadChoice, cores_busy_elsewhere, step_flop
from sddlab.training import EpochStats


@pytest.fixture
def two_cores(monkeypatch):
    """A 2-core machine whose other processes' busy core-seconds the test sets; this process given 2 threads."""
    clock = {"wall": 0.0, "own": 0.0, "busy": 0.0}
    monkeypatch.setattr(runtime_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(runtime_module, "_GIVEN", {})  # no choice made yet in this process
    monkeypatch.setattr(runtime_module, "cpu_sample", lambda: (clock["wall"], clock["own"], clock["busy"]))
    monkeypatch.setattr(runtime_module.time, "sleep", lambda seconds: clock.update(wall=clock["wall"] + seconds))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield clock
    torch.set_num_threads(previous)


def test_step_flop_is_six_times_batch_times_weights():
    model = MLP(64, (256, 256), 10)
    assert step_flop(model, 64) == 6 * 64 * (64 * 256 + 256 * 256 + 256 * 10)  # 32.4 MFLOP: the digits step


def test_cores_busy_elsewhere_subtracts_this_process():
    # over 2 s the machine was busy 3 core-seconds, 1 of them this process's: others kept 1 core busy
    assert cores_busy_elsewhere((10.0, 5.0, 100.0), (12.0, 6.0, 103.0)) == pytest.approx(1.0)
    assert cores_busy_elsewhere((10.0, 5.0, 100.0), (12.0, 9.0, 103.0)) == 0.0  # never negative


def test_large_steps_take_the_free_cores_and_small_ones_one_thread(two_cores):
    choice = ThreadChoice(flop=10 * SMALL_STEP_FLOP)
    assert choice.choose() == 2 and torch.get_num_threads() == 2  # idle machine (a short sample, nothing busy)
    two_cores.update(wall=two_cores["wall"] + 10.0, busy=two_cores["busy"] + 9.0)  # one busy process
    assert choice.choose() == 1 and torch.get_num_threads() == 1
    two_cores.update(wall=two_cores["wall"] + 10.0, busy=two_cores["busy"] + 1.0)  # it went away
    assert choice.choose() == 2
    two_cores.update(wall=two_cores["wall"] + 10.0, busy=two_cores["busy"] + 3.0)  # a light neighbour: 0.3 core
    assert choice.choose() == 1  # erring low: a wrong "free" costs far more than a missed second thread
    assert ThreadChoice(flop=SMALL_STEP_FLOP / 2).choose() == 1


def test_the_choice_never_exceeds_what_the_process_was_given(two_cores):
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 or a pool worker's share
    assert ThreadChoice(flop=None).choose() == 1
    torch.set_num_threads(2)  # given two again: an idle machine gets both
    assert ThreadChoice(flop=None).choose() == 2


def test_the_listener_rechooses_after_an_epoch_once_enough_time_passed(two_cores):
    choice = ThreadChoice(flop=None)
    choice.choose()
    event = EpochEnded(0, EpochStats(1, 2, 10, None, None, 0.1, 1.0))
    two_cores.update(wall=two_cores["wall"] + runtime_module.RECHOOSE_S / 2, busy=two_cores["busy"] + 1.0)
    choice(event)  # too soon: kept
    assert torch.get_num_threads() == 2
    two_cores.update(wall=two_cores["wall"] + runtime_module.RECHOOSE_S, busy=two_cores["busy"] + 2.0)
    choice(event)
    assert torch.get_num_threads() == 1


def test_fixed_threads_are_set_as_asked(two_cores):
    assert Runtime(device="cpu", threads=1).configure_backends() is None
    assert torch.get_num_threads() == 1
    assert isinstance(Runtime(device="cpu").configure_backends(flop=1.0), ThreadChoice)


def test_a_sample_taken_before_the_set_up_spares_the_pause(two_cores, monkeypatch):
    slept = []
    monkeypatch.setattr(runtime_module.time, "sleep", slept.append)
    since = runtime_module.cpu_sample()
    two_cores.update(wall=two_cores["wall"] + 0.5, own=0.4, busy=two_cores["busy"] + 0.9)  # set-up beside a neighbour
    assert ThreadChoice(flop=10 * SMALL_STEP_FLOP, since=since).choose() == 1  # it kept a core busy
    two_cores.update(wall=two_cores["wall"] + 1.0, own=0.4, busy=two_cores["busy"])  # the neighbour left
    quick = ThreadChoice(flop=10 * SMALL_STEP_FLOP, since=runtime_module.cpu_sample())
    assert quick.choose() == 1  # a set-up too short to measure: one thread, the cheap mistake, until...
    event = EpochEnded(0, EpochStats(1, 2, 10, None, None, 0.1, 1.0))
    two_cores.update(wall=two_cores["wall"] + quick.sample_s / 2, own=two_cores["own"] + quick.sample_s / 2,
                     busy=two_cores["busy"] + quick.sample_s / 2)
    quick(event)
    assert torch.get_num_threads() == 1
    two_cores.update(wall=two_cores["wall"] + quick.sample_s, own=two_cores["own"] + quick.sample_s,
                     busy=two_cores["busy"] + quick.sample_s)  # this process's own use only
    quick(event)  # ...the first event after a full sample: an idle machine, both threads
    assert torch.get_num_threads() == 2 and slept == []
