"""The explorer in a real browser: JupyterLab on 127.0.0.1 under headless Debian Chromium (Playwright).

A student's path: open explore.ipynb, run it, pick a small configuration with another architecture and a
one-shot schedule, Run, Stop after three level markers, Resume to the end, check the table and the status
line, trigger an invalid choice, save and reopen the notebook; then open a run's figure.html from file://
with no network request. Then three seeds from the explorer (their band), and hovering a noisy example in
07_beyond until its picture and labels show. Screenshots at 1366×768 go to $SDDLAB_BROWSER_ARTIFACTS (else
the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from jupyter_browser import (
    VIEWPORT,
    browser_missing,
    button,
    control,
    copy_notebook,
    level_points,
    notebook_in_browser,
    set_text,
    widget_text,
)

from sddlab.app.notebooks import NOTEBOOK_DIR

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))]
LEVELS, EPOCHS = 10, 30  # levels long enough that Stop lands mid-run with the fast hand-written step


def _until(page, condition, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {widget_text(page)[-600:]}")
        page.wait_for_timeout(200)


def _status(page) -> str:
    return widget_text(page)


def _kernel_idle(page) -> bool:
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status") == "idle"


def _choose_small_oneshot_lenet(page) -> None:
    control(page, "dropdown", "preset").select_option("tiny")
    page.wait_for_timeout(500)
    control(page, "dropdown", "architecture").select_option("lenet-300-100")
    button(page, "one-shot").click()
    set_text(page, "text", "final sparsity", "0.99")
    set_text(page, "text", "levels", str(LEVELS))
    set_text(page, "text", "epochs / level", str(EPOCHS))
    _until(page, lambda: "architecture mlp → lenet-300-100" in _status(page), 30, "the changed-preset note")


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("SDDLAB_BROWSER_ARTIFACTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_explorer_end_to_end_in_jupyterlab(tmp_path, artifacts):
    notebook, results = copy_notebook(NOTEBOOK_DIR / "explore.ipynb", tmp_path / "nb"), tmp_path / "results"
    with notebook_in_browser(notebook, tmp_path) as (browser, page):
        control(page, "dropdown", "preset").wait_for(timeout=120_000)
        _choose_small_oneshot_lenet(page)
        assert "targets 36.9%, 60.2%, 74.9%" in _status(page), "one-shot targets of 0.99 in 10 levels"
        page.screenshot(path=artifacts / "1-chosen.png")

        button(page, "Run").click()
        _until(page, lambda: level_points(page) >= 1, 180, "the first level marker")
        assert _kernel_idle(page), "training runs in a background thread: the kernel stays free"
        _until(page, lambda: level_points(page) >= 3, 180, "three level markers")
        page.screenshot(path=artifacts / "2-running.png")
        button(page, "Stop").click()
        _until(page, lambda: "stopped; finished levels are kept" in _status(page), 60, "the stop")
        kept = level_points(page)
        assert 3 <= kept < LEVELS + 1
        page.wait_for_timeout(1500)
        assert level_points(page) == kept, "nothing trains after Stop"

        button(page, "Resume").click()
        _until(page, lambda: "finished:" in _status(page), 300, "the resumed run to finish")
        page.wait_for_timeout(1000)
        assert level_points(page) == LEVELS + 1
        text = _status(page)
        assert "(figure.html written)" in text
        table_rows = [line for line in text.splitlines() if line.strip()[:2].strip().isdigit()]
        assert len(table_rows) >= LEVELS + 1, "one table row per level"
        page.screenshot(path=artifacts / "3-finished.png")

        set_text(page, "text", "epochs / level", "0")
        _until(page, lambda: "epochs / level must be a whole number from 1 to 10000 (got 0)" in _status(page), 30,
               "the error")
        page.wait_for_timeout(800)
        assert level_points(page) == 0, "the error replaces the curves of another configuration"
        page.screenshot(path=artifacts / "4-error.png")

        before = notebook.stat().st_mtime_ns
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        _until(page, lambda: notebook.stat().st_mtime_ns != before, 30, "the save")
        saved = json.loads(notebook.read_text())
        assert "widgets" not in saved["metadata"], "no saved widget state"
        assert all(cell.get("outputs", []) == [] and cell.get("execution_count") is None
                   for cell in saved["cells"] if cell["cell_type"] == "code"), "saved output-free"
        page.reload()
        page.locator(".jp-Notebook").wait_for(timeout=60_000)
        page.wait_for_timeout(3000)
        assert "Error displaying widget" not in page.inner_text("body")
        page.screenshot(path=artifacts / "5-reopened.png")

        run_dir = next(path for path in results.iterdir() if (path / "figure.html").exists())
        requests: list[str] = []
        offline = browser.new_page(viewport=VIEWPORT)
        offline.on("request", lambda request: requests.append(request.url))
        offline.goto((run_dir / "figure.html").as_uri())
        offline.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        assert offline.locator(".js-plotly-plot .scatterlayer .points path").count() >= 2 * (LEVELS + 1)
        assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests
        offline.screenshot(path=artifacts / "6-figure-html.png")


def test_explorer_seeds_band_in_jupyterlab(tmp_path, artifacts):
    notebook, results = copy_notebook(NOTEBOOK_DIR / "explore.ipynb", tmp_path / "nb"), tmp_path / "results"
    with notebook_in_browser(notebook, tmp_path) as (_, page):
        control(page, "dropdown", "preset").wait_for(timeout=120_000)
        control(page, "dropdown", "preset").select_option("tiny")
        page.wait_for_timeout(500)
        set_text(page, "text", "epochs / level", "2")
        set_text(page, "text", "seeds", "3")
        _until(page, lambda: "3 seeds (0, 1, 2) in lockstep" in _status(page), 30, "the seeds note")
        button(page, "Run").click()
        _until(page, lambda: "finished:" in _status(page), 300, "three seeds to finish")
        page.wait_for_timeout(1000)
        assert len([d for d in results.iterdir() if (d / "figure.html").exists()]) == 3
        legend = " ".join(page.locator(".js-plotly-plot .legend").all_text_contents())
        assert "mean ± std over seeds" in legend
        assert "mean over the seeds that finished each level (of 3 seeds)" in _status(page)
        assert "noisy labels only: the noise-floor rule keeps level" in _status(page)
        page.screenshot(path=artifacts / "7-seeds.png")


def test_hovering_a_noisy_example_shows_it_in_jupyterlab(tmp_path, artifacts):
    import nbformat

    notebook = copy_notebook(NOTEBOOK_DIR / "07_beyond.ipynb", tmp_path / "nb")
    content = nbformat.read(notebook, as_version=4)
    content.cells[1].source = (
        'presets = ["tiny"]\nseeds = [0]\nantidotes = ["none"]\nnoise_rates = []\nholdout = 0.1\n'
        'overrides = {"training.duration": "6ep", "experiment.levels": 6}\nexecutor = "inprocess"\n'
        'results = None\noutput_dir = None\n')
    nbformat.write(content, notebook)
    with notebook_in_browser(notebook, tmp_path, timeout_ms=300_000) as (_, page):
        scatter = page.locator(".js-plotly-plot").filter(has_text="When each noisy label stops being fitted").first
        scatter.wait_for(timeout=300_000)
        scatter.scroll_into_view_if_needed()
        point = scatter.locator(".scatterlayer .points path").first
        point.wait_for(timeout=60_000)
        caption = page.locator(".widget-html-content").filter(has_text="true label")
        for _ in range(5):  # plotly hovers on mouse movement: come from outside the point
            box = point.bounding_box()
            page.mouse.move(box["x"] - 30, box["y"] - 30)
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
            page.wait_for_timeout(1500)
            if caption.count():
                break
        text = caption.first.inner_text()
        assert "trained with label" in text and "(noisy)" in text, text
        page.screenshot(path=artifacts / "8-hover.png")
