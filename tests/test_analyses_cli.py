"""`sddlab analyse` end to end on a tiny run, exit code 2 on bad input, and the three analysis notebooks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_run import sddlab_cli

import sddlab
import sddlab.analyses.levels as levels
from sddlab import analyses
from sddlab.app.notebooks import execute
from sddlab.app.tables import format_result
from sddlab.io import json_safe

TINY = {"model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 3, "data.subset": 300}
CHEAP = ["--curvature-subset", "100", "--probes", "4", "--eig-iters", "5", "--points", "11", "--duration", "1ep"]
CURVATURE = {"subset": 100, "probes": 4, "eig_iters": 5}  # CHEAP through the API
LANDSCAPE = {"span": 1.0, "points": 11, "directions": 1, "subset": None}
REDENSE = {"duration": "1ep", "lr": None}


def analyse(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`sddlab analyse ARGS` in this process."""
    return sddlab_cli(monkeypatch, capsys, "analyse", *args)



@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_config, run_config) -> Path:
    return run_config(small_config({"data.subset": 300}), tmp_path_factory.mktemp("analyse-cli"))


def test_analyse_all_prints_three_tables_and_writes_figures(run_dir, data_dir, monkeypatch, capsys):
    code, out, _ = analyse(monkeypatch, capsys, "all", str(run_dir), "--data", str(data_dir), "--device", "cpu",
                           "--quiet", *CHEAP)
    assert code == 0
    # the printout is each result of the API, read back from the cache the command wrote (nothing trains
    # again): title, summary line, compact table
    monkeypatch.setattr(levels, "train", lambda *args, **kwargs: pytest.fail("trained again"))
    results = analyses.analyse_all(run_dir, curvature_options=CURVATURE, redense_options=REDENSE,
                                   interpolation_options={"subset": None}, landscape_options=LANDSCAPE,
                                   progress=False, data_dir=data_dir, device="cpu")
    for kind, result in results.items():
        assert f"== {kind} ==\n{result.summary}\n{format_result(result)}\nanalysis folder: {result.directory}" in out
    assert results["correlations"].summary.startswith("best predictor of test accuracy:")
    assert results["tickets"].summary.startswith("random re-init beats the winning ticket")
    assert {"hessian_trace", "interpolation_barrier"} <= set(results["flatness"].table.columns)
    folders = {p.name.split("-")[0]: p for p in (run_dir / "analyses").iterdir()}
    assert {"correlations", "tickets", "flatness", "distance", "curvature", "redense", "interpolation",
            "landscape"} <= set(folders)
    for kind in ("correlations", "tickets", "flatness"):
        assert (folders[kind] / f"{kind}.html").stat().st_size > 100_000  # plotly.js embedded
        written = pd.read_parquet(folders[kind] / ("comparison.parquet" if kind == "tickets" else "table.parquet"))
        pd.testing.assert_frame_equal(written, results[kind].table, check_dtype=False)
    assert (folders["flatness"] / "phases.html").exists()
    # a second call reads everything back
    code, again, _ = analyse(monkeypatch, capsys, "all", str(run_dir), "--data", str(data_dir), "--device", "cpu",
                             "--quiet", *CHEAP)
    assert code == 0 and again == out


def test_single_analyses_print_their_table(run_dir, data_dir, monkeypatch, capsys):
    code, out, _ = analyse(monkeypatch, capsys, "distance", str(run_dir), "--levels", "0,3", "--quiet")
    distance = analyses.distance(run_dir, [0, 3], progress=False)
    assert list(distance.shown()["level"]) == [0, 3] and "distance_init" in distance.shown()
    assert code == 0 and out.startswith(f"== distance ==\n{distance.summary}\n{format_result(distance)}\n")
    code, out, _ = analyse(monkeypatch, capsys, "phases", str(run_dir), str(run_dir), "--quiet")
    phases = analyses.phases([run_dir, run_dir])
    assert code == 0 and out.startswith(f"== phases ==\n{phases.summary}\n{format_result(phases)}\n")


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
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns("analyses"))
    (partial / "levels" / "level_03.json").unlink()
    names = {"run": str(run_dir), "tmp": str(tmp_path), "partial": str(partial)}
    code, out, err = analyse(monkeypatch, capsys, *[arg.format(**names) for arg in args])
    assert code == 2
    assert err.startswith("sddlab: error: ") and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_analysis_notebooks_record_their_values(tmp_path):
    results = str(tmp_path / "results")
    cheap = {"subset": 100, "probes": 4, "eig_iters": 5}

    def run(name: str, **parameters) -> dict:
        out = tmp_path / name
        execute(name, {"results": results, "preset": "tiny", "overrides": TINY, **parameters}, out, progress=False)
        return json.loads((out / "values.json").read_text())

    run_dir = Path(results) / sddlab.get_preset("tiny").with_overrides(TINY).run_name()
    distance = run("02_distance", curvature=cheap)
    # the recorded values are those of the API on the same run directory (read back from its cache)
    correlations = analyses.correlations([run_dir], curvature_options=cheap, progress=False)
    assert distance["levels"] == 4
    assert distance["distance"] == json_safe(analyses.distance(run_dir, progress=False).shown().to_dict("records"))
    assert distance["correlations"] == json_safe(correlations.table.to_dict("records"))
    assert distance["verdict"] == correlations.summary and correlations.summary.startswith("best predictor")
    flat = run("03_flatness", curvature=cheap, redense={"duration": "1ep"}, landscape={"points": 11})
    flatness = analyses.flatness(run_dir, redense_options={"duration": "1ep"}, landscape_options={"points": 11},
                                 curvature_options=cheap, progress=False)
    assert flat["levels"] == 4 and flat["flatness"] == json_safe(flatness.table.to_dict("records"))
    assert flat["landmarks"]["dense"] == 0
    assert flat["landmarks"] == dict(zip(flatness.table["phase"], flatness.table["level"].tolist(), strict=True))
    tickets = run("04_tickets")
    comparison = analyses.tickets(run_dir, progress=False)
    assert tickets["levels"] == 4 and tickets["variants"] == ["oneshot", "reinit", "ticket"]
    assert tickets["comparison"] == json_safe(comparison.shown().to_dict("records"))
    assert tickets["verdict"] == comparison.summary and "re-init" in comparison.summary
    for name, figures in (("02_distance", ("distance", "distance_layers", "correlations")),
                          ("03_flatness", ("flatness", "phases", "redense", "interpolation", "loss_curves")),
                          ("04_tickets", ("tickets",))):
        for figure in figures:
            assert (tmp_path / name / f"{figure}.html").stat().st_size > 100_000


@pytest.mark.parametrize("kind", ["phases", "calibration", "distance", "correlations"])
def test_a_run_that_diverged_at_once_has_nothing_to_analyse_in_one_line(kind, tmp_path_factory, small_config,
                                                                       run_config, monkeypatch, capsys):
    from sddlab.divergence import Diverged

    config = small_config({"training.lr": 1e8})
    results = tmp_path_factory.getbasetemp() / "diverged-at-once"
    if not (results / config.run_name()).is_dir():  # one diverged run for every kind
        with pytest.raises(Diverged):
            run_config(config, results)
    code, out, err = analyse(monkeypatch, capsys, kind, str(results / config.run_name()), "--device", "cpu")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"sddlab: error: {config.run_name()} diverged (level 0: weights exploded")
    assert err.rstrip().endswith("it has no measured level, so there is nothing to analyse")


def test_a_diverged_run_among_measured_ones_is_skipped_with_a_line(run_dir, tmp_path_factory, small_config,
                                                                    run_config, monkeypatch, capsys):
    from sddlab.divergence import Diverged

    config = small_config({"training.lr": 1e8})
    results = tmp_path_factory.getbasetemp() / "diverged-at-once"
    if not (results / config.run_name()).is_dir():
        with pytest.raises(Diverged):
            run_config(config, results)
    diverged = str(results / config.run_name())
    code, out, err = analyse(monkeypatch, capsys, "phases", diverged, str(run_dir), "--device", "cpu")
    assert code == 0, err
    assert f"sddlab: skipped: {config.run_name()} diverged (level 0:" in err and "== phases ==" in out
    code, _, err = analyse(monkeypatch, capsys, "phases", diverged, diverged, "--device", "cpu")
    assert code == 2 and "nothing to analyse: all 2 runs diverged" in err.splitlines()[-1]
