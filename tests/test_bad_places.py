"""Results folders that cannot be made or written, and devices that are not there, through the command line
with its defaults: one line naming the option, the value and the OS's reason, exit code 2, nothing created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from test_paths_and_limits import SMALL, one_error, snapshot

from sddlab.paths import check_writable
from sddlab.runtime import resolve_device

LONG = "x" * 300  # one path component past every file system's 255-byte limit
TRAINING = {  # each command that trains, the shortest way to ask it for a tiny preset's runs
    "run": ["run", *SMALL],
    "sweep": ["sweep", *SMALL, "--grid", "noise.rate=0.1,0.2", "--seeds", "0"],
    "diagram": ["diagram", "--preset", "tiny", "--values", "0.1,0.2", "--seeds", "0"],
    "study": ["study", "--preset", "tiny", "--seeds", "0"],
}


def bad_place(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A results folder that cannot be made, and (part of) the reason the error must give."""
    if kind in ("proc", "sys") and not os.path.isdir(f"/{kind}/self" if kind == "proc" else "/sys/kernel"):
        pytest.skip(f"no /{kind} here")
    if kind == "link":
        (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
        return tmp_path / "dangling", "is a link to"
    if kind == "under-file":
        (tmp_path / "file").write_text("")
        return tmp_path / "file" / "results", "Not a directory"
    return {"proc": (Path("/proc/sddlab-test"), "No such file or directory"),
            "sys": (Path("/sys/sddlab-test"), "/sys/sddlab-test"),
            "long": (tmp_path / LONG / "results", "File name too long")}[kind]


@pytest.mark.parametrize("kind", ["proc", "sys", "long", "link", "under-file"])
@pytest.mark.parametrize("command", list(TRAINING))
@pytest.mark.parametrize("quiet", [False, True])
def test_a_results_folder_that_cannot_be_made_is_one_line_naming_the_os_reason(tmp_path, cli, command, kind, quiet):
    results, reason = bad_place(tmp_path, kind)
    before = snapshot(tmp_path)
    quiet_flag = ["--quiet"] if quiet and command != "study" else []  # study has no progress bar to hide
    code, _, err = cli(*TRAINING[command], "--results", results, "--device", "cpu", *quiet_flag)
    one_error(code, err, "--results=")
    assert "a folder this user can create and write" in err and reason in err, err
    assert snapshot(tmp_path) == before  # nothing created, not even the folders on the way


@pytest.mark.parametrize("device", ["bogus", "meta", "cpu:0", "cuda:01", "cuda:x", "", "CPU"])
@pytest.mark.parametrize("command", [*TRAINING, "analyse"])
def test_a_device_that_is_not_one_of_the_allowed_is_one_line(tmp_path, cli, finished_run, command, device):
    args = ["analyse", "distance", finished_run] if command == "analyse" else [*TRAINING[command]]
    before = snapshot(tmp_path)
    code, _, err = cli(*args, "--device", device, "--results", tmp_path / "results")
    one_error(code, err, f"device={device!r} is not allowed: auto, cpu, cuda or cuda:N")
    assert snapshot(tmp_path) == before


def test_cuda_without_a_gpu_keeps_its_message(monkeypatch, cli, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0"):
        code, _, err = cli(*TRAINING["run"], "--device", device, "--results", tmp_path / "results")
        one_error(code, err, f"device={device!r} is not allowed: auto or cpu (no CUDA device is available)")
    assert not (tmp_path / "results").exists()


def test_a_gpu_index_past_the_gpus_there_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [resolve_device(device) for device in ("cuda", "cuda:0", "cuda:1", "cpu")] == ["cuda", "cuda:0",
                                                                                         "cuda:1", "cpu"]
    with pytest.raises(ValueError, match=r"device='cuda:2' is not allowed: auto, cpu, cuda or cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_report_out_and_index_output_name_the_os_reason_not_a_full_disk(tmp_path, cli, finished_run):
    results, reason = bad_place(tmp_path, "long")
    code, _, err = cli("report", finished_run, "--out", results, "--no-png")
    one_error(code, err, "--out=")
    assert reason in err and "disk full" not in err, err
    for output in (results / "table.csv", tmp_path / f"{LONG}.csv"):  # a folder on the way, or the file, too long
        code, _, err = cli("index", finished_run.parent, "--output", output)
        one_error(code, err, "--output=")
        assert reason in err and "disk full" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_check_writable_probes_by_making_the_folders_and_leaves_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b" / "results")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    check_writable(tmp_path / "kept")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and list((tmp_path / "kept").iterdir()) == []


@pytest.mark.parametrize("kind", ["long", "link", "under-file"])
def test_notebook_output_and_copy_notebooks_folder_name_the_os_reason(tmp_path, cli, kind):
    place, reason = bad_place(tmp_path, kind)
    before = snapshot(tmp_path)
    code, _, err = cli("copy-notebooks", place, "--no-kernel")
    one_error(code, err, "folder=")
    assert reason in err, err
    code, _, err = cli("notebook", "01_curve", "--output", place)
    one_error(code, err, "--output=")
    assert reason in err, err
    assert snapshot(tmp_path) == before


def test_a_bad_results_folder_from_the_variable_is_named_as_the_variable(tmp_path, cli, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SDDLAB_RESULTS", str(tmp_path / "file"))
    for command in ("run", "sweep"):
        code, _, err = cli(*TRAINING[command], "--device", "cpu", "--quiet")
        one_error(code, err, "SDDLAB_RESULTS=")
        assert "is not a folder" in err and "--results" not in err
