"""Sweeps: file and command line agree, bad input fails first, summaries equal an independent computation,
and a worker killed mid-run (process pool, Ray, submitit's local executor) leaves a sweep that a rerun
finishes, touching only the failed points, with records equal to an uninterrupted sweep's."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sddlab.errors import ConfigError, SddError
from sddlab.executors import engine
from sddlab.store import RunStore
from sddlab.sweeps import load_sweep, make_sweep, parse_grid, run_sweep

SMALL = {"model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 2, "data.subset": 200}

SWEEP_FILE = """
name = "noise"
preset = "tiny"
seeds = [0, 1]
[set]
"model.hidden" = [16, 16]
"training.duration" = "2ep"
"experiment.levels" = 2
"data.subset" = 200
[grid]
"noise.rate" = [0.2, 0.4]
[executor]
kind = "inprocess"
"""


def _records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in RunStore(run_dir).records()]


def test_file_and_command_line_give_the_same_points(tmp_path):
    path = tmp_path / "noise.toml"
    path.write_text(SWEEP_FILE)
    from_file = load_sweep(path)
    from_args = make_sweep("noise", preset="tiny", overrides=SMALL, grid=parse_grid(["noise.rate=0.2,0.4"]),
                           seeds=[0, 1])
    names = [[c.run_name() for c in group] for group in from_file.groups()]
    assert names == [[c.run_name() for c in group] for group in from_args.groups()]
    assert len({name for group in names for name in group}) == 4
    assert [g[0].noise.rate for g in from_file.groups()] == [0.2, 0.4]
    assert parse_grid(["model.hidden=[[8,8],[16]]"]) == {"model.hidden": ([8, 8], [16])}
    assert from_file.stacked and not make_sweep("x", kind="process").stacked


@pytest.mark.parametrize("text, message", [
    ('preset = "tiny"\nbogus = 1\n', "sweep.bogus"),
    ('preset = "tiny"\n[grid]\n"noise.rate" = [0.2, 7.0]\n', "noise.rate"),
    ('preset = "tiny"\n[grid]\n"noise.rate" = 0.2\n', "grid.noise.rate"),
    ('preset = "tiny"\n[executor]\nkind = "mpi"\n', "executor"),
    ('preset = "tiny"\nseeds = [0, 0]\n', "seeds"),
    ('preset = "tiny"\n[grid]\n"experiment.seed" = [1, 2]\n', "grid"),
])
def test_bad_sweep_files_fail_with_one_line_before_any_work(text, message, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises((ConfigError, SddError), match=message) as caught:
        load_sweep(path)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "results").exists()


def test_missing_engine_names_the_extra(monkeypatch):
    import importlib

    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name: (_ for _ in ()).throw(ImportError(name)) if name == "ray" else real(name))
    with pytest.raises(SddError, match=r"pip install 'sddlab\[ray\]'"):
        engine("ray")


def test_in_process_sweep_summarises_mean_and_std_and_skips_finished_points(tmp_path, data_dir):
    spec = make_sweep("noise", preset="tiny", overrides=SMALL, grid={"noise.rate": (0.2, 0.4)}, seeds=[0, 1])
    result = run_sweep(spec, tmp_path, data_dir=data_dir, device="cpu")
    assert result.ok and result.ran == 4  # one lockstep group of two seeds per noise rate
    for rate in (0.2, 0.4):
        runs = [_records(tmp_path / c.run_name()) for c in spec.groups()[[0.2, 0.4].index(rate)]]
        for level in range(3):
            accs = [records[level]["test_acc"] for records in runs]
            row = result.summary[(result.summary["noise.rate"] == rate) & (result.summary["level"] == level)]
            mean = sum(accs) / 2
            std = (sum((a - mean) ** 2 for a in accs) / 1) ** 0.5
            assert row["test_acc_mean"].item() == pytest.approx(mean)
            assert row["test_acc_std"].item() == pytest.approx(std)
            assert row["seeds"].item() == 2
    assert (result.directory / "figure.html").stat().st_size > 10_000
    again = run_sweep(spec, tmp_path, data_dir=data_dir, device="cpu")
    assert again.ran == 0 and again.summary.equals(result.summary)


def test_the_sweep_bar_counts_runs_as_they_end_and_the_failed_ones(tmp_path, data_dir, capsys):
    spec = make_sweep("bar", preset="tiny", overrides=SMALL, grid={"training.lr": (0.01, 1e8)}, seeds=[0],
                      lockstep=False)
    result = run_sweep(spec, tmp_path, data_dir=data_dir, device="cpu", progress=True)
    assert result.ran == 2 and len(result.failed) == 1  # lr 1e8 diverges
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    final = [line for line in bar if line.startswith("sweep bar:") and "2/2" in line]
    assert final and "1 failed" in final[-1]
    assert not [line for line in bar if "3/2" in line]
    run_sweep(spec, tmp_path, data_dir=data_dir, device="cpu", progress=True)  # nothing left but the failed point
    assert "1/1" in capsys.readouterr().err


def test_the_sweep_bar_counts_each_seed_of_a_lockstep_group(tmp_path, data_dir, capsys):
    spec = make_sweep("group", preset="tiny", overrides=SMALL, grid={"training.lr": (0.01, 1e8)}, seeds=[0, 1],
                      lockstep=True)
    result = run_sweep(spec, tmp_path, data_dir=data_dir, device="cpu", progress=True)
    assert result.ran == 4 and len(result.failed) == 2  # two groups of two seeds; both seeds at lr 1e8 diverge
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    final = [line for line in bar if line.startswith("sweep group:") and "4/4" in line]
    assert final and "2 failed" in final[-1]
    assert not [line for line in bar if "/2 " in line]  # runs, not groups


def _lock_holders(results: Path) -> dict[int, Path]:
    """Processes holding a run directory's lock file open: the workers running those points."""
    holders = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(str(results)) and target.endswith("/.lock"):
                    holders[int(pid)] = Path(target).parent
        except OSError:
            continue
    return holders


def _kill_a_worker_mid_run(results: Path, killed: dict, stop: threading.Event) -> None:
    """SIGKILL the first worker seen holding a run whose dense level is stored (so it dies mid-run)."""
    while not stop.is_set() and not killed:
        for pid, run_dir in _lock_holders(results).items():
            if (run_dir / "levels" / "level_00.json").exists() and pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
                killed.update(pid=pid, run_dir=run_dir)
                return
        time.sleep(0.01)


ENGINES = {
    "process": {"workers": 2, "threads": 1},
    "ray": {"ray": {"cluster_cpus": 2, "num_cpus": 1}},
    "slurm": {"slurm": {"cluster": "local", "cpus_per_task": 1}},
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(ENGINES))
def test_killed_worker_then_rerun_finishes_only_failed_points(kind, tmp_path, data_dir):
    if kind == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    if kind == "slurm":
        pytest.importorskip("submitit", reason="the slurm extra is not installed")
    overrides = {**SMALL, "training.duration": "40ep", "experiment.levels": 3}
    spec = make_sweep("kill", preset="tiny", overrides=overrides, grid={"noise.rate": (0.2, 0.4)}, seeds=[0],
                      kind=kind, **ENGINES[kind])
    results, killed, stop = tmp_path / "results", {}, threading.Event()
    watcher = threading.Thread(target=_kill_a_worker_mid_run, args=(results, killed, stop), daemon=True)
    watcher.start()
    first = run_sweep(spec, results, data_dir=data_dir, device="cpu")
    stop.set()
    watcher.join()
    assert killed, "no worker was seen mid-run"
    assert killed["run_dir"].name in first.failed and first.failed[killed["run_dir"].name]
    store = RunStore(killed["run_dir"])
    assert store.has_level(0) and not store.has_level(3)  # died mid-run, dense level kept
    second = run_sweep(spec, results, data_dir=data_dir, device="cpu")
    assert second.ok and second.ran == len(first.failed)
    reference = tmp_path / "reference"
    run_sweep(make_sweep("ref", preset="tiny", overrides=overrides, grid={"noise.rate": (0.2, 0.4)}, seeds=[0],
                         lockstep=False), reference, data_dir=data_dir, device="cpu")
    for group in spec.groups():
        for config in group:
            assert _records(results / config.run_name()) == _records(reference / config.run_name())


def test_overlapping_sweeps_at_once_never_corrupt_a_run(tmp_path, data_dir):
    """Two sweeps sharing the point noise.rate=0.4 run at the same time: one writer per run directory."""
    results, reference = tmp_path / "results", tmp_path / "reference"
    specs = [make_sweep(f"s{i}", preset="tiny", overrides=SMALL, grid={"noise.rate": rates}, seeds=[0], lockstep=False)
             for i, rates in enumerate([(0.2, 0.4), (0.4, 0.6)])]
    outcomes = {}
    threads = [threading.Thread(target=lambda s=s: outcomes.update({s.name: run_sweep(s, results, data_dir=data_dir,
                                                                                         device="cpu")}))
               for s in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outcome.ok for outcome in outcomes.values())
    run_sweep(make_sweep("ref", preset="tiny", overrides=SMALL, grid={"noise.rate": (0.2, 0.4, 0.6)}, seeds=[0],
                         lockstep=False), reference, data_dir=data_dir, device="cpu")
    names = {c.run_name() for spec in specs for group in spec.groups() for c in group}
    assert len(names) == 3
    for name in names:
        assert [r["level"] for r in _records(results / name)] == [0, 1, 2]
        assert _records(results / name) == _records(reference / name)


@pytest.fixture
def ray_head(monkeypatch):
    """An existing Ray cluster, as a user's would be: `ray start --head` in its own processes, with one
    (logical) GPU so fractional GPU requests can be scheduled on this CPU-only machine. Token
    authentication is off on both ends (a real cluster's token reaches drivers through RAY_AUTH_TOKEN)."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_cli = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit in 107 bytes
    started = subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--num-gpus=1",
                              "--include-dashboard=false", "--object-store-memory=100000000", f"--temp-dir={temp}"],
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-2000:]
    yield f"127.0.0.1:{port}"
    subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_sweep_on_an_existing_cluster_by_address_with_fractional_gpus(ray_head, tmp_path, data_dir):
    spec = make_sweep("by-address", preset="tiny", overrides=SMALL, grid={"noise.rate": (0.2, 0.4)}, seeds=[0],
                      kind="ray", ray={"address": ray_head, "num_cpus": 1, "num_gpus": 0.5})
    result = run_sweep(spec, tmp_path / "results", data_dir=data_dir, device="cpu")
    assert result.ok and result.ran == 2
    run_sweep(make_sweep("ref", preset="tiny", overrides=SMALL, grid={"noise.rate": (0.2, 0.4)}, seeds=[0],
                         lockstep=False), tmp_path / "reference", data_dir=data_dir, device="cpu")
    for group in spec.groups():
        for config in group:
            assert _records(tmp_path / "results" / config.run_name()) == _records(
                tmp_path / "reference" / config.run_name())


@pytest.mark.parametrize("grids", [["data.subset=100,null"], ["data.subset=100,null", "experiment.levels=1"]],
                         ids=["one-axis", "two-axes"])
def test_a_null_grid_value_is_a_point_in_the_table_the_summary_and_the_figure(grids, cli, tmp_path, data_dir):
    import re

    import pandas as pd

    results = tmp_path / "results"
    code, out, err = cli("sweep", "--preset", "tiny", "--set", "model.hidden=16,16", "--set", "training.duration=1ep",
                         "--set", "experiment.levels=1", *[word for grid in grids for word in ("--grid", grid)],
                         "--seeds", "0", "--results", results, "--data", data_dir, "--device", "cpu", "--quiet")
    assert code == 0 and "Traceback" not in err, err
    summary = pd.read_csv(results / "sweeps" / "sweep" / "summary.csv")  # a null value is an empty cell
    assert list(summary["data.subset"].fillna(-1)) == [100, 100, -1, -1] and list(summary["level"]) == [0, 1, 0, 1]
    assert out.splitlines()[0].split()[0] == "data.subset"  # the printed table: a row per point and level
    assert [line.split()[0] for line in out.splitlines()[1:5]] == ["100", "100", "None", "None"]
    names = re.findall(r'"name":"([^"]*)"', (results / "sweeps" / "sweep" / "figure.html").read_text())
    label = "data.subset=" if len(grids) == 1 else "group="
    assert [name for name in names if not name.endswith("(noisy)")] == [f"{label}100" + ", 1" * (len(grids) - 1),
                                                                        f"{label}None" + ", 1" * (len(grids) - 1)]
