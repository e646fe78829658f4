"""The graded lab as an nbgrader assignment in a course folder.

`release` writes the instructor's source (`source/<assignment>/lab.ipynb`: the packaged lab, with the
class's parameters injected by papermill) and a course `nbgrader_config.py`, then runs nbgrader's own
`generate_assignment`, which writes the student version (`release/<assignment>/lab.ipynb`: solutions
replaced by a stub, hidden tests removed) and records the graded cells in `gradebook.db`. Collecting and
grading are nbgrader's commands, run in the course folder (see docs/teaching.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from sddlab.app.notebooks import NOTEBOOK_DIR
from sddlab.errors import ConfigError, SddError
from sddlab.io import atomic_write_text

ASSIGNMENT = "sdd-lab"
LAB = "lab"
# Students' runs go into their assignment folder, so they are handed in with the notebook and autograde
# reads the same run directories instead of training again.
RELEASE_DEFAULTS: dict[str, Any] = {"results": "results"}
COURSE_CONFIG = '''"""nbgrader settings of this course folder (written by `sddlab lab release`; yours to edit)."""

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "sddlab"
# A submission whose run directories are missing trains them again while it is graded: allow the time.
c.Execute.timeout = 3600
# The answer cell keeps its variables; only the solution lines are replaced.
c.ClearSolutions.code_stub = {"python": "# (replace each ... above with your answer)"}
'''


@dataclass(frozen=True)
class Release:
    """What `release` wrote: the course folder, the instructor's source and the student version."""

    course: Path
    source: Path
    student: Path


def lab_parameters(notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, Any]:
    """The lab's papermill parameters and their defaults."""
    import papermill

    found = papermill.inspect_notebook(str(notebook_dir / f"{LAB}.ipynb"))
    return {name: spec["default"] for name, spec in found.items()}


def check_parameters(parameters: dict[str, Any], allowed: dict[str, Any]) -> None:
    """Every parameter name must be one the notebook declares (one line naming it otherwise)."""
    for name in parameters:
        if name not in allowed:
            raise ConfigError("parameter", name, f"one of {', '.join(allowed)}")


def source_notebook(parameters: dict[str, Any], notebook_dir: Path = NOTEBOOK_DIR) -> nbformat.NotebookNode:
    """The packaged lab with `parameters` (over RELEASE_DEFAULTS) injected after its `parameters` cell."""
    import papermill.parameterize

    check_parameters(parameters, lab_parameters(notebook_dir))
    notebook = nbformat.read(notebook_dir / f"{LAB}.ipynb", as_version=4)
    notebook.metadata.setdefault("papermill", {})  # papermill records the injected parameters there
    for cell in notebook.cells:  # and looks for its tags in every cell
        cell.metadata.setdefault("tags", [])
    notebook = papermill.parameterize.parameterize_notebook(notebook, {**RELEASE_DEFAULTS, **parameters})
    for cell in notebook.cells:  # papermill gives its cell a random id; a fixed one makes a re-release identical
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
    return notebook


def release(course: str | Path, parameters: dict[str, Any] | None = None, assignment: str = ASSIGNMENT,
            overwrite: bool = False, notebook_dir: Path = NOTEBOOK_DIR) -> Release:
    """Write the instructor's source and nbgrader's student version of the lab into the course folder."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", assignment):
        raise ConfigError("assignment", assignment, "letters, digits, '-' and '_' (a folder name nbgrader accepts)")
    course = Path(course).expanduser().resolve()
    if course.exists() and not course.is_dir():
        raise ConfigError("course folder", str(course), "a folder (it is a file)")
    notebook = source_notebook(parameters or {}, notebook_dir)
    source = course / "source" / assignment / f"{LAB}.ipynb"
    text = nbformat.writes(notebook)
    if source.exists() and source.read_text() != text and not overwrite:
        raise ConfigError("source", str(source), "absent or unchanged: it was edited or released with other "
                          "parameters; pass --overwrite to replace it, or run `nbgrader generate_assignment "
                          f"{assignment} --force` in {course} to release your edited source")
    source.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(source, text)
    config = course / "nbgrader_config.py"
    if not config.exists():
        atomic_write_text(config, COURSE_CONFIG)
    generate(course, assignment)
    return Release(course, source, course / "release" / assignment / f"{LAB}.ipynb")


def nbgrader_environment() -> dict[str, str]:
    """This environment with this interpreter's scripts first on PATH: nbgrader starts `alembic` by name."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}


def generate(course: Path, assignment: str = ASSIGNMENT) -> None:
    """nbgrader's generate_assignment in the course folder (its own command, so its own config file applies)."""
    command = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"]
    try:
        done = subprocess.run(command, cwd=course, capture_output=True, text=True, env=nbgrader_environment())
    except FileNotFoundError as error:
        raise SddError(f"nbgrader could not start: {error}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        if "No module named nbgrader" in done.stderr:
            raise SddError("`sddlab lab release` needs nbgrader: pip install 'sddlab[grading]'")
        raise SddError(f"nbgrader generate_assignment failed: {(lines or ['no output'])[-1]}")
