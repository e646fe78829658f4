"""`sddlab report`: a results page rebuilt from run directories equals what their level records say."""

from __future__ import annotations

import json
import shlex
import statistics
from pathlib import Path

import pandas as pd
import pytest
from cli_run import sddlab_cli

import sddlab
from sddlab.app.sweep_command import build_spec
from sddlab.figures.export import find_browser
from sddlab.phases.over_seeds import landmark_row, seed_margins
from sddlab.store import RunStore


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory, small_config, run_config) -> list[Path]:
    """Two seeds of the tiny preset (made smaller), run apart: ordinary run directories in one results folder."""
    results = tmp_path_factory.mktemp("report-runs")
    return [run_config(small_config({"experiment.seed": seed, "noise.rate": 0.3}), results) for seed in (1, 0)]


def records_of(run_dir: Path) -> list[dict]:
    """The level records read straight from the JSON files (no sddlab reader in between)."""
    return [json.loads(path.read_text()) for path in sorted((run_dir / "levels").glob("level_*.json"))]


def expected_rows(run_dirs: list[Path]) -> list[str]:
    """The per-level Markdown rows, computed here from the records with the statistics module."""
    by_level: dict[int, list[dict]] = {}
    for run_dir in run_dirs:
        for record in records_of(run_dir):
            by_level.setdefault(record["level"], []).append(record)
    rows = []
    for level, records in sorted(by_level.items()):
        test = [r["test_acc"] for r in records]
        train = [r["train_acc_noisy"] for r in records]
        rows.append(f"| {level} | {100 * records[0]['sparsity']:.2f} % | {records[0]['remaining']:,} | "
                    f"{len(records)} | {statistics.mean(test):.4f} ± {statistics.stdev(test):.4f} | "
                    f"{statistics.mean(train):.4f} ± {statistics.stdev(train):.4f} |")
    return rows


def table_after(text: str, heading: str) -> list[str]:
    """The Markdown table rows (after the header and rule) that follow `heading`."""
    lines = text.splitlines()
    start = lines.index(heading)
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return table[2:]


def test_page_equals_the_level_records_and_is_rebuilt_byte_for_byte(tmp_path, two_seeds, monkeypatch, capsys):
    results = two_seeds[0].parent
    code, out, err = sddlab_cli(monkeypatch, capsys, "report", str(results), "--name", "tiny-page",
                                "--out", str(tmp_path / "docs"), "--no-png")
    assert code == 0, err
    page = tmp_path / "docs" / "tiny-page"
    text = (page / "README.md").read_text()
    assert table_after(text, "## Per level (mean ± std over seeds)") == expected_rows(two_seeds)
    assert text.startswith("# tiny-page: sparse double descent over 2 seeds")

    # the CSV holds the same numbers at full precision
    levels = pd.read_csv(page / "levels.csv")
    for level, group in pd.DataFrame([r for d in two_seeds for r in records_of(d)]).groupby("level"):
        row = levels[levels["level"] == level].iloc[0]
        assert row["test_acc_mean"] == pytest.approx(statistics.mean(group["test_acc"]), abs=1e-12)
        assert row["test_acc_std"] == pytest.approx(statistics.stdev(group["test_acc"]), abs=1e-12)
        assert row["seeds"] == 2 and row["remaining"] == group["remaining"].iloc[0]

    # the dense row of the phase table, and the provenance, from the JSON files too
    dense = [records_of(d)[0]["test_acc"] for d in two_seeds]
    assert (f"| dense | 0 | 0.00 % | {records_of(two_seeds[0])[0]['remaining']:,} | "
            f"{statistics.mean(dense):.4f} ± {statistics.stdev(dense):.4f} |") in text
    metas = {d.name: json.loads((d / "meta.json").read_text()) for d in two_seeds}
    seed_of = {d: json.loads((d / "config.json").read_text())["experiment"]["seed"] for d in two_seeds}
    seconds = {seed_of[d]: sum(r["seconds"] for r in records_of(d)) for d in two_seeds}
    assert f"seed 0 {seconds[0]:,.1f} s, seed 1 {seconds[1]:,.1f} s" in text
    meta = next(iter(metas.values()))
    assert f"- machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores" in text
    assert f"- versions: sddlab {meta['sddlab_version']}, torch {meta['torch_version']}" in text
    assert ("- commit: `" + meta["commit"] + "`" in text) if meta.get("commit") else "- commit: not recorded" in text
    assert all(f"`{name}`" in text for name in metas)
    assert "tiny-page" in out and "curve.png" not in text

    # the same runs, named one by one and in another order, give the same files, byte for byte
    code, _, err = sddlab_cli(monkeypatch, capsys, "report", *map(str, two_seeds), "--name", "tiny-page",
                              "--out", str(tmp_path / "again"), "--no-png")
    assert code == 0, err
    for name in ("README.md", "levels.csv", "phases.csv", "records.csv"):
        assert (tmp_path / "again" / "tiny-page" / name).read_bytes() == (page / name).read_bytes()


def test_a_sweep_folder_names_the_page_and_groups_the_grid(tmp_path, two_seeds, small_config, run_config,
                                                           monkeypatch, capsys):
    from sddlab.sweeps import make_sweep, run_sweep

    spec = make_sweep("noise-pair", preset="tiny", overrides={"model.hidden": [16, 16], "training.duration": "2ep",
                                                              "experiment.levels": 2, "data.subset": 200},
                      grid={"noise.rate": (0.2, 0.4)}, seeds=[0, 1])
    results = tmp_path / "results"
    run_sweep(spec, results, device="cpu")
    code, _, err = sddlab_cli(monkeypatch, capsys, "report", str(results / "sweeps" / "noise-pair"),
                              "--out", str(tmp_path / "docs"), "--no-png")
    assert code == 0, err
    text = (tmp_path / "docs" / "noise-pair" / "README.md").read_text()
    assert text.index("## noise.rate=0.2") < text.index("## noise.rate=0.4")
    # the page's command remakes exactly these runs
    command = next(line for line in text.splitlines() if line.startswith("sddlab sweep "))
    words = shlex.split(command)[2:]
    options: dict[str, list[str]] = {}
    while words:
        flag = words.pop(0)
        while words and not words[0].startswith("--"):
            options.setdefault(flag, []).append(words.pop(0))
    remade = build_spec(None, name=options["--name"][0], preset=options["--preset"][0], config=None,
                        sets=options["--set"], grids=options["--grid"], seeds=[int(s) for s in options["--seeds"]],
                        executor={})
    assert {c.run_name() for group in remade.groups() for c in group} == {c.run_name() for group in spec.groups()
                                                                           for c in group}
    assert options["--grid"] == ["noise.rate=0.2,0.4"] and options["--name"] == ["noise-pair"]
    phases = pd.read_csv(tmp_path / "docs" / "noise-pair" / "phases.csv")
    assert list(phases["noise.rate"]) == [0.2, 0.4] and list(phases["seeds"]) == [2, 2]


@pytest.mark.parametrize(("args", "message"), [
    (["missing-folder"], r"report input='missing-folder' is not allowed: a run directory, a sweep folder"),
    (["RUN", "--name", "a/b"], r"--name='a/b' is not allowed: letters, digits"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, two_seeds, monkeypatch, capsys, args, message):
    import re

    args = [str(two_seeds[0]) if arg == "RUN" else arg for arg in args]
    code, out, err = sddlab_cli(monkeypatch, capsys, "report", *args, "--out", str(tmp_path / "docs"), "--no-png")
    assert code == 2 and re.search(message, err) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "docs").exists()


def test_margin_and_its_spread_over_seeds_by_hand():
    # three seeds that fit the noisy labels to level 2, dip there, peak at level 5 above dense, then fall
    curves = {0: [0.80, 0.78, 0.70, 0.76, 0.83, 0.86, 0.84, 0.60], 1: [0.82, 0.79, 0.71, 0.80, 0.84, 0.85, 0.83, 0.61],
              2: [0.78, 0.77, 0.69, 0.78, 0.82, 0.87, 0.85, 0.59]}
    train = [1.0, 1.0, 1.0, 0.95, 0.85, 0.8, 0.7, 0.5]
    rows = [{"experiment.seed": s, "level": lv, "sparsity": 1 - 0.5 ** lv, "remaining": 1000 * 0.5 ** lv,
             "test_acc": acc, "train_acc_noisy": train[lv]} for s, c in curves.items() for lv, acc in enumerate(c)]
    table = pd.DataFrame(rows)
    row = landmark_row(table)
    assert row["has_double_descent"] and (row["critical_level"], row["sweet_level"], row["collapse_level"]) == (2, 5, 6)
    per_seed = [curves[s][5] - curves[s][0] for s in curves]
    assert row["margin"] == pytest.approx(statistics.mean(c[5] for c in curves.values()) - 0.80)
    assert row["margin_std"] == pytest.approx(statistics.stdev(per_seed))
    assert (row["margin_min"], row["margin_max"]) == pytest.approx((min(per_seed), max(per_seed)))
    assert row["sweet_remaining"] == 31.25 and row["critical_sparsity"] == 0.75 and row["seeds"] == 3
    assert list(seed_margins(table, 5)) == pytest.approx(per_seed)


@pytest.mark.skipif(find_browser() is None, reason="no Chromium for static export (bash scripts/setup.sh installs it)")
def test_the_curve_png_is_drawn_at_its_size(tmp_path, two_seeds, monkeypatch, capsys):
    pytest.importorskip("kaleido")
    code, _, err = sddlab_cli(monkeypatch, capsys, "report", str(two_seeds[0].parent), "--name", "p",
                              "--out", str(tmp_path))
    assert code == 0, err
    png = (tmp_path / "p" / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1100, 700)
    assert "![tiny: accuracies, mean ± std over seeds](curve.png)" in (tmp_path / "p" / "README.md").read_text()
    assert RunStore(two_seeds[0]).config().name == "tiny"


def test_the_page_subtitle_uses_the_preset_description_only_for_unchanged_runs():
    from sddlab.app.results_page import _subtitle

    digits = sddlab.get_preset("digits")
    assert _subtitle(digits.with_overrides({"experiment.seed": 2})).startswith(digits.description)
    changed = _subtitle(digits.with_overrides({"noise.rate": 0.2}))
    assert digits.description not in changed and "20% symmetric noise" in changed


def test_diverged_runs_are_listed_and_a_page_of_only_diverged_runs_is_one_line(tmp_path, monkeypatch, capsys):
    from sddlab.sweeps import make_sweep, run_sweep

    spec = make_sweep("lr-pair", preset="tiny", overrides={"model.hidden": [16, 16], "training.duration": "2ep",
                                                           "experiment.levels": 1, "data.subset": 200},
                      grid={"training.lr": (0.01, 1e8)}, seeds=[0])
    results = tmp_path / "results"
    run_sweep(spec, results, device="cpu")
    diverged = spec.groups()[1][0].run_name()  # lr 1e8 diverges at level 0: a record without measurements
    code, out, err = sddlab_cli(monkeypatch, capsys, "report", str(results / "sweeps" / "lr-pair"),
                                "--out", str(tmp_path / "docs"), "--no-png")
    assert code == 0 and "Traceback" not in err, err
    line = f"diverged: {diverged} (level 0: weights exploded"
    assert err.startswith(line) and line in (tmp_path / "docs" / "lr-pair" / "README.md").read_text()
    records = pd.read_csv(tmp_path / "docs" / "lr-pair" / "records.csv")
    assert set(records["training.lr"]) == {0.01} and list(records["level"]) == [0, 1]
    code, out, err = sddlab_cli(monkeypatch, capsys, "report", str(results / diverged),
                                "--out", str(tmp_path / "alone"), "--no-png")
    assert code == 2 and err.count("\n") == 1 and out == ""
    assert err.startswith(f"sddlab: error: nothing to report: every run diverged before its first measured level: "
                          f"{diverged} (level 0: weights exploded")
    assert not (tmp_path / "alone").exists()
