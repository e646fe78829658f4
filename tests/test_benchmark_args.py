"""Benchmark scripts refuse a bad argument or config with argparse's one line and exit 2, before any timing."""

from __future__ import annotations

import os
import subprocess
import sys
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
