"""JupyterLab on 127.0.0.1 (free port, token) driven by headless Debian Chromium through Playwright.

Used by tests/test_browser.py; never downloads a browser (no `playwright install`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip extra 'browser'; bash scripts/setup.sh)"
    if not Path(CHROMIUM).exists():
        return f"no browser at {CHROMIUM}: bash scripts/setup.sh installs Debian's chromium (needs root and apt)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(root: Path, home: Path, env: dict[str, str] | None = None, timeout: float = 120.0,
               strip_on_save: bool = True) -> Iterator[str]:
    """Run JupyterLab on `root` with a private HOME; yields the base URL with its token; stops it after."""
    port, token = _free_port(), secrets.token_hex(16)
    environment = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
                   "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"), **(env or {})}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--allow-root",
               "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if strip_on_save:
        from sddlab.app.notebooks import STRIP_ON_SAVE  # the flag `sddlab jupyter` starts JupyterLab with

        command.append(STRIP_ON_SAVE)
    settings = home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)  # no "get notified about Jupyter news?" prompt, no news fetch
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = (home / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (home / 'jupyterlab.log').read_text()[-2000:]
                    raise RuntimeError(f"JupyterLab did not start: {log_text}") from None
                time.sleep(0.5)
        yield f"{url}/lab/tree/%s?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextlib.contextmanager
def notebook_in_browser(notebook: Path, tmp_path: Path, timeout_ms: int = 120_000) -> Iterator[tuple]:
    """JupyterLab on the notebook's folder (results and data pinned under `tmp_path` as `sddlab jupyter` pins
    them), the notebook opened in headless Chromium at 1366×768 with every cell run; yields (browser, page)."""
    from playwright.sync_api import sync_playwright

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    folders = {"SDDLAB_RESULTS": str(tmp_path / "results"), "SDDLAB_DATA": str(tmp_path / "data")}
    with jupyterlab(notebook.parent, home, env=folders) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url % notebook.name)
        run_all_cells(page, timeout_ms)
        try:
            yield browser, page
        finally:
            browser.close()


def copy_notebook(source: Path, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, root / source.name))


def run_all_cells(page, timeout_ms: int = 120_000) -> None:
    """Wait for the kernel, then run every cell through JupyterLab's own command."""
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                           "window.jupyterapp.shell.currentWidget.sessionContext && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=timeout_ms)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def control(page, kind: str, label: str):
    """The input of the ipywidget of class `widget-<kind>` whose description is `label`."""
    box = page.locator(f".widget-{kind}").filter(has=page.locator(".widget-label", has_text=label)).first
    return box.locator("select" if kind == "dropdown" else "input").first


def set_text(page, kind: str, label: str, value: str) -> None:
    field = control(page, kind, label)
    field.fill(value)
    field.press("Enter")


def button(page, text: str):
    return page.locator("button.widget-button, button.widget-toggle-button").filter(has_text=text).first


def level_points(page) -> int:
    """Markers drawn on the level figure's first (test accuracy) line."""
    return page.evaluate("""() => {
        const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(
            p => (p.querySelector('.gtitle') || {}).textContent?.includes('per level'));
        if (!plots.length) return 0;
        const trace = plots[0].querySelector('.scatterlayer .trace');
        return trace ? trace.querySelectorAll('.points path').length : 0;
    }""")


def widget_text(page, selector: str = ".widget-html-content") -> str:
    return "\n".join(page.locator(selector).all_inner_texts())


@contextlib.contextmanager
def voila_app(folder: Path, home: Path, parameters: list[str] | None = None, timeout: float = 300.0) -> Iterator[str]:
    """`sddlab app` started in `folder` (no SDDLAB_RESULTS / SDDLAB_DATA: the folder rule applies) with a private
    HOME; yields the app's URL with its token; stops it after."""
    port, token = _free_port(), secrets.token_hex(16)
    environment = {key: value for key, value in os.environ.items() if key not in ("SDDLAB_RESULTS", "SDDLAB_DATA")}
    environment.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
                       JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"))
    command = [sys.executable, "-m", "sddlab", "app", "--no-browser", "--port", str(port), "--token", token,
               *(parameters or [])]
    log = (home / "app.log").open("w")
    server = subprocess.Popen(command, cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:  # the port answers once Voilà listens (a GET of the page would start a kernel)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start: {(home / 'app.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
