"""Time each part of the graded lab as a class lives it, in a fresh temporary course folder.

    .venv/bin/python benchmarks/bench_teaching.py [-p KEY VALUE ...]   (the lab's parameters, default: its own)

Parts: the teacher's release (`sddlab lab release`), one student's lab (the student version executed
top to bottom with answers filled in, its two runs trained in the assignment folder), autograding that
submission (its runs handed in), autograding a submission handed in without its runs (trained again),
and the HTML handout of the executed lab. Prints seconds per part, the machine's cores and its load
average before and after (times on a busy machine are longer: read them with the load).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from args import run_main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_lab_grading import _fill  # noqa: E402  (what a student does to the notebook)

from sddlab.app.handout import write_handout  # noqa: E402
from sddlab.app.lab_release import nbgrader_environment, release, source_notebook  # noqa: E402
from sddlab.app.notebooks import parse_parameters  # noqa: E402
from sddlab.errors import SddError  # noqa: E402
from sddlab.phases.questions import answers  # noqa: E402


def timed(label: str, work) -> float:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {seconds:8.1f} s", flush=True)
    return seconds


def execute(notebook: Path) -> None:
    """Run every cell as a student does, in the notebook's folder (nbconvert's executor, no time limit)."""
    from nbclient import NotebookClient

    content = nbformat.read(notebook, as_version=4)
    NotebookClient(content, timeout=None, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    nbformat.write(content, notebook)


def student_lab(notebook: Path) -> None:
    """The cells up to the answers (the two runs), the answers read off the noisy run, then the whole lab."""
    import sddlab
    from sddlab.store import RunStore

    content = nbformat.read(notebook, as_version=4)
    head = nbformat.v4.new_notebook(metadata=content.metadata)
    head.cells = content.cells[: next(i for i, cell in enumerate(content.cells) if cell.get("id") == "lab-answers")]
    probe = notebook.with_name("probe.ipynb")
    nbformat.write(head, probe)
    execute(probe)
    probe.unlink()
    runs = [d for d in (notebook.parent / "results").iterdir() if (d / "config.json").exists()]
    noisy = next(d for d in runs if RunStore(d).config().noise.rate > 0)
    _fill(notebook, "", {name: None if value is None else round(value, 4)
                         for name, value in answers(sddlab.load(noisy)).items()})
    execute(notebook)


def autograde(course: Path, student: str) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "sdd-lab", "--student", student,
                           "--force"], cwd=course, env=nbgrader_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _, rest = parser.parse_known_args()
    try:
        parameters = parse_parameters(rest)
        source_notebook(parameters)  # the lab's own check of the parameters, before the timings
    except SddError as error:
        parser.error(str(error))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average before {os.getloadavg()[0]:.1f}; lab parameters {parameters or 'the defaults'}")
    with tempfile.TemporaryDirectory() as folder:
        course = Path(folder) / "course"
        timed("teacher: sddlab lab release", lambda: release(course, parameters))
        student = course / "release" / "sdd-lab" / "lab.ipynb"
        mine = course / "submitted" / "student1" / "sdd-lab"
        mine.mkdir(parents=True)
        notebook = Path(shutil.copy(student, mine / "lab.ipynb"))
        _fill(notebook, "student1", {})  # the ID only: answers are read off the curves after the runs

        timed("student: the whole lab, both runs trained", lambda: student_lab(notebook))
        timed("teacher: autograde one submission with its runs", lambda: autograde(course, "student1"))
        bare = course / "submitted" / "student2" / "sdd-lab"
        shutil.copytree(mine, bare, ignore=shutil.ignore_patterns("results"))
        timed("teacher: autograde one submission without runs", lambda: autograde(course, "student2"))
        timed("handout: HTML of the executed lab", lambda: write_handout(notebook, Path(folder) / "lab.html"))
        size = (Path(folder) / "lab.html").stat().st_size / 1e6
        print(f"handout size {size:.1f} MB; load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    run_main(main)
