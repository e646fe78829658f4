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
    assert code == 0 and "0 run(s) trained now; 4 of 4 point(s) finished, 0 failed" in again
    assert sorted(p for p in results.iterdir() if p.name.startswith("tiny-")) == runs


def test_bad_sweep_input_is_one_line_and_exit_code_2(monkeypatch, capsys, tmp_path):
    results = tmp_path / "results"
    for args in (["--grid", "noise.rate=0.2,3"], ["--executor", "mpi"], ["--grid", "bogus.field=1,2"]):
        code, _, err = cli(monkeypatch, capsys, "sweep", *FLAGS, *args, "--results", str(results))
        assert code == 2 and err.startswith("sddlab: error:") and len(err.strip().splitlines()) == 1
    assert not results.exists()
