"""The `sddlab` command line end to end: run, presets, show, index, and exit code 2 on bad input."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_run import sddlab_cli

import sddlab
from sddlab.app.tables import TABLE_COLUMNS
from sddlab.store import RunStore

REPO = Path(__file__).resolve().parents[1]
SMALL_SET = ["--set", "model.hidden=16,16", "--set", "training.duration=2ep", "--set", "data.subset=200"]



def sddlab_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "sddlab", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def printed_table(out: str) -> pd.DataFrame:
    """The level table as `sddlab run` / `show` print it (whitespace separated, sparsity in %)."""
    lines = [line for line in out.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["level", "sparsity"])
    rows = [line.split() for line in lines[start + 1:]]
    rows = [row for row in rows if row[0].isdigit()]
    return pd.DataFrame(rows, columns=lines[start].split())


def test_run_prints_the_table_and_writes_the_figure(tmp_path):
    results = tmp_path / "results"
    done = sddlab_process("run", "--preset", "tiny", *SMALL_SET, "--set", "experiment.levels=2",
                          "--results", str(results), "--data", str(tmp_path / "data"), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = next(results.iterdir())
    assert run_dir.name.startswith("tiny-")
    table = printed_table(done.stdout)
    assert table.columns.tolist() == TABLE_COLUMNS
    assert table["level"].tolist() == ["0", "1", "2"]
    records = RunStore(run_dir).records()
    assert table["sparsity"].tolist() == [f"{100 * r['sparsity']:.2f}%" for r in records]
    assert table["sparsity"].tolist()[:2] == ["0.00%", "20.00%"]
    assert [f"{r['test_acc']:.3f}" for r in records] == table["test_acc"].tolist()
    figure = run_dir / "figure.html"
    assert figure.exists() and "plotly" in figure.read_text()[:100000].lower()
    assert f"run directory: {run_dir}" in done.stdout
    assert "it/s" not in done.stderr and "ep/s" not in done.stderr  # --quiet: no progress bar


def test_bad_input_exits_2_with_one_line_from_a_fresh_process(tmp_path):
    done = sddlab_process("run", "--preset", "tiny", "--set", "noise.rate=1.0", "--results", str(tmp_path / "r"),
                          "--quiet", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sddlab: error: noise.rate=1.0")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("args", "code"), [(["presets"], 0), (["run", "--preset", "nope"], 2)])
def test_a_ctrl_c_in_the_teardown_after_a_finished_command_keeps_its_exit_status(args, code):
    """A Ctrl-C that lands after the command's work (here from an atexit hook, as in the interpreter's
    teardown) neither kills the process nor prints a traceback: the exit status is the command's own."""
    script = ("import atexit, os, signal, sys\n"
              "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
              "from sddlab.app.cli import main\n"
              f"sys.argv = ['sddlab', *{args!r}]\n"
              "main()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr


@pytest.mark.parametrize("delay", [0.4, 1.5, 6.0])
def test_ctrl_c_at_any_moment_ends_with_one_line_and_exit_130(delay, tmp_path):
    """SIGINT while the command line loads its imports, while it prepares, and while it trains (bar on)."""
    script = Path(sys.executable).with_name("sddlab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sddlab"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([*command, "run", "--preset", "tiny", "--set", "training.duration=20000ep",
                                "--results", str(tmp_path / "r"), "--data", str(tmp_path / "data")],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    lines = [line.split("\r")[-1] for line in err.decode().split("\n") if line.split("\r")[-1].strip()]
    assert process.returncode == 130, err.decode()
    assert "Traceback" not in err.decode() and out == b""
    assert [line for line in lines if line.startswith("sddlab:")] == lines[-1:]
    assert lines[-1].startswith("sddlab: interrupted")
    if (tmp_path / "r").exists() and any((tmp_path / "r").iterdir()):  # it had begun: the run says how to resume
        assert "run the same command to resume" in lines[-1]


def test_console_script_is_main():
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="sddlab")
    assert script.value == "sddlab.app.cli:main"


def test_run_in_process_then_cached(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    args = ["run", "--preset", "tiny", *SMALL_SET, "--set", "experiment.levels=1", "--results", str(results),
            "--data", str(tmp_path / "data"), "--quiet", "--no-figure"]
    code, out, err = sddlab_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    run_dir = next(results.iterdir())
    assert not (run_dir / "figure.html").exists()
    first = printed_table(out)
    assert len(first) == 2
    stamp = (run_dir / "levels" / "level_01.json").stat().st_mtime_ns
    code, again, _ = sddlab_cli(monkeypatch, capsys, *args)
    assert code == 0
    pd.testing.assert_frame_equal(printed_table(again)[TABLE_COLUMNS[:-1]], first[TABLE_COLUMNS[:-1]])
    assert (run_dir / "levels" / "level_01.json").stat().st_mtime_ns == stamp
    assert [p.name for p in results.iterdir()] == [run_dir.name]


def test_presets_lists_the_cpu_presets(monkeypatch, capsys):
    code, out, _ = sddlab_cli(monkeypatch, capsys, "presets")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert {"digits", "tiny", "digits-noise20", "digits-clean", "mnist1d"} <= set(names)
    tiny = next(line for line in out.splitlines() if line.split()[0] == "tiny")
    assert "digits" in tiny  # each name comes with its description


def test_show_formats(finished_run, monkeypatch, capsys):
    records = RunStore(finished_run).records()
    code, out, _ = sddlab_cli(monkeypatch, capsys, "show", str(finished_run), "--format", "csv")
    assert code == 0
    csv = pd.read_csv(io.StringIO(out))
    assert set(TABLE_COLUMNS) <= set(csv.columns)
    assert csv["level"].tolist() == [r["level"] for r in records]
    assert csv["test_acc"].tolist() == pytest.approx([r["test_acc"] for r in records], rel=1e-12)

    code, out, _ = sddlab_cli(monkeypatch, capsys, "show", str(finished_run), "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [row["level"] for row in rows] == [r["level"] for r in records]
    assert rows[2]["remaining"] == records[2]["remaining"]

    code, out, _ = sddlab_cli(monkeypatch, capsys, "show", str(finished_run))
    assert code == 0
    table = printed_table(out)
    assert table.columns.tolist() == TABLE_COLUMNS and len(table) == len(records)


def test_index_command(finished_run, tmp_path, monkeypatch, capsys):
    results = finished_run.parent
    code, out, _ = sddlab_cli(monkeypatch, capsys, "index", str(results))
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    assert len(table) == len(RunStore(finished_run).records())
    assert (table["noise.rate"] == 0.4).all() and (table["run"] == finished_run.name).all()
    target = tmp_path / "index.parquet"
    code, out, _ = sddlab_cli(monkeypatch, capsys, "index", str(results), "--output", str(target))
    assert code == 0 and out == f"{len(table)} rows (1 runs) written to {target}\n"
    pd.testing.assert_frame_equal(pd.read_parquet(target), sddlab.index(results))
    code, _, err = sddlab_cli(monkeypatch, capsys, "index", str(results), "--output", str(tmp_path / "index.xlsx"))
    assert code == 2 and "--output=" in err and ".csv or .parquet" in err and not (tmp_path / "index.xlsx").exists()


def _files(tmp: Path) -> dict[str, Path]:
    (tmp / "file.txt").write_text("x")
    (tmp / "bad.json").write_text("{")
    (tmp / "list.json").write_text("[1, 2]")
    return {"file": tmp / "file.txt", "bad": tmp / "bad.json", "list": tmp / "list.json"}


TINY = ["run", "--preset", "tiny"]
BAD_INPUTS = {
    "unknown preset": (["run", "--preset", "nope"], "preset="),
    "--set without =": ([*TINY, "--set", "noise.rate"], "--set='noise.rate'"),
    "--set without section": ([*TINY, "--set", "foo=1"], "foo=1"),
    "--set unknown field": ([*TINY, "--set", "noise.nope=1"], "noise.nope=1"),
    "noise rate 1": ([*TINY, "--set", "noise.rate=1.0"], "noise.rate=1.0"),
    "prune fraction 1": ([*TINY, "--set", "pruning.fraction=1"], "pruning.fraction=1"),
    "duration abc": ([*TINY, "--set", "training.duration=abc"], "training.duration='abc'"),
    "unknown data set": ([*TINY, "--set", "data.name=nope"], "data.name='nope'"),
    "unknown ignored layer": ([*TINY, "--set", "model.ignored=nope,"], "model.ignored='nope'"),
    "missing config file": (["run", "--config", "{tmp}/missing.json"], "--config="),
    "config not JSON": (["run", "--config", "{bad}"], "--config="),
    "config not an object": (["run", "--config", "{list}"], "--config="),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_run_input_exits_2_with_one_line_naming_the_field(case, tmp_path, monkeypatch, capsys):
    args, expected = BAD_INPUTS[case]
    names = {key: str(path) for key, path in _files(tmp_path).items()} | {"tmp": str(tmp_path)}
    args = [arg.format(**names) for arg in args] + ["--results", str(tmp_path / "results"), "--quiet"]
    code, out, err = sddlab_cli(monkeypatch, capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sddlab: error: ") and expected in lines[0], err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--preset", "tiny", "--results", "{file}/sub"], "results="),
        (["show", "{tmp}"], "is not a run directory"),
        (["show", "{tmp}", "--format", "xml"], "--format='xml'"),
    ],
)
def test_other_bad_input_exits_2(args, expected, tmp_path, monkeypatch, capsys):
    names = {key: str(path) for key, path in _files(tmp_path).items()} | {"tmp": str(tmp_path)}
    code, _, err = sddlab_cli(monkeypatch, capsys, *[arg.format(**names) for arg in args])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sddlab: error: ") and expected in lines[0], err


def test_a_finished_run_says_it_is_read_back_and_which_step_trained_it(tmp_path, monkeypatch, capsys):
    args = ["run", "--preset", "tiny", "--quiet", "--no-figure", "--results", str(tmp_path)]
    code, _, err = sddlab_cli(monkeypatch, capsys, *args, "--step", "autograd")
    assert code == 0 and "already finished" not in err
    (run_dir,) = [path for path in tmp_path.iterdir() if not path.name.startswith(".")]
    meta = RunStore(run_dir).meta()
    assert meta["step"] == "autograd" and meta["machine"]["threads"].startswith("auto, at most ")
    code, _, err = sddlab_cli(monkeypatch, capsys, *args)
    assert code == 0 and "already finished (trained with the autograd step): read back, nothing trained" in err
