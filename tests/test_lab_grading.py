"""The graded lab: answers checked against each student's own run; nbgrader releases and autogrades it.

The slow test releases the lab into a course folder, fills in student copies as three students would
(alice right, bob with alice's answers, carol handing in alice's whole folder under her own name), runs
nbgrader's autograde and reads the scores from the gradebook.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import sddlab
from sddlab.errors import ConfigError
from sddlab.phases.questions import QUESTIONS, answers, check_answer, check_format, is_right, lab_seed

LAB = {"preset": "digits", "epochs": 5, "levels": 12}  # about 5 s a run; the phases show (seeds 0-2 checked)
POINTS = {"dense_test_acc": 1, "critical_sparsity": 2, "critical_test_acc": 1, "memorised_at_critical": 1,
          "sweet_sparsity": 2, "sweet_test_acc": 1}


def _config(student: str, noise: float):
    """The config the lab notebook builds for `student` (tests pin it to the notebook's own formula)."""
    base = sddlab.get_preset(LAB["preset"]).with_overrides(
        {"training.duration": f"{LAB['epochs']}ep", "experiment.levels": LAB["levels"],
         "experiment.seed": lab_seed(student)})
    return base.with_overrides({"noise.rate": noise})


def _table(results: Path, student: str, data_dir: Path):
    return sddlab.load(sddlab.run(_config(student, 0.4), results, data_dir=data_dir, progress=False, device="cpu"))


def test_seed_follows_the_student_id():
    assert lab_seed("") == 0 and lab_seed("x", seed=7) == 7
    assert lab_seed("Alice ") == lab_seed("alice") != lab_seed("bob")
    assert 0 <= lab_seed("alice") < 10_000


def test_answers_are_checked_against_the_run(finished_run):
    table = sddlab.load(finished_run)
    right = answers(table)
    for name, value in right.items():
        assert is_right(name, value, table)
        check_answer(name, value, table, student="anyone")  # not grading: any ID
    sparsities = sorted(table["sparsity"].unique())
    assert right["dense_test_acc"] == pytest.approx(float(table[table["level"] == 0]["test_acc"].mean()))
    assert is_right("dense_test_acc", right["dense_test_acc"] + 0.004, table)
    assert not is_right("dense_test_acc", right["dense_test_acc"] + 0.006, table)
    if right["critical_sparsity"] is not None:  # half a level of tolerance on the log axis
        level = sparsities.index(right["critical_sparsity"])
        neighbour = sparsities[level + 1]
        assert not is_right("critical_sparsity", neighbour, table)
        with pytest.raises(AssertionError, match="does not match your own curve"):
            check_answer("critical_sparsity", neighbour, table, student="anyone")
    with pytest.raises(AssertionError, match="replace ... with your answer"):
        check_format("sweet_sparsity", ...)
    with pytest.raises(AssertionError, match="a fraction from 0 to 1"):
        check_format("sweet_test_acc", 87.0)


def test_under_autograde_the_notebook_must_be_the_submitters(tmp_path, monkeypatch, finished_run):
    table = sddlab.load(finished_run)
    folder = tmp_path / "autograded" / "carol" / "sdd-lab"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    right = answers(table)["dense_test_acc"]
    check_answer("dense_test_acc", right, table, student="Carol")
    with pytest.raises(AssertionError, match="not the submitter's ID 'carol'"):
        check_answer("dense_test_acc", right, table, student="alice")


def test_release_names_a_bad_parameter_before_any_work(tmp_path):
    from sddlab.app.lab_release import release

    with pytest.raises(ConfigError, match="parameter=.?epoch.? is not allowed: one of student, preset"):
        release(tmp_path / "course", {"epoch": 5})
    with pytest.raises(ConfigError, match="assignment"):
        release(tmp_path / "course", assignment="../x")
    assert not (tmp_path / "course").exists()


def _fill(notebook: Path, student: str, values: dict) -> None:
    """What a student does: write the ID in the parameters cell and the answers in the answer cell."""
    content = nbformat.read(notebook, as_version=4)
    params = next(c for c in content.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace('student = ""', f"student = {student!r}", 1)
    cell = next(c for c in content.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "answers")
    for name, value in values.items():
        cell.source = cell.source.replace(f"{name} = ...", f"{name} = {value!r}", 1)
    why = next(c for c in content.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "why")
    why.source = "Fewer weights leave no room to memorise the wrong labels."
    nbformat.write(content, notebook)


def _read_off(right: dict) -> dict:
    """Answers as a student reads them from the hover: four decimals."""
    return {name: None if value is None else round(value, 4) for name, value in right.items()}


@pytest.mark.slow
def test_nbgrader_releases_and_autogrades_the_lab(tmp_path, data_dir):
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    from sddlab.app.lab_release import nbgrader_environment, release

    course = tmp_path / "course"
    released = release(course, LAB)
    source, student = released.source.read_text(), released.student.read_text()
    assert "BEGIN HIDDEN TESTS" in source and "right = answers(noisy)" in source
    assert "HIDDEN TESTS" not in student and "right = answers(noisy)" not in student
    for leak in ("answers(", "import answers", " answers,"):  # nothing in the student's copy computes the values
        assert leak not in student, leak
    assert "check_answer(\"" not in student, "hidden tests removed"
    assert student.count("check_format(") == len(QUESTIONS) and "dense_test_acc = ..." in student

    submitted = course / "submitted"
    folders = {name: submitted / name / "sdd-lab" for name in ("alice", "bob", "carol")}
    for folder in folders.values():
        folder.mkdir(parents=True)
        shutil.copy(released.student, folder / "lab.ipynb")
    # alice ran her lab in her assignment folder: both runs are handed in with the notebook
    sddlab.run(_config("alice", 0.0), folders["alice"] / "results", data_dir=data_dir, progress=False, device="cpu")
    alice = _read_off(answers(_table(folders["alice"] / "results", "alice", data_dir)))
    bob_table = _table(tmp_path / "bob-own", "bob", data_dir)  # what bob's own run gives (autograde trains it)
    _fill(folders["alice"] / "lab.ipynb", "alice", alice)
    _fill(folders["bob"] / "lab.ipynb", "bob", alice)  # copied answers under his own ID
    shutil.rmtree(folders["carol"])
    shutil.copytree(folders["alice"], folders["carol"])  # alice's whole folder handed in by carol

    env = {**nbgrader_environment(), "OMP_NUM_THREADS": "1", "SDDLAB_DATA": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "sdd-lab"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="sddlab") as gradebook:
        scores = {name: gradebook.find_submission("sdd-lab", name) for name in folders}
        code = {name: (s.code_score, s.max_code_score) for name, s in scores.items()}
        written = {name: (s.written_score, s.max_written_score) for name, s in scores.items()}
    bob_expected = sum(points for name, points in POINTS.items() if is_right(name, alice[name], bob_table))
    print(f"autograde scores (auto-graded points of {sum(POINTS.values())}): {code}")
    assert code["alice"] == (8.0, 8.0), "every answer read off her own curve is right"
    assert code["bob"] == (bob_expected, 8.0) and bob_expected < 4, "a neighbour's answers fail on his own run"
    assert code["carol"] == (0.0, 8.0), "a copied notebook fails every question"
    assert all(score == (0.0, 2.0) for score in written.values()), "the written answer waits for the teacher"
    assert os.path.isdir(course / "autograded" / "bob" / "sdd-lab" / "results"), "bob's runs trained while grading"


def test_the_same_parameters_give_the_same_source_so_a_re_release_is_allowed():
    from sddlab.app.lab_release import source_notebook

    same = [nbformat.writes(source_notebook({"epochs": 20})) for _ in range(2)]
    assert same[0] == same[1]
    assert nbformat.writes(source_notebook({"epochs": 30})) != same[0]
