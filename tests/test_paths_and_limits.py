"""Hostile sweeps and models through the command line with its defaults (progress bar on): names that are
not plain, writes outside the results folder, two sweeps of one name, sweeps and models too large for the
machine, worker counts below 1, engines that fail to import and SLURM that is not there. Each ends with
its exit code and one line naming the field, the value and what is allowed, before anything starts."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import stat
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from sddlab import executors, get_preset
from sddlab.app.cli import main
from sddlab.data import DATASETS
from sddlab.executors import preflight
from sddlab.limits import parameter_count
from sddlab.models import build_model
from sddlab.store import folder_lock
from sddlab.sweep_report import report_folder
from sddlab.sweeps import SweepSpec, load_sweep, make_sweep

SMALL = ["--preset", "tiny", "--set", "model.hidden=16,16", "--set", "training.duration=1ep", "--set",
         "experiment.levels=1", "--set", "data.subset=200"]
TOML_SMALL = ('preset = "tiny"\n[set]\n"model.hidden" = [16, 16]\n"training.duration" = "1ep"\n'
              '"experiment.levels" = 1\n"data.subset" = 200\n')
PLAIN = "a plain name of 1 to 100 letters, digits, '-', '_' or '.' (no '/', no '..', not dots alone)"
NOT_PLAIN = ["../../X", "../tiny-0be338e2b1", "/tmp/X", "..", ".", "...", "a/b", "a\\b", "a..b", "", " x", "x" * 101,
             "sweeps/../..", "name\n"]


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under `root`: (type, size, mtime) for files and links, the type alone for folders."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            info = os.lstat(Path(folder) / name)
            kind = stat.S_IFMT(info.st_mode)
            found[os.path.relpath(Path(folder) / name, root)] = (kind, 0, 0) if stat.S_ISDIR(info.st_mode) else (
                kind, info.st_size, info.st_mtime_ns)
    return found


def written_outside(before: dict, after: dict, inside: str) -> list[str]:
    """Paths created, changed or removed between two snapshots that are neither under `inside` nor one of the
    folders on the way to it (created with it)."""
    return sorted(path for path in before.keys() | after.keys()
                  if before.get(path) != after.get(path) and not (path + os.sep).startswith(inside + os.sep)
                  and not (inside + os.sep).startswith(path + os.sep))


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A results folder two levels down in tmp_path, and the current folder elsewhere in it."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "a" / "b" / "results"


def one_error(code: int, err: str, start: str) -> None:
    assert code == 2 and err.startswith(f"sddlab: error: {start}") and err.count("\n") == 1, (code, err)
    assert "Traceback" not in err


@pytest.mark.parametrize("name", NOT_PLAIN)
def test_a_sweep_name_that_is_not_plain_is_refused_on_the_command_line_and_in_a_file(name, place, tmp_path, cli):
    before = snapshot(tmp_path)
    code, out, err = cli("sweep", *SMALL, "--name", name, "--results", place)
    one_error(code, err, f"--name={name!r} is not allowed: {PLAIN}")
    sweep_file = tmp_path / "cwd" / "hostile.toml"
    sweep_file.write_text(f"name = {json.dumps(name)}\n" + TOML_SMALL)  # JSON's escapes are TOML's
    code, out, err = cli("sweep", sweep_file, "--results", place)
    one_error(code, err, f"name={name!r} is not allowed: {PLAIN}")
    sweep_file.unlink()
    assert written_outside(before, snapshot(tmp_path), "nowhere") == []  # nothing written at all


def test_every_write_of_every_command_stays_inside_the_results_folder(place, tmp_path, data_dir, cli):
    """The file system under tmp_path is walked before and after each command, hostile ones included."""
    common = ["--results", place, "--data", data_dir, "--device", "cpu"]
    commands = [
        ["run", *SMALL, *common],
        ["sweep", *SMALL, "--grid", "noise.rate=0.2,0.4", "--name", "fine", *common],
        ["sweep", *SMALL, "--name", "../../X", *common],
        ["sweep", *SMALL, "--name", str(tmp_path / "absolute"), *common],
        ["sweep", *SMALL, "--name", "../tiny-0be338e2b1", *common],
    ]
    inside = os.path.relpath(place, tmp_path)
    for args in commands:
        before = snapshot(tmp_path)
        code, _, err = cli(*args)
        assert code in (0, 2) and "Traceback" not in err, err
        assert written_outside(before, snapshot(tmp_path), inside) == [], args
    run_dir = next(p for p in place.iterdir() if p.name.startswith("tiny-"))
    for args in (["show", run_dir], ["index", place], ["verify", place]):
        before = snapshot(tmp_path)
        assert cli(*args)[0] == 0
        assert written_outside(before, snapshot(tmp_path), "nowhere") == []  # readers write nothing
    assert sorted(p.name for p in (place / "sweeps").iterdir()) == ["fine"]


def invoke_in_thread(args: list[str], stderr: io.StringIO) -> dict:
    """Run `sddlab ARGS` in a thread, its stderr into `stderr`; the dict gets its exit code."""
    outcome: dict = {}

    def target() -> None:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            sys.argv = ["sddlab", *map(str, args)]
            try:
                main()
            except SystemExit as exit_:
                outcome["code"] = exit_.code

    outcome["thread"] = threading.Thread(target=target, daemon=True)
    outcome["thread"].start()
    return outcome


def test_a_second_sweep_of_the_same_name_says_the_report_is_busy_and_waits(place, data_dir, monkeypatch):
    monkeypatch.setattr(sys, "argv", sys.argv)  # restored after the thread set it
    folder = report_folder(place, "same")
    held = folder_lock(folder, "held by this test")
    held.acquire()
    stderr = io.StringIO()
    second = invoke_in_thread(["sweep", *SMALL, "--name", "same", "--results", place, "--data", data_dir, "--device",
                               "cpu"], stderr)
    deadline = time.monotonic() + 120
    while "is busy" not in stderr.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert stderr.getvalue() == (f"sddlab: {folder} is busy (another sweep of this name is running); waiting for it "
                                 "to finish\n")
    assert not (folder / "sweep.json").exists() and second["thread"].is_alive()  # it waits, writing nothing
    held.release()
    second["thread"].join(300)
    assert second["code"] == 0 and (folder / "sweep.json").exists()


def test_a_sweep_replacing_another_sweeps_report_of_the_same_name_says_so(place, data_dir, cli):
    common = ["--name", "same", "--results", place, "--data", data_dir, "--device", "cpu"]
    assert cli("sweep", *SMALL, "--grid", "noise.rate=0.2", *common)[0] == 0
    code, out, err = cli("sweep", *SMALL, "--grid", "noise.rate=0.2", *common)  # the same sweep again: silent
    assert code == 0 and "different sweep" not in err and "0 unfinished run(s) attempted now" in out
    code, out, err = cli("sweep", *SMALL, "--grid", "noise.rate=0.3", *common)
    line = (f"sddlab: {place / 'sweeps' / 'same'} held the report of a different sweep named 'same' (another base, "
            "grid or seeds): it is replaced\n")
    assert code == 0 and line in err and out.splitlines()[-1].endswith(f"report in {place / 'sweeps' / 'same'}")


def axis(count: int, scale: float) -> str:
    return ",".join(f"{scale * (i + 1):.6g}" for i in range(count))


def test_a_grid_of_a_million_points_is_refused_before_it_is_built(place, tmp_path, cli, monkeypatch):
    monkeypatch.setattr(SweepSpec, "groups", lambda self: pytest.fail("the grid was built"))
    tracemalloc.start()
    try:
        code, _, err = cli("sweep", *SMALL, "--grid", f"noise.rate={axis(1000, 0.0009)}", "--grid",
                           f"training.lr={axis(1000, 1e-5)}", "--results", place)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = ("grid x seeds='1000000 grid point(s) x 1 seed(s) = 1000000 runs' is not allowed: at most 10000 runs; "
               "raise the limit with --max-points or max_points in the sweep file if you mean it")
    one_error(code, err, message)
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB"
    sweep_file = tmp_path / "big.toml"
    sweep_file.write_text(TOML_SMALL + f'[grid]\n"noise.rate" = [{axis(1000, 0.0009)}]\n'
                          f'"training.lr" = [{axis(1000, 1e-5)}]\n')
    one_error(*cli("sweep", sweep_file, "--results", place)[::2], message)
    assert not place.exists()


def test_the_sweep_size_limit_is_stated_and_can_be_moved(place, tmp_path, cli):
    code, _, err = cli("sweep", *SMALL, "--grid", "noise.rate=0.1,0.2,0.3", "--seeds", "0", "1", "--max-points", "5",
                       "--results", place)
    six_runs = "grid x seeds='3 grid point(s) x 2 seed(s) = 6 runs' is not allowed: at most 5 runs"
    one_error(code, err, six_runs)
    one_error(*cli("sweep", *SMALL, "--max-points", "0", "--results", place)[::2],
              "--max-points=0 is not allowed: an integer of at least 1")
    sweep_file = tmp_path / "limited.toml"
    sweep_file.write_text("max_points = 5\nseeds = [0, 1]\n" + TOML_SMALL + '[grid]\n"noise.rate" = [0.1, 0.2, 0.3]\n')
    one_error(*cli("sweep", sweep_file, "--results", place)[::2], six_runs)
    sweep_file.write_text("max_points = 0\n" + TOML_SMALL)
    one_error(*cli("sweep", sweep_file, "--results", place)[::2], "max_points=0 is not allowed")
    assert not place.exists()
    assert len(load_sweep(sweep_file, max_points=6).groups()) == 1  # the command line's limit wins
    spec = make_sweep("six", preset="tiny", grid={"noise.rate": (0.1, 0.2, 0.3)}, seeds=[0, 1], max_points=6)
    assert len(spec.groups()) == 3 and spec.to_dict()["max_points"] == 6


HUGE = {"two layers of a million": "model.hidden=1000000,1000000",
        "64 layers of 8192": "model.hidden=[" + ",".join(["8192"] * 64) + "]",
        "widths past what a tensor holds": "model.hidden=1000000000000000000,1000000000000000000"}


@pytest.mark.parametrize("case", list(HUGE))
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_model_too_large_for_the_machine_is_refused_before_anything_starts(case, command, place, data_dir, cli):
    code, out, err = cli(command, "--preset", "tiny", "--set", HUGE[case], "--results", place, "--data", data_dir)
    one_error(code, err, "model.hidden=")
    assert "is not allowed: a model " in err and out == "" and not place.exists()
    if case != "widths past what a tensor holds":
        assert " parameters needs about " in err and " GiB are available on " in err


@pytest.mark.parametrize("args, message", [
    (["--executor", "process", "--workers", "-3"], "--workers=-3 is not allowed: an integer of at least 1"),
    (["--executor", "process", "--workers", "0"], "--workers=0 is not allowed: an integer of at least 1"),
    (["--workers", "0"], "--workers=0 is not allowed"),
    (["--executor", "process", "--threads", "-1"], "--threads=-1 is not allowed: an integer of at least 1"),
])
def test_worker_counts_below_one_are_one_line_errors(args, message, place, cli):
    one_error(*cli("sweep", *SMALL, *args, "--results", place)[::2], message)
    assert not place.exists()


@pytest.mark.parametrize("text", ["workers = -3", "workers = 0", "threads = 0", 'workers = "two"', "workers = true"])
def test_worker_counts_in_a_sweep_file_are_checked_too(text, place, tmp_path, cli):
    sweep_file = tmp_path / "workers.toml"
    sweep_file.write_text(TOML_SMALL + f'[executor]\nkind = "process"\n{text}\n')
    field = text.split(" =")[0]
    one_error(*cli("sweep", sweep_file, "--results", place)[::2], f"executor.{field}=")
    assert not place.exists()


FAILURES = {
    "not installed": (lambda name: ModuleNotFoundError(f"No module named '{name}'", name=name),
                      "which is not installed"),
    "a dependency missing": (lambda name: ModuleNotFoundError("No module named 'grpc'", name="grpc"),
                             "which failed to import (ModuleNotFoundError: No module named 'grpc')"),
    "a broken install": (lambda name: RuntimeError("version mismatch"),
                         "which failed to import (RuntimeError: version mismatch)"),
    "a bad attribute": (lambda name: AttributeError("module 'numpy' has no attribute 'bool8'"),
                        "which failed to import (AttributeError: module 'numpy' has no attribute 'bool8')"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("kind, module", [("ray", "ray"), ("slurm", "submitit")])
def test_an_engine_failing_to_import_for_any_reason_names_the_extra_and_the_reason(kind, module, failure, place,
                                                                                    cli, monkeypatch):
    make, reason = FAILURES[failure]

    class Importer:
        @staticmethod
        def import_module(name: str):
            if name == module:
                raise make(name)
            return importlib.import_module(name)

    monkeypatch.setattr(executors, "importlib", Importer)
    code, _, err = cli("sweep", *SMALL, "--executor", kind, "--results", place)
    one_error(code, err, f"executor={kind!r} needs {module}, {reason}: pip install 'sddlab[{kind}]'")
    assert not place.exists()


def test_slurm_without_sbatch_is_refused_unless_the_file_asks_for_the_local_executor(place, tmp_path, cli,
                                                                                     monkeypatch):
    pytest.importorskip("submitit", reason="the slurm extra is not installed")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    message = "executor='slurm' needs SLURM, but `sbatch` is not on PATH"
    one_error(*cli("sweep", *SMALL, "--executor", "slurm", "--results", place)[::2], message)
    sweep_file = tmp_path / "cluster.toml"
    for cluster, outcome in [('"slurm"', message), ('"bogus"', "executor.slurm.cluster='bogus' is not allowed"),
                             ('"local"\nfolder = "../elsewhere"',
                              "executor.slurm.folder='../elsewhere' is not allowed")]:
        sweep_file.write_text(TOML_SMALL + f'[executor]\nkind = "slurm"\n[executor.slurm]\ncluster = {cluster}\n')
        one_error(*cli("sweep", sweep_file, "--results", place)[::2], outcome)
    assert not place.exists()
    for options in ({"cluster": "local"}, {"cluster": "debug", "folder": "logs"}):  # asked for: no SLURM needed
        preflight("slurm", options, place)
    (empty / "sbatch").write_text("#!/bin/sh\n")
    (empty / "sbatch").chmod(0o755)
    preflight("slurm", {}, place)  # found on PATH: SLURM is taken to be there


@pytest.mark.parametrize("preset, overrides", [
    ("tiny", {"model.hidden": [16]}), ("tiny", {"model.hidden": [64, 32, 7]}), ("fig1-lenet-mnist", {}),
    ("fig1-cifar10", {"model.width": 0.25}),
])
def test_the_parameter_count_the_limit_uses_is_the_built_models(preset, overrides):
    config = get_preset(preset).with_overrides(overrides)
    data = DATASETS[config.data.name]
    model = build_model(config.model, data.input_shape, data.num_classes, seed=0)
    built = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    assert parameter_count(config) == parameter_count(config, meta=True) == built


@pytest.mark.parametrize("link", ["sweeps", "sweeps/fine"])
def test_a_report_folder_that_is_a_link_is_refused(link, place, tmp_path, cli):
    outside = tmp_path / "outside"
    outside.mkdir()
    (place / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, place / link)
    before = snapshot(tmp_path)
    code, _, err = cli("sweep", *SMALL, "--name", "fine", "--results", place)
    one_error(code, err, f"name='fine' is not allowed: a sweep whose report folder {place / link} is a folder inside "
                         "the results folder (it is a link or a file)")
    assert written_outside(before, snapshot(tmp_path), "nowhere") == [] and list(outside.iterdir()) == []
