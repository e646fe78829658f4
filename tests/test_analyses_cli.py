"""`sddlab analyse` end to end on a tiny run, exit code 2 on bad input, and the three analysis notebooks."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from sddlab.app.cli import main
from sddlab.app.notebooks import execute

TINY = {"model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 3, "data.subset": 300}
CHEAP = ["--curvature-subset", "100", "--probes", "4", "--eig-iters", "5", "--points", "11", "--duration", "1ep"]


def analyse(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run `sddlab analyse ARGS` in this process through main(): (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["sddlab", "analyse", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_config, run_config) -> Path:
    return run_config(small_config({"data.subset": 300}), tmp_path_factory.mktemp("analyse-cli"))


def test_analyse_all_prints_three_tables_and_writes_figures(run_dir, data_dir, monkeypatch, capsys):
    code, out, _ = analyse(monkeypatch, capsys, "all", str(run_dir), "--data", str(data_dir), "--device", "cpu",
                           "--quiet", *CHEAP)
    assert code == 0
    for title in ("== correlations ==", "== tickets ==", "== flatness =="):
        assert title in out
    assert "best predictor of test accuracy:" in out and "random re-init beats the winning ticket" in out
    assert "hessian_trace" in out and "interpolation_barrier" in out and "test_acc_reinit" in out
    folders = {p.name.split("-")[0]: p for p in (run_dir / "analysis").iterdir()}
    assert {"correlations", "tickets", "flatness", "distance", "curvature", "redense", "interpolation",
            "landscape"} <= set(folders)
    for kind in ("correlations", "tickets", "flatness"):
        assert (folders[kind] / f"{kind}.html").stat().st_size > 100_000  # plotly.js embedded
        assert (folders[kind] / ("comparison.parquet" if kind == "tickets" else "table.parquet")).exists()
    assert (folders["flatness"] / "phases.html").exists()
    # a second call reads everything back
    code, again, _ = analyse(monkeypatch, capsys, "all", str(run_dir), "--data", str(data_dir), "--device", "cpu",
                             "--quiet", *CHEAP)
    assert code == 0 and again == out


def test_single_analyses_print_their_table(run_dir, data_dir, monkeypatch, capsys):
    code, out, _ = analyse(monkeypatch, capsys, "distance", str(run_dir), "--levels", "0,3", "--quiet")
    assert code == 0 and "distance_init" in out and "analysis folder:" in out
    code, out, _ = analyse(monkeypatch, capsys, "phases", str(run_dir), str(run_dir), "--quiet")
    assert code == 0 and "phase" in out


@pytest.mark.parametrize(("args", "message"), [
    (["nonsense", "{run}"], "analysis kind 'nonsense' is not allowed"),
    (["distance", "{tmp}/missing"], "does not exist"),
    (["distance", "{tmp}"], "is not a run directory"),
    (["redense", "{run}", "--levels", "9"], "level 9 is not a level"),
    (["tickets", "{partial}", "--levels", "3"], "is not finished yet"),
    (["distance", "{run}", "--levels", "one"], "--levels='one' is not allowed"),
    (["tickets", "{run}", "{run}"], "takes one run directory"),
])
def test_bad_input_is_one_line_and_exit_code_2(run_dir, tmp_path, monkeypatch, capsys, args, message):
    partial = tmp_path / "partial"
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("analysis"))
    (partial / "levels" / "level_03.json").unlink()
    names = {"run": str(run_dir), "tmp": str(tmp_path), "partial": str(partial)}
    code, out, err = analyse(monkeypatch, capsys, *[arg.format(**names) for arg in args])
    assert code == 2
    assert err.startswith("sddlab: error: ") and message in err and err.count("\n") == 1


def test_analysis_notebooks_record_their_values(tmp_path):
    results = str(tmp_path / "results")
    cheap = {"subset": 100, "probes": 4, "eig_iters": 5}

    def run(name: str, **parameters) -> dict:
        out = tmp_path / name
        execute(name, {"results": results, "preset": "tiny", "overrides": TINY, **parameters}, out, progress=False)
        return json.loads((out / "values.json").read_text())

    distance = run("02_distance", curvature=cheap)
    assert distance["levels"] == 4 and len(distance["distance"]) == 4
    assert {row["predictor"] for row in distance["correlations"]} >= {"distance_init", "hessian_trace", "memorized"}
    assert distance["verdict"].startswith("best predictor")
    flat = run("03_flatness", curvature=cheap, redense={"duration": "1ep"}, landscape={"points": 11})
    assert flat["levels"] == 4 and flat["flatness"] and "dense" in flat["landmarks"]
    assert {"hessian_trace", "interpolation_barrier", "redense_test_acc", "sharpness"} <= set(flat["flatness"][0])
    tickets = run("04_tickets")
    assert tickets["levels"] == 4 and tickets["variants"] == ["oneshot", "reinit", "ticket"]
    assert len(tickets["comparison"]) == 4 and "re-init" in tickets["verdict"]
    for name, figures in (("02_distance", ("distance", "distance_layers", "correlations")),
                          ("03_flatness", ("flatness", "phases", "redense", "interpolation", "loss_curves")),
                          ("04_tickets", ("tickets",))):
        for figure in figures:
            assert (tmp_path / name / f"{figure}.html").stat().st_size > 100_000
