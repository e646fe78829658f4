"""A run's figure is the same from every front end and exports to HTML, PNG, SVG and PDF."""

from __future__ import annotations

import pytest

from sddlab.errors import SddError
from sddlab.figures.export import config_subtitle, export_figure, find_browser, run_figure, write_run_figure
from sddlab.store import RunStore


def test_subtitle_is_built_from_the_runs_own_config(small_config):
    config = small_config({"experiment.levels": 7, "training.duration": "9ep", "noise.rate": 0.25})
    subtitle = config_subtitle(config)
    assert "7 levels × 20%" in subtitle and "9ep per level" in subtitle and "25% symmetric noise" in subtitle
    assert config.description not in subtitle
    oneshot = config.with_overrides({"pruning.strategy": "oneshot", "pruning.fraction": 0.5})
    assert f"7 one-shot levels to {1 - 0.5 ** 7:.2%}" in config_subtitle(oneshot)


def test_run_figure_draws_every_level_with_phase_labels_off_the_data(finished_run):
    fig = run_figure(finished_run)
    records = RunStore(finished_run).records()
    test_trace = next(trace for trace in fig.data if trace.name == "test accuracy")
    assert list(test_trace.y) == [r["test_acc"] for r in records]
    assert config_subtitle(RunStore(finished_run).config()) in fig.layout.title.text
    labels = [a for a in fig.layout.annotations if a.text in ("light", "critical", "sweet", "collapsed")]
    assert all(a.y >= 1.0 and a.yanchor == "bottom" for a in labels)
    path = write_run_figure(finished_run)
    assert path == finished_run / "figure.html" and "<script" in path.read_text()


def test_unknown_format_is_one_line(tmp_path, finished_run):
    with pytest.raises(SddError, match=r"figure file .*\.bmp' is not allowed: a name ending in \.html"):
        export_figure(run_figure(finished_run), tmp_path / "figure.bmp")
    assert not (tmp_path / "figure.bmp").exists()


@pytest.mark.skipif(find_browser() is None, reason="no Chromium for static export (bash scripts/setup.sh installs it)")
def test_static_export_for_slides_and_papers(tmp_path, finished_run):
    pytest.importorskip("kaleido", reason="kaleido is in the 'browser' extra")
    fig = run_figure(finished_run)
    png = export_figure(fig, tmp_path / "curve.png", width=800, height=500, scale=1.0).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 800 and int.from_bytes(png[20:24], "big") == 500
    svg = export_figure(fig, tmp_path / "curve.svg").read_text()
    assert svg.startswith("<svg") and "test accuracy" in svg
    assert export_figure(fig, tmp_path / "curve.pdf").read_bytes()[:5] == b"%PDF-"
