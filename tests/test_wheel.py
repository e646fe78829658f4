"""sddlab as an installed package: built into a wheel, installed into a fresh virtual environment, and run
from an empty folder (run, notebook, copy-notebooks) with data and results in that folder."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from sddlab.app.notebooks import NOTEBOOK_DIR
from sddlab.version import __version__

REPO = Path(__file__).resolve().parents[1]
SMALL = {"model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 2, "data.subset": 200}


def call(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; its other packages (torch, ...) are reached through a .pth file."""
    root = tmp_path_factory.mktemp("wheel")
    call([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(root / "dist")], cwd=root)
    (wheel,) = (root / "dist").glob("sddlab-*.whl")
    call([sys.executable, "-m", "venv", str(root / "venv")], cwd=root)
    python = root / "venv" / "bin" / "python"
    target = Path(call([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).strip())
    (target / "shared-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    call([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=root)
    return root / "venv" / "bin"


@pytest.fixture
def empty(tmp_path) -> tuple[Path, dict[str, str]]:
    """An empty working folder and an environment without any sddlab folder variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDDLAB_") and k != "PYTHONPATH"}
    folder = tmp_path / "work"
    folder.mkdir()
    return folder, env


@pytest.mark.slow
def test_the_wheel_carries_the_notebooks_and_runs_outside_the_checkout(installed, empty):
    folder, env = empty
    where = call([str(installed / "python"), "-c", "import sddlab; print(sddlab.__file__)"], folder, env)
    assert str(REPO) not in where and "venv" in where  # the installed copy, not the checkout
    assert call([str(installed / "sddlab"), "--version"], folder, env).strip() == f"sddlab {__version__}"
    module = call([str(installed / "python"), "-m", "sddlab", "--version"], folder, env)
    assert module.strip() == f"sddlab {__version__}"

    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    call([str(installed / "sddlab"), "run", "--preset", "tiny", *sets, "--quiet"], folder, env)
    (run_dir,) = (folder / "results").iterdir()
    records = sorted((run_dir / "levels").glob("level_*.json"))
    assert [p.name for p in records] == ["level_00.json", "level_01.json", "level_02.json"]
    assert json.loads((run_dir / "meta.json").read_text())["sddlab_version"] == __version__
    assert (run_dir / "figure.html").stat().st_size > 100_000

    call([str(installed / "sddlab"), "notebook", "01_curve", "-p", "preset", "tiny", "-p", "seeds", "[0]",
          "-p", "overrides", json.dumps(SMALL)], folder, env, timeout=600)
    values = json.loads((folder / "results" / "notebooks" / "01_curve" / "values.json").read_text())
    assert values["levels"] == 3
    run_dirs = [p for p in (folder / "results").iterdir() if (p / "config.json").exists()]
    assert run_dirs == [run_dir]  # the notebook read back the same run from ./results
    assert not (folder.parent / "results").exists()  # nothing written outside the working folder

    out = call([str(installed / "sddlab"), "copy-notebooks", "mine", "--no-kernel"], folder, env)
    packaged = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    copied = sorted((folder / "mine").glob("*.ipynb"))
    assert [p.name for p in copied] == [p.name for p in packaged] and len(copied) >= 8
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(copied, packaged, strict=True))
    assert out.count("copied") == len(packaged)


def test_copy_keeps_a_notebook_the_user_edited(tmp_path):
    from sddlab.app.notebooks import copy_notebooks

    first = copy_notebooks(tmp_path)
    assert set(first.values()) == {"copied"}
    edited = tmp_path / "lab.ipynb"
    edited.write_text("{}")
    again = copy_notebooks(tmp_path)
    assert again["lab"] == "kept" and edited.read_text() == "{}"
    assert {name for name, what in again.items() if what == "same"} == set(first) - {"lab"}
    assert copy_notebooks(tmp_path, overwrite=True)["lab"] == "copied" and edited.read_text() != "{}"


def test_one_rule_for_data_and_results(tmp_path, monkeypatch):
    from sddlab import paths

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(paths.RESULTS_ENV, raising=False)
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    assert paths.results_dir() == tmp_path / "results" and paths.data_dir() == tmp_path / "data"
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "elsewhere"))
    assert paths.results_dir() == tmp_path / "elsewhere"
    assert paths.results_dir(tmp_path / "flag") == tmp_path / "flag"  # an explicit folder wins
    assert paths.data_dir() == tmp_path / "data"
