"""`sddlab app` and `sddlab lab release` through the command line: bad input is one line before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sddlab.errors import ConfigError, SddError


def _sddlab(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sddlab", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_bad_input_through_the_command_line_is_one_line(tmp_path):
    done = _sddlab("lab", "release", "course", "-p", "epoch", "5", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("sddlab: error: parameter='epoch' is not allowed: one of student, preset, ")
    assert ", epochs, levels, seed, " in lines[0], "the lab's own parameter names"
    assert list(tmp_path.iterdir()) == [], "no course folder"


@pytest.mark.parametrize(("args", "message"), [
    (["app", "--no-browser", "-p", "nope", "1"], "parameter='nope' is not allowed: one of preset,"),
    (["app", "--no-browser", "-p", "interactive", "false"], "parameter='interactive' is not allowed"),
    (["app", "--no-browser", "--port", "70000"], "port=70000 is not allowed: a port number from 1 to 65535"),
    (["lab", "release", "course", "-p", "epochs"], "notebook parameters='-p epochs' are not allowed: -p KEY VALUE"),
])
def test_bad_input_is_named_before_any_work(tmp_path, monkeypatch, args, message):
    from typer.testing import CliRunner

    from sddlab.app.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, SddError) and message in str(result.exception)
    assert "\n" not in str(result.exception)
    assert list(tmp_path.iterdir()) == [], "no course folder, no results folder"


def test_the_app_notebook_takes_the_class_parameters():
    from sddlab.app.voila_app import NOTEBOOK_ONLY, app_notebook

    notebook = app_notebook({"preset": "tiny", "noise_rate": 0.2})
    injected = [cell for cell in notebook.cells if "injected-parameters" in cell.metadata.get("tags", [])]
    assert len(injected) == 1 and 'preset = "tiny"' in injected[0].source and "noise_rate = 0.2" in injected[0].source
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    assert tags.index(["injected-parameters"]) == tags.index(["parameters"]) + 1, "right after the parameters"
    assert any(NOTEBOOK_ONLY in cell_tags for cell_tags in tags), "the text about code is tagged for the app to drop"
    with pytest.raises(ConfigError, match="interactive"):
        app_notebook({"interactive": False})
