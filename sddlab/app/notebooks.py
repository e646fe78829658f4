"""Run the project's notebooks headless with papermill, parameters injected, outputs under results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sddlab.errors import ConfigError, SddError

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


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
) -> Path:
    """Execute notebook `name` with papermill; returns the executed copy's path.

    Relative paths among the parameters are the notebook's own (it runs in `notebooks/`); by default the
    executed notebook, its figures and its values.json go to results/notebooks/<name>/.
    """
    import papermill

    names = available(notebook_dir)
    if name not in names:
        raise ConfigError("notebook", name, f"one of {', '.join(names)}")
    output_dir = Path(output_dir) if output_dir else notebook_dir.parent / "results" / "notebooks" / name
    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    parameters = {"output_dir": str(output_dir), **(parameters or {})}
    target = output_dir / f"{name}.ipynb"
    try:
        papermill.execute_notebook(
            str(notebook_dir / f"{name}.ipynb"), str(target), parameters=parameters, cwd=str(notebook_dir),
            progress_bar=progress, kernel_name="python3",
        )
    except papermill.PapermillExecutionError as error:
        raise SddError(f"notebook {name} failed in cell {error.exec_count}: {error.ename}: {error.evalue}") from None
    return target
