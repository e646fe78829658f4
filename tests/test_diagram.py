"""The phase diagram: its grid, ridges, remaining weights and calibration against values computed by hand and
directly from a tiny sweep's run directories; its figure; the `sddlab diagram` command and the sweep files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import sddlab_cli

from sddlab.diagram import (
    LAPTOP_VALUES,
    calibration_table,
    diagram_sweep,
    phase_diagram,
    remaining_table,
)
from sddlab.figures.axis import remaining_fraction, sparsity_ticks
from sddlab.figures.diagram import diagram_figure, remaining_figure
from sddlab.phases import detect_phases
from sddlab.selection import pick_level
from sddlab.sweeps import load_sweep, run_sweep

REPO = Path(__file__).resolve().parents[1]
SPARSITY = [1 - 0.8**level for level in range(6)]
REMAINING = [1000, 800, 640, 512, 410, 328]
EARLY = [1, 1, 0.95, 0.9, 0.8, 0.5]  # noisy-train accuracy: the noisy labels stop being fitted at level 2
LATE = [1, 1, 1, 0.95, 0.8, 0.5]  # ... at level 3
CURVES = {  # (noise rate, seed) -> (test accuracy per level, noisy-train accuracy per level)
    (0.2, 0): ([0.80, 0.70, 0.60, 0.75, 0.90, 0.50], EARLY),  # critical level 2, sweet level 4
    (0.2, 1): ([0.80, 0.60, 0.70, 0.85, 0.88, 0.50], EARLY),  # critical level 1, sweet level 4
    (0.2, 2): ([0.80, 0.79, 0.78, 0.77, 0.76, 0.50], EARLY),  # a steady decline: no double descent
    (0.4, 0): ([0.60, 0.50, 0.45, 0.55, 0.70, 0.65], LATE),  # critical level 2, sweet level 4
    (0.4, 1): ([0.60, 0.55, 0.50, 0.40, 0.72, 0.66], LATE),  # critical level 3, sweet level 4
}


def synthetic_table() -> pd.DataFrame:
    rows = []
    for (rate, seed), (test, train) in CURVES.items():
        run = f"run-{rate}-{seed}"
        for level in range(6):
            rows.append({"level": level, "sparsity": SPARSITY[level], "remaining": REMAINING[level],
                         "test_acc": test[level], "train_acc_noisy": train[level], "noise.rate": rate,
                         "holdout_acc_noisy": 0.5 * test[level] + 0.01 * seed, "experiment.seed": seed,
                         "test_ece": 0.1 + 0.01 * level + 0.001 * seed, "test_ece_adaptive": 0.09 + 0.01 * level,
                         "test_loss": 1.0 + 0.1 * level, "test_confidence": 0.9 - 0.05 * level, "run": run,
                         "run_dir": f"/runs/{run}"})
    return pd.DataFrame(rows)


def test_ridges_remaining_weights_and_calibration_of_hand_made_curves():
    table = synthetic_table()
    diagram = phase_diagram(table, "noise.rate", order=[0.2, 0.4])
    assert diagram.columns == ["0.2", "0.4"] and diagram.levels.tolist() == list(range(6))
    assert diagram.accuracy.loc["0.2", 1] == pytest.approx((0.70 + 0.60 + 0.79) / 3)
    assert diagram.accuracy.loc["0.4", 3] == pytest.approx((0.55 + 0.40) / 2)
    runs = diagram.runs.set_index("run")
    assert runs["critical_level"].tolist() == [2, 1, pytest.approx(np.nan, nan_ok=True), 2, 3]
    assert runs["sweet_level"].fillna(-1).tolist() == [4, 4, -1, 4, 4]
    ridges = diagram.ridges.set_index("column")
    assert ridges.loc["0.2", "double_descent_seeds"] == 2 and ridges.loc["0.4", "double_descent_seeds"] == 2
    assert ridges.loc["0.2", "critical_sparsity_mean"] == pytest.approx((SPARSITY[2] + SPARSITY[1]) / 2)
    assert ridges.loc["0.2", "critical_sparsity_std"] == pytest.approx(np.std([SPARSITY[2], SPARSITY[1]], ddof=1))
    assert ridges.loc["0.4", "critical_sparsity_mean"] == pytest.approx((SPARSITY[2] + SPARSITY[3]) / 2)
    assert ridges.loc["0.4", "sweet_sparsity_mean"] == pytest.approx(SPARSITY[4])
    assert ridges.loc["0.4", "sweet_sparsity_std"] == 0.0
    assert ridges.loc["0.2", "sweet_acc_mean"] == pytest.approx((0.90 + 0.88) / 2)
    # the best level by test accuracy: 4, 4 and the dense level for the declining seed
    widths = remaining_table(diagram).set_index("column")
    assert widths.loc["0.2", "start_weights"] == 1000
    assert widths.loc["0.2", "best_remaining_mean"] == pytest.approx(np.mean([410, 410, 1000]))
    assert widths.loc["0.2", "best_remaining_std"] == pytest.approx(np.std([410, 410, 1000], ddof=1))
    assert widths.loc["0.2", "sweet_remaining_mean"] == 410
    for run, rows in table.groupby("run"):  # the noisy-label pick is the selection rule's own
        assert runs.loc[run, "pick_rule"] == "holdout-smoothed"
        assert runs.loc[run, "pick_level"] == pick_level(rows, "holdout-smoothed")
    # calibration over the seeds with double descent: dense (level 0) against each seed's sweet level (4)
    calibrations = calibration_table(diagram).set_index("column")
    assert calibrations.loc["0.2", "dense_ece_mean"] == pytest.approx(np.mean([0.100, 0.101]))
    assert calibrations.loc["0.2", "sweet_ece_mean"] == pytest.approx(np.mean([0.140, 0.141]))
    assert calibrations.loc["0.4", "sweet_confidence_mean"] == pytest.approx(0.9 - 0.2)
    assert calibrations.loc["0.4", "sweet_lower_ece_seeds"] == 0


def test_the_figure_draws_the_grid_the_ridges_and_the_dense_contour_on_the_sparsity_axis():
    diagram = phase_diagram(synthetic_table(), "noise.rate")
    fig = diagram_figure(diagram)
    heatmap = next(trace for trace in fig.data if trace.type == "heatmap")
    assert np.allclose(np.asarray(heatmap.z, dtype=float), diagram.accuracy.to_numpy())
    assert np.allclose(heatmap.x, remaining_fraction(SPARSITY))
    contour = next(trace for trace in fig.data if trace.type == "contour")
    gain = np.asarray(contour.z, dtype=float)
    assert np.isnan(gain[:, 0]).all() and np.allclose(gain[:, 1:], diagram.accuracy.to_numpy()[:, 1:]
                                                     - diagram.accuracy.to_numpy()[:, :1])
    ridge = next(trace for trace in fig.data if (trace.name or "").startswith("sweet peak"))
    assert np.allclose(ridge.x, remaining_fraction(diagram.ridges["sweet_sparsity_mean"]))
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.autorange == "reversed"
    assert list(fig.layout.xaxis.tickvals) == pytest.approx(sparsity_ticks()[0])
    assert list(fig.layout.yaxis.ticktext) == ["0.2", "0.4"]
    widths = remaining_table(diagram)
    best = next(trace for trace in remaining_figure(widths, "noise.rate").data if (trace.name or "").startswith("best"))
    assert list(best.y) == pytest.approx(widths["best_remaining_mean"].tolist())


def _records(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    """A run's config and level records read straight from its files."""
    config = json.loads((run_dir / "config.json").read_text())
    rows = [json.loads(path.read_text()) for path in sorted((run_dir / "levels").glob("level_*.json"))]
    return config, pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, data_dir):
    spec = diagram_sweep("tiny", "noise.rate", [0.2, 0.4], [0, 1], overrides={
        "model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 3, "data.subset": 200})
    result = run_sweep(spec, tmp_path_factory.mktemp("diagram"), data_dir=data_dir, device="cpu")
    assert result.ok and result.spec.stacked
    return result


def test_the_diagram_of_a_tiny_sweep_equals_its_run_directories(tiny_sweep):
    diagram = phase_diagram(tiny_sweep.table, "noise.rate", [0.2, 0.4])
    runs = {}
    for run_dir in sorted({Path(d) for d in tiny_sweep.table["run_dir"]}):
        config, records = _records(run_dir)
        runs[(config["noise"]["rate"], config["experiment"]["seed"])] = records
    assert sorted(runs) == [(0.2, 0), (0.2, 1), (0.4, 0), (0.4, 1)]
    for rate in (0.2, 0.4):
        both = pd.concat([runs[(rate, 0)], runs[(rate, 1)]]).groupby("level")["test_acc"].mean()
        assert diagram.accuracy.loc[f"{rate:g}"].tolist() == pytest.approx(both.tolist())
        rows = diagram.runs[diagram.runs["column"] == f"{rate:g}"].set_index("seed")
        for seed in (0, 1):
            records = runs[(rate, seed)]
            best = int(records["level"][records["test_acc"].idxmax()])
            assert rows.loc[seed, "best_level"] == best
            assert rows.loc[seed, "best_remaining"] == records.set_index("level").loc[best, "remaining"]
            assert rows.loc[seed, "dense_ece"] == pytest.approx(records.set_index("level").loc[0, "test_ece"])
            report = detect_phases(records)
            assert rows.loc[seed, "double_descent"] == report.has_double_descent
            expected = report.sweet.sparsity if report.sweet else np.nan
            assert rows.loc[seed, "sweet_sparsity"] == pytest.approx(expected, nan_ok=True)
    assert diagram.sparsity.tolist() == pytest.approx(runs[(0.2, 0)]["sparsity"].tolist())


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`sddlab diagram ARGS` in this process."""
    return sddlab_cli(monkeypatch, capsys, "diagram", *args)



def test_the_command_prints_the_ridges_and_reads_a_sweep_back(tiny_sweep, monkeypatch, capsys):
    folder = tiny_sweep.directory
    code, out, err = cli(monkeypatch, capsys, str(folder), "--formats", "html")
    assert code in (0, None), err
    assert "ridges" in out and "calibration at the dense level" in out
    written = pd.read_csv(folder / "diagram" / "ridges.csv")
    expected = phase_diagram(tiny_sweep.table, "noise.rate", [0.2, 0.4]).ridges
    assert written["dense_acc_mean"].tolist() == pytest.approx(expected["dense_acc_mean"].tolist())
    assert (folder / "diagram" / "diagram.html").stat().st_size > 100_000


@pytest.mark.parametrize(("args", "field"), [
    (["--field", "noise.nope"], "noise.nope"),
    (["--values", "0.2,abc"], "noise.rate"),
    (["--field", "model.name"], "values"),
    (["--formats", "bmp"], "--formats"),
    (["--seeds", "0,x"], "--seeds"),
    (["--preset", "nope"], "preset"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, monkeypatch, capsys, args, field):
    code, out, err = cli(monkeypatch, capsys, *args, "--results", str(tmp_path / "results"))
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists()


def test_a_sweep_file_needs_exactly_one_axis(tmp_path, monkeypatch, capsys):
    path = tmp_path / "two.toml"
    path.write_text('preset = "tiny"\n[grid]\n"noise.rate" = [0.2]\n"training.lr" = [0.1]\n')
    code, _, err = cli(monkeypatch, capsys, str(path), "--results", str(tmp_path / "results"))
    assert code == 2 and "exactly one grid axis" in err and not (tmp_path / "results").exists()


@pytest.mark.parametrize("path", sorted((REPO / "sweeps").glob("diagram-*.toml")), ids=lambda p: p.stem)
def test_every_diagram_sweep_file_loads_with_one_axis(path):
    spec = load_sweep(path)
    assert len(spec.grid) == 1 and len(spec.seeds) >= 3 and spec.base.data.holdout == 0.1


@pytest.mark.parametrize(("file", "field"), [("diagram-noise-digits", "noise.rate"),
                                             ("diagram-width-digits", "model.hidden")])
def test_the_laptop_sweep_files_are_the_command_defaults(file, field):
    from_file = load_sweep(REPO / "sweeps" / f"{file}.toml")
    default = diagram_sweep("digits", field)
    assert from_file.name == default.name and list(default.grid[field]) == LAPTOP_VALUES[field]
    names = [[config.run_name() for config in group] for group in from_file.groups()]
    assert names == [[config.run_name() for config in group] for group in default.groups()]
