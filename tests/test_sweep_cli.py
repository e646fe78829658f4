"""`sddlab sweep`: flags and a sweep file give the same points; the printed mean ± std is the records';
a rerun runs nothing; bad input is one line and exit code 2 with no run directory."""

from __future__ import annotations

import statistics

import pytest
from cli_run import sddlab_cli as cli

from sddlab.app.sweep_command import split_positionals
from sddlab.errors import SddError
from sddlab.store import RunStore

FLAGS = ["--preset", "tiny", "--set", "model.hidden=16,16", "--set", "training.duration=2ep", "--set",
         "experiment.levels=1", "--set", "data.subset=200"]



def test_seeds_after_the_flag_and_the_file_are_told_apart():
    assert split_positionals(["1", "2", "fig4.toml"], ["0"]) == ("fig4.toml", [0, 1, 2])
    assert split_positionals([], ["0,3"]) == (None, [0, 3])
    with pytest.raises(SddError, match="--seeds"):
        split_positionals([], ["x"])


def test_sweep_from_flags_then_from_a_file(monkeypatch, capsys, tmp_path, data_dir):
    results = tmp_path / "results"
    common = ["--results", str(results), "--data", str(data_dir), "--device", "cpu"]
    code, out, _ = cli(monkeypatch, capsys, "sweep", *FLAGS, "--grid", "noise.rate=0.2,0.4", "--seeds", "0", "1",
                       "--name", "flags", *common)
    assert code == 0, out
    runs = sorted(p for p in results.iterdir() if p.name.startswith("tiny-"))
    assert len(runs) == 4
    by_rate = {}
    for run_dir in runs:
        store = RunStore(run_dir)
        by_rate.setdefault(store.config().noise.rate, []).append(store.records()[1]["test_acc"])
    rows = [line.split() for line in out.splitlines() if line.split()[:2] in (["0.2", "1"], ["0.4", "1"])]
    assert len(rows) == 2
    for row in rows:
        accs = by_rate[float(row[0])]
        assert row[4:7] == [f"{statistics.mean(accs):.3f}", "±", f"{statistics.stdev(accs):.3f}"]
    sweep_file = tmp_path / "same.toml"
    sweep_file.write_text('preset = "tiny"\nseeds = [0, 1]\n[set]\n"model.hidden" = [16, 16]\n'
                          '"training.duration" = "2ep"\n"experiment.levels" = 1\n"data.subset" = 200\n'
                          '[grid]\n"noise.rate" = [0.2, 0.4]\n')
    code, again, _ = cli(monkeypatch, capsys, "sweep", str(sweep_file), *common)
    assert code == 0 and "0 unfinished run(s) attempted now; 4 of 4 run(s) finished, 0 failed" in again
    assert sorted(p for p in results.iterdir() if p.name.startswith("tiny-")) == runs


def test_bad_sweep_input_is_one_line_and_exit_code_2(monkeypatch, capsys, tmp_path):
    results = tmp_path / "results"
    for args in (["--grid", "noise.rate=0.2,3"], ["--executor", "mpi"], ["--grid", "bogus.field=1,2"]):
        code, _, err = cli(monkeypatch, capsys, "sweep", *FLAGS, *args, "--results", str(results))
        assert code == 2 and err.startswith("sddlab: error:") and len(err.strip().splitlines()) == 1
    assert not results.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "noise.rate=0.95", "--grid", "training.lr=0.01,0.02"], "noise.rate=0.95 is not allowed: below 0.9"),
    (["--grid", "noise.rate=0.2,0.95"], "noise.rate=0.95 is not allowed: below 0.9"),
    (["--grid", "experiment.levels=1,100"], "experiment.levels=100 is not allowed: at most"),
    (["--grid", "training.lr=0.1,1e-1"], "is not allowed: distinct points; this one is the same run as"),
])
def test_a_point_a_run_would_refuse_is_refused_before_any_point_starts(monkeypatch, capsys, tmp_path, args, message):
    """Rules a run checks once its data and model exist (noise limit, levels that leave no weight) and a
    grid that names one run twice: one line and exit 2 for the whole sweep, not failed points after work."""
    results = tmp_path / "results"
    code, out, err = cli(monkeypatch, capsys, "sweep", *FLAGS, *args, "--seeds", "0", "--results", str(results))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("sddlab: error:") and message in err
    assert not results.exists()
