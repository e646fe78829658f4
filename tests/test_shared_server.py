"""A shared server: one SDDLAB_RESULTS line for everyone (`~/sddlab-results`) keeps each user's runs apart."""

from __future__ import annotations

import sddlab
from sddlab.app.notebooks import jupyter_environment
from sddlab.store import RunStore


def test_two_users_runs_stay_in_their_own_folders(tmp_path, monkeypatch, small_config, data_dir, without_seconds):
    course = tmp_path / "course"  # the folder both users start from (a shared course folder)
    course.mkdir()
    monkeypatch.chdir(course)
    monkeypatch.setenv("SDDLAB_RESULTS", "~/sddlab-results")  # as a JupyterHub config sets it for every user
    runs = {}
    for user in ("alice", "bob"):
        home = tmp_path / "home" / user
        home.mkdir(parents=True)
        monkeypatch.setenv("HOME", str(home))  # the user's own session
        runs[user] = sddlab.run(small_config(), data_dir=data_dir, progress=False, device="cpu")
        assert runs[user].parent == home / "sddlab-results"
        assert jupyter_environment()["SDDLAB_RESULTS"] == "~/sddlab-results", "notebooks and the app inherit it"
        assert sddlab.index()["run"].nunique() == 1, "each user's index lists only their own run"
    assert not (course / "results").exists(), "nothing lands in the shared folder"
    alice, bob = (RunStore(runs[user]) for user in ("alice", "bob"))
    assert alice.dir.name == bob.dir.name, "the same config has the same name in each folder"
    assert without_seconds(alice.records()) == without_seconds(bob.records()), "each trained its own, same result"
