"""`sddlab app`: the explorer notebook served by Voilà as a web app, code hidden, widgets live.

The packaged `explore.ipynb` (with any `-p KEY VALUE` parameters injected by papermill) is written to a
private temporary folder and served from there; Voilà strips every code cell's source and prompt, and
nbconvert's tag filter drops the markdown tagged `notebook-only` (text about code the app hides). Runs
follow the notebooks' folder rule: `./results` and `./data` of the folder `sddlab app` starts in, or
SDDLAB_RESULTS / SDDLAB_DATA. The server listens on 127.0.0.1 behind a token, so on a shared server
another user cannot drive your app.
"""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from sddlab.app.notebooks import NOTEBOOK_DIR, jupyter_environment
from sddlab.errors import ConfigError, SddError
from sddlab.io import atomic_write_text

APP = "explore"
NOTEBOOK_ONLY = "notebook-only"  # cells the app leaves out
JUPYTERLAB_ONLY = ["@jupyter/nbgrader", "@jupyter-notebook/lab-extension"]  # fail to load outside JupyterLab
DEFAULT_PORT = 8866  # Voilà's own default
FIXED = {"interactive": True}  # the app is the interactive explorer


def app_notebook(parameters: dict[str, Any] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> nbformat.NotebookNode:
    """The explorer with `parameters` injected after its `parameters` cell (unknown names: one-line error)."""
    import papermill
    import papermill.parameterize

    path = notebook_dir / f"{APP}.ipynb"
    known = papermill.inspect_notebook(str(path))
    for name in parameters or {}:
        if name not in known or name in FIXED:
            raise ConfigError("parameter", name, f"one of {', '.join(n for n in known if n not in FIXED)}")
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.setdefault("papermill", {})
    for cell in notebook.cells:
        cell.metadata.setdefault("tags", [])
    if not parameters:
        return notebook
    return papermill.parameterize.parameterize_notebook(notebook, dict(parameters))


def free_port(preferred: int = DEFAULT_PORT) -> int:
    """`preferred` when nobody listens on it (several users share a server), else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise SddError("no free port on 127.0.0.1 for the app")


def voila_command(notebook: Path, port: int, token: str, open_browser: bool,
                  extra: list[str] | None = None) -> list[str]:
    """The Voilà command line: code hidden, notebook-only cells dropped, 127.0.0.1 behind `token`."""
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1",
            f"--token={token}", "--strip_sources=True", "--theme=light", "--show_tracebacks=False",
            "--TagRemovePreprocessor.enabled=True",
            f"--TagRemovePreprocessor.remove_cell_tags={NOTEBOOK_ONLY}",
            *(f"--VoilaConfiguration.extension_denylist={name}" for name in JUPYTERLAB_ONLY),
            *([] if open_browser else ["--no-browser"]), *(extra or [])]


def serve(parameters: dict[str, Any] | None = None, port: int | None = None, token: str | None = None,
          open_browser: bool = True, extra: list[str] | None = None, echo=print) -> int:
    """Serve the explorer app until interrupted; returns Voilà's exit code."""
    try:
        import voila  # noqa: F401  (the voila extra)
    except ImportError:
        raise SddError("`sddlab app` needs Voilà: pip install 'sddlab[voila]'") from None
    if port is not None and not 0 < port < 65536:
        raise ConfigError("port", port, "a port number from 1 to 65535")
    notebook = app_notebook(parameters)
    port = free_port() if port is None else port
    token = token or secrets.token_urlsafe(24)
    env = jupyter_environment()
    with tempfile.TemporaryDirectory(prefix="sddlab-app-") as folder:
        path = Path(folder) / f"{APP}.ipynb"
        atomic_write_text(path, nbformat.writes(notebook))
        echo(f"sddlab app: http://127.0.0.1:{port}/?token={token}")
        echo(f"runs go to {env['SDDLAB_RESULTS']}; Ctrl-C stops the app")
        server = subprocess.Popen(voila_command(path, port, token, open_browser, extra), env=env)
        previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())  # a stopped app stops Voilà
        try:
            return server.wait()
        except KeyboardInterrupt:  # Voilà got the Ctrl-C too
            server.terminate()
            return server.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
