"""The GPU check script runs every row in its CPU smoke mode, so it cannot rot between GPU sessions."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

import sddlab

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_smoke_prints_every_row(tmp_path):
    out = tmp_path / "rows.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--device", "cpu",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["check"]: row for row in json.loads(out.read_text())}
    assert all(row["check"] in done.stdout for row in rows.values())  # one printed table
    epochs = {name: rows[f"ResNet-18 CIFAR-10 epoch, {name}"]["value"]
              for name in ("fp32", "bf16", "fp32 compiled", "bf16 compiled")}
    steps = {(model, k): rows[f"lockstep {model} K={k}{suffix}"]["value"]
             for model, suffix in (("lenet-300-100", ""), ("resnet18", " bf16")) for k in (1, 4, 8)}
    assert rows["LeNet-300-100 paper epoch (train + eval)"]["value"] > 0
    assert all(value > 0 and math.isfinite(value) for value in [*epochs.values(), *steps.values()])
    assert "resumed: ok (levels [0, 1])" in rows["fig1-cifar10 two levels, killed + resumed"]["note"]
    # the projection is the panel's steps at the measured rates: 29 levels, level 0 whole, then from 1000 it
    config = sddlab.get_preset("fig1-cifar10")
    per_epoch = math.ceil(50_000 / 128)
    panel = 160 * per_epoch + config.experiment.levels * (160 * per_epoch - 1000)
    assert rows["Figure 1 CIFAR-10, 3 seeds, separate"]["value"] == pytest.approx(
        3 * panel / per_epoch * min(epochs.values()) / 3600, rel=1e-3)
    assert rows["Figure 1 CIFAR-10, 3 seeds, stacked"]["value"] == pytest.approx(
        panel * steps["resnet18", 4] / 1e3 / 3600, rel=1e-3)
