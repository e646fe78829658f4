"""Damaged and untrusted run directories: every corruption is detected and named, `sddlab show` and the
index say which file and what to do, `sddlab verify` changes nothing, and `sddlab run` moves the damaged
files aside and recomputes exactly what was lost."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sddlab
from sddlab.app.cli import app
from sddlab.collect import index
from sddlab.errors import SddError
from sddlab.integrity import DamagedRun, check_run, safetensors_problem
from sddlab.store import RunStore


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # still a well-formed file: only the checksum can tell
    path.write_bytes(bytes(data))


def half_json(path: Path) -> None:
    path.write_text(path.read_text()[:40])


def edit_value(path: Path) -> None:
    record = json.loads(path.read_text())
    record["test_acc"] = 0.99  # valid JSON, a plausible value: only the checksum can tell
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


CORRUPTIONS = {
    "truncated checkpoint": ("checkpoints/level_01.safetensors", truncate),
    "altered checkpoint": ("checkpoints/level_02.safetensors", flip_byte),
    "truncated init": ("checkpoints/init.safetensors", truncate),
    "record not JSON": ("levels/level_02.json", half_json),
    "record value edited": ("levels/level_01.json", edit_value),
    "table truncated": ("levels.parquet", truncate),
    "meta not JSON": ("meta.json", half_json),
    "manifest not JSON": ("manifest.json", half_json),
    "checkpoint deleted": ("checkpoints/level_03.safetensors", lambda path: path.unlink()),
}


@pytest.fixture
def copy(tmp_path, finished_run):
    """A writable copy of the finished small run, in a results folder of its own."""
    target = tmp_path / "results" / finished_run.name
    shutil.copytree(finished_run, target)
    return target


def tree(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_each_corruption_is_detected_then_repaired_to_identical_records(case, copy, finished_run, small_config,
                                                                         run_config, without_seconds):
    name, corrupt = CORRUPTIONS[case]
    assert check_run(copy) == []
    original = (copy / name).read_bytes()
    corrupt(copy / name)
    damages = check_run(copy)
    assert [d.path for d in damages] == [name], damages
    before = tree(copy)
    result = CliRunner().invoke(app, ["verify", str(copy)])
    assert result.exit_code == 1 and f"DAMAGED  {copy / name}" in result.output
    assert tree(copy) == before  # verify changes nothing

    run_config(small_config(), copy.parent)  # moves the damaged file aside and recomputes
    assert check_run(copy) == []
    assert without_seconds(RunStore(copy).records()) == without_seconds(RunStore(finished_run).records())
    moved = list((copy / "damaged").rglob(Path(name).name))
    if (copy / name).exists() and case != "checkpoint deleted":
        assert len(moved) == 1 and moved[0].read_bytes() == before[name] != original  # kept, not deleted
    assert CliRunner().invoke(app, ["verify", str(copy)]).exit_code == 0


def test_show_and_index_name_the_damaged_record_and_what_to_do(copy, tmp_path):
    half_json(copy / "levels" / "level_02.json")
    with pytest.raises(DamagedRun) as error:
        RunStore(copy).table()
    message = str(error.value)
    assert "\n" not in message and str(copy / "levels" / "level_02.json") in message
    assert "sddlab verify" in message and f"--config {copy / 'config.json'}" in message
    with pytest.raises(DamagedRun):
        sddlab.load(copy)
    with pytest.warns(UserWarning, match="level_02.json is damaged"):
        table = index(copy.parent)
    assert table.empty  # the one run is damaged: skipped, named in the warning


def test_cli_show_and_index_print_one_line(copy, monkeypatch, capsys):
    from sddlab.app.cli import main

    half_json(copy / "levels" / "level_01.json")
    monkeypatch.setattr("sys.argv", ["sddlab", "show", str(copy)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "level_01.json is damaged" in err
    monkeypatch.setattr("sys.argv", ["sddlab", "index", str(copy.parent)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 0 and err.startswith("sddlab: warning: skipped") and err.count("\n") == 1


def test_an_old_run_without_checksums_is_accepted(copy, finished_run, without_seconds):
    (copy / "manifest.json").unlink()
    assert check_run(copy) == []
    assert without_seconds(RunStore(copy).records()) == without_seconds(RunStore(finished_run).records())
    truncate(copy / "checkpoints" / "level_01.safetensors")  # structure still checked without a checksum
    assert [d.path for d in check_run(copy)] == ["checkpoints/level_01.safetensors"]


def test_safetensors_structure_check_catches_truncation_at_every_length(copy):
    path = copy / "checkpoints" / "level_00.safetensors"
    data = path.read_bytes()
    assert safetensors_problem(path) is None
    lengths = sorted({0, 4, 8, 9, 50, len(data) // 2, len(data) - 1})
    for length in lengths:
        path.write_bytes(data[:length])
        assert safetensors_problem(path) is not None, length
    path.write_bytes(data + b"\0")
    assert safetensors_problem(path) is not None


def test_links_out_of_the_run_directory_are_refused(copy, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"level": 2, "test_acc": 1.0}))
    record = copy / "levels" / "level_02.json"
    record.unlink()
    os.symlink(outside, record)
    assert "levels/level_02.json" in {d.path for d in check_run(copy)}
    with pytest.raises(DamagedRun, match="leads out of the run directory|level_02.json is damaged"):
        RunStore(copy).records()
    checkpoint = copy / "checkpoints" / "level_01.safetensors"
    shutil.move(checkpoint, tmp_path / "elsewhere.safetensors")
    os.symlink(tmp_path / "elsewhere.safetensors", checkpoint)
    with pytest.raises(DamagedRun, match="leads out of the run directory"):
        RunStore(copy).load_level_state(1)


def test_a_manifest_name_escaping_the_directory_is_flagged_and_never_read(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["sha256"]["../../etc/passwd"] = ["0" * 64]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert [(d.path, "unsafe" in d.reason) for d in check_run(copy)] == [("../../etc/passwd", True)]


@pytest.mark.parametrize("bad", [
    '{"training": {"lr": "fast"}}', '{"noise": {"rate": [1, 2]}}', '[1, 2, 3]', '"config"', '{"model": 5}',
])
def test_a_config_json_of_wrong_types_is_a_clear_one_line_error(copy, bad):
    (copy / "config.json").write_text(bad)
    with pytest.raises(SddError) as error:
        RunStore(copy).config()
    assert "\n" not in str(error.value) and str(copy / "config.json") in str(error.value)
    assert "config.json" in {d.path for d in check_run(copy)}


def test_a_damaged_config_json_is_replaced_by_run(copy, finished_run, small_config, run_config, without_seconds):
    (copy / "config.json").write_text('{"training": {"lr": "fast"}}')
    run_config(small_config(), copy.parent)
    assert RunStore(copy).config() == small_config()
    assert without_seconds(RunStore(copy).records()) == without_seconds(RunStore(finished_run).records())
    assert check_run(copy) == []
