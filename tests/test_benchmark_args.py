"""Benchmark scripts refuse a bad argument or config with one line and exit 2 before any timing, and stopped
midway (Ctrl-C, SIGTERM) they exit with their own code and leave no temporary folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("script", "args", "message"), [
    ("bench_main.py", ["--set", "experiment.levels=100"], "experiment.levels=100 is not allowed: at most"),
    ("bench_lockstep.py", ["--levels", "100", "--repeat", "1"], "experiment.levels=100 is not allowed: at most"),
    ("bench_contention.py", ["--preset", "fig1-cifar10"], "cifar10 not found under"),
    ("bench_stacked_step.py", ["--ks", "100000"], "argument --ks: 100000 is not allowed: a whole number from 1 to 64"),
    ("bench_stacked_step.py", ["--threads", "1000"], "argument --threads: 1000 is not allowed"),
])
def test_a_bad_benchmark_input_is_one_line_and_exit_2(tmp_path, script, args, message):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDDLAB_NO_DOWNLOAD": "1", "SDDLAB_DATA": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{script}: error:") and message in last
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_benchmark_stopped_midway_removes_its_temporary_folders(tmp_path, signal_number, code):
    """Stopped while it trains, a benchmark exits with its own code and leaves no temporary results behind."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(temporary)}
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bench_main.py"), "--seeds", "0"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    header = process.stdout.readline()  # printed once the config is checked, just before the first run
    assert header.startswith("# digits"), process.stderr.read()
    time.sleep(2)
    ours = lambda: [path for path in temporary.iterdir() if path.name.startswith("tmp")]  # noqa: E731  (tempfile's)
    assert ours()  # it is training into a temporary results folder
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code and "Traceback" not in err
    assert ours() == []  # (torch's own cache folder may stay)
