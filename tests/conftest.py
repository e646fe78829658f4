"""Shared fixtures for the core tests: small configs, a runner into temporary folders, one finished run."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import sddlab
import sddlab.data.device
import sddlab.experiment
import sddlab.runs
from sddlab.config import Config

# One intra-op thread: the models here are tiny, and on a small machine shared with other jobs two
# spinning OpenMP threads made a small run 10-30x slower (1.3-4 s instead of 0.13 s).
torch.set_num_threads(1)

# The `tiny` preset made smaller still: 200 training examples, MLP 64-16-16-10, 2 epochs, levels 0..3.
SMALL = {"model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 3, "data.subset": 200}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A data folder of its own (digits needs none; MNIST-1D would be cached here)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def small_config():
    """`small_config({'noise.rate': 0.2})`: the tiny preset with SMALL and then the given overrides."""

    def make(overrides: dict[str, Any] | None = None, preset: str = "tiny") -> Config:
        return sddlab.get_preset(preset).with_overrides({**SMALL, **(overrides or {})})

    return make


@pytest.fixture(scope="session")
def run_config(data_dir):
    """`run_config(config, results, **kwargs)`: sddlab.run on the CPU, no progress bar, test data folder."""

    def run(config: Config, results: Path, **kwargs: Any) -> Path:
        kwargs.setdefault("progress", False)
        kwargs.setdefault("device", "cpu")
        return sddlab.run(config, results, data_dir=data_dir, **kwargs)

    return run


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, small_config, run_config) -> Path:
    """The run directory of one finished small run (rewind mode); tests must only read it."""
    return run_config(small_config(), tmp_path_factory.mktemp("finished"))


@pytest.fixture(autouse=True)
def _keeps_its_ctrl_c_handler():
    """`main()` ignores Ctrl-C once a command is done (for the process's teardown); the test process keeps its own."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture
def cli(monkeypatch, capsys):
    """`cli(*args)`: `sddlab ARGS` in this process through `main()`, with the command line's defaults (the
    progress bar on): (exit code, stdout, stderr). An exception that escapes `main()` fails the test."""
    from sddlab.app.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["sddlab", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture(scope="session")
def without_seconds():
    """Level records with the wall-clock column dropped, for exact comparison between runs."""

    def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{key: value for key, value in record.items() if key != "seconds"} for record in records]

    return strip


@pytest.fixture
def spy_train(monkeypatch):
    """Record every call of the training loop made by experiments: span, schedule and weights at entry.
    Runs take the autograd loop here (the hand-written step's equality with it is tested in test_lockstep)."""
    monkeypatch.setattr(sddlab.runs, "hand_written_step", lambda config, runtime: False)
    calls: list[dict[str, Any]] = []
    original = sddlab.experiment.train

    def spy(model, mask, data, span, optimizer, *args, **kwargs):
        calls.append({
            "stream": span.stream,
            "start": span.start,
            "end": span.end,
            "schedule": span.schedule,
            "training": span.training,
            "entry": {name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
            "mask": {name: keep.clone() for name, keep in mask.items()},
        })
        return original(model, mask, data, span, optimizer, *args, **kwargs)

    monkeypatch.setattr(sddlab.experiment, "train", spy)
    return calls


@pytest.fixture
def float64(monkeypatch):
    """Models built and data held in float64 for the duration of a test (the exact-equality tests)."""
    original = sddlab.data.device._load_raw

    def load64(name, data_dir):
        raw = original(name, data_dir)
        return type(raw)(raw.x_train.double(), raw.y_train, raw.x_test.double(), raw.y_test, raw.num_classes)

    monkeypatch.setattr(sddlab.data.device, "_load_raw", load64)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
