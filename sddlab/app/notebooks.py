"""The notebooks that ship inside the package: run them headless, copy them for JupyterLab, open JupyterLab.

Headless runs (papermill) execute in the current folder, so a notebook's run directories and outputs
follow `sddlab.paths` (SDDLAB_RESULTS, else ./results) wherever the package is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from sddlab import paths
from sddlab.errors import ConfigError, SddError

NOTEBOOK_DIR = Path(str(resources.files("sddlab") / "notebooks"))
KERNEL_NAME = "python3"  # papermill: the interpreter running sddlab (Jupyter's native kernel)
STRIP_ON_SAVE = "--ContentsManager.pre_save_hook=sddlab.app.hygiene.pre_save_hook"  # notebooks saved output-free


def available(notebook_dir: Path = NOTEBOOK_DIR) -> list[str]:
    return sorted(path.stem for path in notebook_dir.glob("*.ipynb"))


def parse_value(text: str) -> Any:
    """A parameter value: JSON when it parses (numbers, lists, dicts, true), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def execute(
    name: str,
    parameters: dict[str, Any] | None = None,
    output_dir: str | Path | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
    progress: bool = True,
    html: bool = False,
) -> Path:
    """Execute notebook `name` with papermill in the current folder; returns the executed copy's path.

    By default the executed notebook, its figures and its values.json go to
    `<results>/notebooks/<name>/`, `<results>` being the `results` parameter or `sddlab.paths.results_dir()`.
    `html` also writes `<name>.html` beside it: self-contained, every figure inline, no network (a handout).
    """
    import papermill  # the notebooks extra

    names = available(notebook_dir)
    if name not in names:
        raise ConfigError("notebook", name, f"one of {', '.join(names)}")
    results = (parameters or {}).get("results")
    output_dir = Path(output_dir) if output_dir else paths.results_dir(results) / "notebooks" / name
    paths.check_writable(output_dir, "--output")
    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"output_dir": str(output_dir), **(parameters or {})}
    target = output_dir / f"{name}.ipynb"
    try:
        papermill.execute_notebook(
            str(notebook_dir / f"{name}.ipynb"), str(target), parameters=parameters, cwd=str(Path.cwd()),
            progress_bar=progress, kernel_name=KERNEL_NAME,
        )
    except papermill.PapermillExecutionError as error:
        raise SddError(f"notebook {name} failed in cell {error.exec_count}: {error.ename}: {error.evalue}") from None
    if html:
        from sddlab.app.handout import write_handout

        write_handout(target)
    return target


def parse_parameters(args: list[str]) -> dict[str, Any]:
    """`-p KEY VALUE` pairs (repeated) as a dict, each VALUE read by `parse_value`."""
    rest, parameters = list(args), {}
    while rest:
        flag = rest.pop(0)
        if flag not in ("-p", "--parameter") or len(rest) < 2:
            raise SddError(f"notebook parameters={' '.join(args)!r} are not allowed: -p KEY VALUE, repeated")
        key, value = rest.pop(0), rest.pop(0)
        parameters[key] = parse_value(value)
    return parameters


def copy_notebooks(folder: str | Path, overwrite: bool = False, notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, str]:
    """Copy the packaged notebooks into `folder` for JupyterLab; returns name -> 'copied', 'kept' or 'same'.

    A notebook already there that differs from the packaged one is kept (the user may have edited it)
    unless `overwrite`.
    """
    folder = Path(folder).expanduser()
    paths.check_writable(folder, "folder")
    folder.mkdir(parents=True, exist_ok=True)
    outcome = {}
    for source in sorted(notebook_dir.glob("*.ipynb")):
        target = folder / source.name
        if target.exists() and target.read_bytes() == source.read_bytes():
            outcome[source.stem] = "same"
        elif target.exists() and not overwrite:
            outcome[source.stem] = "kept"
        else:
            shutil.copyfile(source, target)
            outcome[source.stem] = "copied"
    return outcome


def register_kernel(name: str = "sddlab", display_name: str = "Python (sddlab)") -> None:
    """Register this interpreter as the user's Jupyter kernel `name`, for a JupyterLab installed elsewhere."""
    command = [sys.executable, "-m", "ipykernel", "install", "--user", "--name", name, "--display-name", display_name]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SddError(f"registering the Jupyter kernel failed: {last} (is the notebooks extra installed?)")


def jupyter_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment JupyterLab runs in: data and results pinned to this folder's (unless already set)."""
    env = dict(os.environ if base is None else base)
    env.setdefault(paths.RESULTS_ENV, str(paths.results_dir().resolve()))
    env.setdefault(paths.DATA_ENV, str(paths.data_dir().resolve()))
    return env


def open_jupyter(folder: str | Path, extra: list[str] | None = None) -> int:
    """Open JupyterLab on `folder` (blocks until it exits); notebooks write to this folder's results/."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError("folder", str(folder), "an existing folder of notebooks (see `sddlab copy-notebooks`)")
    command = [sys.executable, "-m", "jupyterlab", str(folder), STRIP_ON_SAVE, *(extra or [])]
    return subprocess.call(command, env=jupyter_environment())
