"""`sddlab app` in a real browser: the explorer served by Voilà, code hidden, at a laptop's and a projector's size.

The app starts in a class folder with no SDDLAB_RESULTS (its runs must land in that folder's results/), with
`-p preset digits`. At 1366×768 and then 1024×768 (a new page, so a new kernel) a student runs a short
configuration, stops it once a level is stored, resumes it to the end; no code cell or notebook-only text
shows, and nothing is wider than the window. Screenshots go to $SDDLAB_BROWSER_ARTIFACTS (else the test's tmp dir).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from jupyter_browser import CHROMIUM, CHROMIUM_ARGS, browser_missing, button, control, level_points, set_text, voila_app

try:
    import voila  # noqa: F401

    VOILA = None
except ImportError:
    VOILA = "Voilà is not installed (pip extra 'voila')"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(browser_missing() is not None or VOILA is not None,
                                 reason=str(browser_missing() or VOILA))]
LEVELS = 12  # digits' MLP for 12 levels: long enough that Stop lands mid-run even when the browser lags
CODE = ".jp-CodeCell .jp-InputArea, .jp-InputPrompt, .jp-CodeMirrorEditor, .cm-editor, .jp-CodeCell .highlight"


def _code_lines() -> list[str]:
    """Every line of the explorer's code cells (none may show in the app)."""
    import nbformat

    from sddlab.app.notebooks import NOTEBOOK_DIR

    notebook = nbformat.read(NOTEBOOK_DIR / "explore.ipynb", as_version=4)
    return [line.strip() for cell in notebook.cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line.strip()) > 12]


def _text(page) -> str:
    return "\n".join(page.locator(".widget-html-content").all_inner_texts())


def _until(page, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {_text(page)[-600:]}")
        page.wait_for_timeout(250)


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("SDDLAB_BROWSER_ARTIFACTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _levels_on_disk(results: Path, epochs: int) -> int:
    """Finished levels the kernel has stored for the run with `epochs` per level (the browser may lag behind)."""
    from sddlab.store import RunStore

    for run_dir in results.glob("digits-*"):
        try:
            store = RunStore(run_dir)
            if str(store.config().training.duration) == f"{epochs}ep":
                return len(store.records())
        except Exception:  # being written: ask again
            continue
    return 0


def _run_stop_resume(page, epochs: int, results: Path) -> None:
    control(page, "dropdown", "preset").wait_for(timeout=300_000)
    assert control(page, "dropdown", "preset").input_value() == "digits", "-p preset digits reached the app"
    body = page.inner_text("body")
    assert "Sparse double descent explorer" in body, "the notebook's text is shown"
    assert "Every parameter below" not in body, "notebook-only text is left out"
    assert page.locator(CODE).count() == 0, "no code cell is visible"
    shown = [line for line in _code_lines() if line in body]
    assert not shown, f"code shows: {shown}"
    set_text(page, "text", "levels", str(LEVELS))
    set_text(page, "text", "epochs / level", str(epochs))
    _until(page, lambda: "changed:" in _text(page), 60, "the changed-preset note")
    button(page, "Run").click(timeout=120_000)
    _until(page, lambda: _levels_on_disk(results, epochs) >= 1, 300, "a stored level")
    button(page, "Stop").click(timeout=120_000)
    _until(page, lambda: "stopped; finished levels are kept" in _text(page), 120, "the stop")
    kept = level_points(page)
    assert 1 <= kept <= LEVELS
    page.wait_for_timeout(1500)
    assert level_points(page) == kept, "nothing trains after Stop"
    button(page, "Resume").click(timeout=120_000)
    _until(page, lambda: "finished:" in _text(page), 600, "the resumed run to finish")
    page.wait_for_timeout(1500)
    assert level_points(page) == LEVELS + 1
    assert page.locator(CODE).count() == 0, "still no code after the run"
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the window"


def test_app_runs_stops_and_resumes_with_code_hidden(tmp_path, artifacts):
    from playwright.sync_api import sync_playwright

    folder, home = tmp_path / "class", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    with voila_app(folder, home, ["-p", "preset", "digits"]) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for (width, height), epochs in (((1366, 768), 10), ((1024, 768), 15)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(url, timeout=300_000)
                _run_stop_resume(page, epochs, folder / "results")
                page.screenshot(path=artifacts / f"app-{width}x{height}.png")
                page.close()
        finally:
            browser.close()
    runs = sorted(path.name for path in (folder / "results").iterdir() if (path / "figure.html").exists())
    assert len(runs) == 2 and all(name.startswith("digits-") for name in runs), "runs in the class folder's results/"
