"""`sddlab notebook lab` writes a self-contained HTML handout: every figure inline, opened with no network."""

from __future__ import annotations

import json

import nbformat
import pytest
from jupyter_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, browser_missing

from sddlab.app.handout import PLOTLY, WIDGET, static_outputs


def _figure_output(title: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {PLOTLY: {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}],
                              "layout": {"title": {"text": title}}, "config": {"displaylogo": False}}}}


def test_plotly_js_is_embedded_once_and_widgets_are_dropped():
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    bar = {"output_type": "display_data", "metadata": {}, "data": {WIDGET: {"model_id": "m"}, "text/plain": "0%"}}
    notebook.cells = [nbformat.v4.new_code_cell("a", outputs=[nbformat.from_dict(bar), _figure_output("first")]),
                      nbformat.v4.new_code_cell("b", outputs=[_figure_output("second")])]
    static = static_outputs(notebook)
    first, second = (cell.outputs for cell in static.cells)
    assert "widgets" not in static.metadata
    assert len(first) == 1 and len(second) == 1, "the progress bar's widget view is gone"
    html = [outputs[0]["data"]["text/html"] for outputs in (first, second)]
    assert all("Plotly.newPlot" in text for text in html)
    assert len(html[0]) > 1_000_000 > len(html[1]), "plotly.js only in the first figure"
    assert json.dumps(static).count("first") >= 1 and '"displaylogo": false' in html[1]


@pytest.mark.slow
@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_lab_handout_opens_offline_with_every_figure(tmp_path):
    from playwright.sync_api import sync_playwright

    from sddlab.app.notebooks import execute

    target = execute("lab", {"results": str(tmp_path / "results"), "preset": "tiny", "epochs": 2, "levels": 3,
                             "student": "handout"}, tmp_path / "lab", progress=False, html=True)
    handout = target.with_suffix(".html")
    executed = nbformat.read(target, as_version=4)
    figures = sum(PLOTLY in output.get("data", {}) for cell in executed.cells for output in cell.get("outputs", []))
    assert figures == 3, "clean run, noisy run, clean vs noisy"
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.on("request", lambda request: requests.append(request.url))
        page.goto(handout.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        drawn = page.locator(".js-plotly-plot").count()
        text = page.inner_text("body")
        browser.close()
    assert drawn == figures, "every figure is drawn from the page itself"
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests
    assert "critical phase" in text and "Your answers (graded)" in text
