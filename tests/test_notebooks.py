"""Every notebook executes headless under papermill with tiny injected parameters; recorded values checked."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

import sddlab
from sddlab.app.notebooks import NOTEBOOK_DIR, available, execute
from sddlab.errors import ConfigError
from sddlab.phases import detect_phases
from sddlab.store import RunStore

TINY = {"model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 3, "data.subset": 300}


def _execute(name: str, tmp_path: Path, **parameters) -> dict:
    out = tmp_path / name
    execute(name, {"results": str(tmp_path / "results"), **parameters}, out, progress=False)
    assert (out / f"{name}.ipynb").exists()
    return json.loads((out / "values.json").read_text())


def _increasing(values: list[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_thin_and_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "def " not in cell.source and "class " not in cell.source, "logic belongs in the library"


@pytest.mark.slow
def test_curve_notebook_records_levels_and_phases(tmp_path):
    values = _execute("01_curve", tmp_path, preset="tiny", seeds=[0, 1], overrides=TINY)
    assert values["levels"] == 4
    assert _increasing(values["sparsity"])
    # the phases the notebook recorded are those of an independent detection over both seeds' runs
    report = detect_phases(sddlab.index(tmp_path / "results"))
    assert values["phases"]["has_double_descent"] == report.has_double_descent
    assert values["phases"]["summary"] == report.summary and "mean of 2 seeds" in report.summary
    assert (tmp_path / "01_curve" / "curve.html").stat().st_size > 100_000  # plotly.js embedded: opens offline
    assert (tmp_path / "01_curve" / "phases.html").exists()
    runs = [path for path in (tmp_path / "results").iterdir() if (path / "config.json").exists()]
    assert len(runs) == 2  # one per seed, each with the command line's self-contained figure
    assert all((path / "figure.html").stat().st_size > 100_000 for path in runs)


@pytest.mark.slow
def test_noise_sweep_notebook(tmp_path):
    values = _execute("05_noise_sweep", tmp_path, preset="tiny", noise_rates=[0.2, 0.4], overrides=TINY)
    assert values["levels"] == 4
    assert set(values["phases"]) == {"0.2", "0.4"}
    assert (tmp_path / "05_noise_sweep" / "noise_sweep.html").exists()


@pytest.mark.slow
def test_criteria_modes_notebook(tmp_path):
    values = _execute(
        "06_criteria_modes", tmp_path, preset="tiny", overrides={**TINY, "experiment.levels": 2},
        finetune={"retraining.finetune_lr": 1e-3, "retraining.finetune_duration": "1ep"},
    )
    assert values["levels"] == 3
    assert len(values["phases"]) == 7  # three criteria, four retraining modes
    for name in ("criteria", "modes"):
        assert (tmp_path / "06_criteria_modes" / f"{name}.html").exists()


@pytest.mark.slow
def test_explorer_notebook_runs_static_without_front_end(tmp_path):
    values = _execute("explore", tmp_path, preset="tiny", interactive=False)
    assert values["levels"] == 5
    assert _increasing(values["sparsity"])
    assert (tmp_path / "explore" / "curve.html").exists()


@pytest.mark.slow
def test_lab_notebook_checks_each_phase(tmp_path):
    values = _execute("lab", tmp_path, preset="tiny", epochs=2, levels=3, student="test")
    assert values["levels"] == 4
    assert _increasing(values["sparsity"])
    joined = "\n".join(values["checks"])
    for phase in ("critical phase", "sweet phase", "collapsed phase", "double descent"):
        assert phase in joined
    assert (tmp_path / "lab" / "clean_vs_noisy.html").exists()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_lab_runs_the_paper_protocol_on_fashion_mnist_when_installed(tmp_path):
    values = _execute("lab", tmp_path, fashion=True, epochs=1, levels=1, student="test")
    assert values["levels"] == 2
    runs = [RunStore(path).config() for path in (tmp_path / "results").iterdir() if (path / "config.json").exists()]
    assert {(c.data.name, c.model.name, c.data.subset, c.noise.rate) for c in runs} == {
        ("fashion-mnist", "lenet-300-100", None, 0.0), ("fashion-mnist", "lenet-300-100", None, 0.4)}
    assert all(RunStore(path).meta()["noise"]["train_examples"] == 60_000
               for path in (tmp_path / "results").iterdir() if (path / "config.json").exists())


def test_unknown_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="notebook"):
        execute("nope", {}, tmp_path)
    assert "01_curve" in available()


@pytest.mark.slow
def test_beyond_notebook_reports_what_an_independent_computation_finds(tmp_path):
    values = _execute("07_beyond", tmp_path, presets=["tiny"], seeds=[0, 1], noise_rates=[0.2, 0.4],
                      antidotes=["none", "distillation"], overrides=TINY)
    table = sddlab.index(tmp_path / "results")
    tiny = sddlab.get_preset("tiny").noise.rate
    own = table[table["noise.rate"] == tiny]
    plain = own[own["training.distill_weight"] == 0]
    # the antidote table's dense accuracy is the mean of the seeds' level-0 test accuracy
    rows = {row["antidote"]: row for row in values["antidotes"]}
    assert set(rows) == {"none", "distillation"} and rows["none"]["seeds"] == 2
    assert rows["none"]["dense_acc_mean"] == pytest.approx(plain[plain["level"] == 0]["test_acc"].mean())
    sweet, dips = [], []
    for _, run in plain.groupby("run"):
        acc = run.sort_values("level")["test_acc"].tolist()
        depths = [min(max(acc[: j + 1]), max(acc[j:])) - acc[j] for j in range(len(acc))]
        deepest = depths.index(max(depths))
        sweet.append(max(acc[deepest:]))
        dips.append(100 * max(depths))
    assert rows["none"]["sweet_acc_mean"] == pytest.approx(np.mean(sweet))
    assert rows["none"]["dip_points_mean"] == pytest.approx(np.mean(dips))
    # the selection regrets: the dense rule's regret is the oracle minus level 0, averaged over seeds
    dense = [row for row in values["selection"] if row["rule"] == "dense" and row["noise.rate"] == tiny][0]
    plain_runs = plain.groupby("run")
    expected = (100 * (plain_runs["test_acc"].max() - plain_runs["test_acc"].first())).mean()
    assert dense["regret_mean"] == pytest.approx(expected)
    assert values["recommended"] != "dense"
    # memorisation shares of the first seed's run: the noisy-fitted share is its records' `memorized`
    seed0 = plain[plain["experiment.seed"] == 0].sort_values("level")
    assert [row["noisy_fitted"] for row in values["memorisation"]] == pytest.approx(seed0["memorized"].tolist())
    stored = RunStore(seed0["run_dir"].iloc[0]).load_examples()["noisy"]
    assert values["noisy_examples"] == int(stored.sum()) > 0
    assert (tmp_path / "07_beyond" / "examples.html").exists()


@pytest.mark.slow
def test_data_size_notebook_reports_each_size_as_its_runs_say(tmp_path):
    small = {key: value for key, value in TINY.items() if key != "data.subset"}
    values = _execute("09_data_size", tmp_path, preset="tiny", duration="2ep", sizes=[100, 300, None], seeds=[0, 1],
                      overrides=small)
    table = sddlab.index(tmp_path / "results")
    rows = values["sizes"]
    assert [row["train_examples"] for row in rows] == [100, 300, 1203]  # None: all of digits' training set
    assert [row["seeds"] for row in rows] == [2, 2, 2]
    for row, subset in zip(rows, [100, 300, None], strict=True):
        runs = table[table["data.subset"].isna()] if subset is None else table[table["data.subset"] == subset]
        assert row["dense_acc"] == pytest.approx(runs[runs["level"] == 0]["test_acc"].mean())
        report = detect_phases(runs)
        assert row["has_double_descent"] == report.has_double_descent
        if report.sweet is not None:
            assert row["margin"] == pytest.approx(report.sweet.test_acc - report.dense_test_acc)
    assert (tmp_path / "09_data_size" / "data_size.html").exists()
    assert (tmp_path / "09_data_size" / "curves.html").exists()


def test_phase_diagram_notebook_records_what_the_run_directories_hold(tmp_path):
    values = _execute("08_phase_diagram", tmp_path, preset="tiny", values=[0.2, 0.4], seeds=[0, 1], overrides=TINY)
    table = sddlab.index(tmp_path / "results")
    assert values["columns"] == ["0.2", "0.4"] and values["levels"] == 4
    for row, rate in enumerate((0.2, 0.4)):  # each cell: the mean over seeds of that level's test accuracy
        means = table[table["noise.rate"] == rate].groupby("level")["test_acc"].mean()
        assert values["accuracy"][row] == pytest.approx(means.tolist())
    for run in values["runs"]:  # each run's dense ECE and best level, as its own records say
        records = table[table["run"] == run["run"]].sort_values("level")
        assert run["dense_ece"] == pytest.approx(records["test_ece"].iloc[0])
        assert run["best_level"] == int(records["level"].iloc[int(np.argmax(records["test_acc"]))])
    assert [row["start_weights"] for row in values["remaining"]] == [float(table["remaining"].max())] * 2
    reliability = [row for row in values["reliability"] if row["scheme"] == "equal-width" and row["level"] == 0]
    assert sum(row["count"] for row in reliability) == len(RunStore(table["run_dir"].iloc[0]).load_examples()["test"])
    for name in ("diagram", "calibration", "reliability"):
        assert (tmp_path / "08_phase_diagram" / f"{name}.html").exists()
