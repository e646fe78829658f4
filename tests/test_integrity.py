"""Damaged and untrusted run directories: every corruption is detected and named, `sddlab show` and the
index say which file and what to do, `sddlab verify` changes nothing, and `sddlab run` moves the damaged
files aside and recomputes exactly what was lost."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tracemalloc
from pathlib import Path

import pytest

import sddlab
from sddlab.collect import DamagedRunWarning, find_runs, index
from sddlab.errors import SddError
from sddlab.integrity import RECORD, DamagedRun, check_run, safetensors_problem
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


def with_checksum(path: Path, payload: bytes) -> None:
    """Replace the file and record its new checksum in the manifest: only its content can tell."""
    run_dir = next(p for p in path.parents if (p / "manifest.json").exists())
    path.write_bytes(payload)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["sha256"][path.relative_to(run_dir).as_posix()] = [hashlib.sha256(payload).hexdigest()]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def non_finite(path: Path) -> None:
    with_checksum(path, path.read_text().replace('"test_acc": 0.', '"test_acc": NaN, "x": 0.').encode())


def overflowing(path: Path) -> None:
    with_checksum(path, path.read_text().replace('"test_acc": 0.', '"test_acc": 1e999, "x": 0.').encode())


def link_to_itself(path: Path) -> None:
    path.unlink()
    os.symlink(path.name, path)


def folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside.json").write_text("{}")


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def sparse(size: int):
    def grow(path: Path) -> None:  # a file of `size` bytes that takes no room on disk
        with open(path, "r+b") as handle:
            handle.truncate(size)

    return grow


def claims_header(length: int):
    def claim(path: Path) -> None:  # a header that says it is `length` bytes, in a sparse file that large
        with open(path, "r+b") as handle:
            handle.write(length.to_bytes(8, "little"))
            handle.truncate(8 + length)

    return claim


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
    "middle record deleted": ("levels/level_01.json", lambda path: path.unlink()),
    "last record deleted": ("levels/level_03.json", lambda path: path.unlink()),
    "init deleted": ("checkpoints/init.safetensors", lambda path: path.unlink()),
    "predictions deleted": ("levels/level_02.predictions.safetensors", lambda path: path.unlink()),
    "record holds NaN, checksum matching": ("levels/level_02.json", non_finite),
    "record holds 1e999, checksum matching": ("levels/level_01.json", overflowing),
    "record a link to itself": ("levels/level_02.json", link_to_itself),
    "record a folder": ("levels/level_03.json", folder),
    "record a FIFO": ("levels/level_01.json", fifo),
    "config a FIFO": ("config.json", fifo),
    "record of 2 GB (sparse)": ("levels/level_02.json", sparse(2 << 30)),
    "checkpoint header claiming 1.5 GB (sparse)": ("checkpoints/level_02.safetensors", claims_header(3 << 29)),
}
MISSING = {case for case in CORRUPTIONS if case.endswith("deleted")}


@pytest.fixture
def copy(tmp_path, finished_run):
    """A writable copy of the finished small run, in a results folder of its own."""
    target = tmp_path / "results" / finished_run.name
    shutil.copytree(finished_run, target)
    return target


def tree(run_dir: Path) -> dict[str, str]:
    """Every regular file's sha256 (the size alone of a sparse file of gigabytes)."""
    found = {}
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size > 1 << 26:
            found[str(path.relative_to(run_dir))] = f"{path.stat().st_size} bytes"
        elif path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                found[str(path.relative_to(run_dir))] = hashlib.file_digest(handle, "sha256").hexdigest()
    return found


def unreadable_table(case: str) -> bool:
    """The cases `show` refuses (a damaged record or manifest) rather than shows with a warning."""
    name = CORRUPTIONS[case][0]
    return case not in MISSING and (name == "manifest.json" or RECORD.fullmatch(name) is not None)


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_each_corruption_is_detected_then_repaired_to_identical_records(case, copy, finished_run, data_dir, cli,
                                                                         without_seconds):
    name, corrupt = CORRUPTIONS[case]
    assert check_run(copy) == []
    original = tree(copy)[name]
    corrupt(copy / name)
    damages = check_run(copy)
    assert [(d.path, d.missing) for d in damages] == [(name, case in MISSING)], damages
    before = tree(copy)
    code, out, err = cli("verify", str(copy))
    state = "MISSING " if case in MISSING else "DAMAGED "
    assert code == 1 and f"{state} {copy / name}: " in out and err == "", out
    assert out.splitlines()[-1].startswith("1 of 1 run directories damaged")
    code, out, err = cli("show", str(copy))
    if unreadable_table(case):
        assert (code, out) == (2, "") and err.startswith(f"sddlab: error: {copy / name} is damaged: ")
    elif case == "altered checkpoint":  # readers check a checkpoint's structure and size, not its bytes
        assert (code, err) == (0, "") and len(printed_rows(out)) == 4
    else:
        assert code == 0 and err.startswith(f"sddlab: warning: {copy} would not pass `sddlab verify`: {name} ")
        assert len(printed_rows(out)) == len(RunStore(copy).records())
    assert err.count("\n") == (case != "altered checkpoint"), err
    assert tree(copy) == before  # verify and show change nothing

    # what the one-line error advises, with the command line's defaults: moves it aside and recomputes
    code, out, err = cli("run", "--config", str(finished_run / "config.json"), "--results", str(copy.parent),
                         "--data", str(data_dir), "--device", "cpu", "--no-figure")
    assert code == 0 and "Traceback" not in err and out.splitlines()[-1] == f"run directory: {copy}", err
    assert check_run(copy) == []
    assert without_seconds(RunStore(copy).records()) == without_seconds(RunStore(finished_run).records())
    moved = [Path(root) / n for root, dirs, files in os.walk(copy / "damaged") for n in dirs + files
             if n == Path(name).name]
    if name in before:  # a damaged regular file is kept, not deleted
        assert len(moved) == 1 and tree(moved[0].parent)[Path(name).name] == before[name] != original
    elif case not in MISSING:  # a link, folder or FIFO is moved aside as it is
        assert len(moved) == 1 and not moved[0].is_file()
    assert cli("verify", str(copy))[:2] == (0, f"ok       {copy}\n")


def printed_rows(out: str) -> list[str]:
    """The rows of a level table as `sddlab show` prints it."""
    return [line for line in out.splitlines()[1:] if line.split() and line.split()[0].isdigit()]


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


def test_a_run_without_a_manifest_is_readable_but_unverifiable(copy, finished_run, without_seconds, cli):
    (copy / "manifest.json").unlink()
    assert check_run(copy) == []  # nothing damaged: an old run is read, and a run resumes it
    assert without_seconds(RunStore(copy).records()) == without_seconds(RunStore(finished_run).records())
    code, out, err = cli("verify", str(copy))
    assert code == 1 and out.splitlines() == [
        f"UNVERIFIABLE  {copy}: no manifest.json, so no checksum could be checked (written before checksums, or "
        "the manifest was removed)", "0 of 1 run directories damaged, 1 unverifiable; `sddlab run --config "
        "RUN_DIR/config.json --results PARENT` moves damaged files into RUN_DIR/damaged/ and recomputes them"]
    code, out, err = cli("show", str(copy))
    assert code == 0 and len(printed_rows(out)) == 4
    assert err == f"sddlab: warning: {copy} has no manifest.json: its files cannot be verified (written before " \
                  "checksums, or the manifest was removed)\n"
    code, out, err = cli("index", str(copy.parent))
    assert code == 0 and len(out.splitlines()) == 5 and err.startswith(f"sddlab: warning: {copy} has no manifest")
    with pytest.warns(DamagedRunWarning, match="has no manifest.json"):
        assert len(sddlab.load(copy)) == 4
    truncate(copy / "checkpoints" / "level_01.safetensors")  # structure still checked without a checksum
    assert [d.path for d in check_run(copy)] == ["checkpoints/level_01.safetensors"]


def test_an_edited_config_never_labels_the_results(copy, cli):
    """config.json edited after the run: verify names it, show warns, index skips the run, load refuses."""
    config = json.loads((copy / "config.json").read_text())
    config["noise"]["rate"] = 0.3
    with_checksum(copy / "config.json", json.dumps(config).encode())  # even with a checksum to match
    reason = "does not match the directory name"
    assert [d.path for d in check_run(copy)] == ["config.json"] and reason in check_run(copy)[0].reason
    code, out, _ = cli("verify", str(copy))
    assert code == 1 and out.startswith(f"DAMAGED  {copy / 'config.json'}: its hash ")
    code, out, err = cli("show", str(copy))
    assert code == 0 and len(printed_rows(out)) == 4 and err.count("\n") == 1
    assert err.startswith(f"sddlab: warning: {copy} would not pass `sddlab verify`: config.json is damaged (its hash")
    code, out, err = cli("index", str(copy.parent))
    assert (code, out.strip()) == (0, "") and err.count("\n") == 1
    assert err.startswith(f"sddlab: warning: skipped {copy / 'config.json'} is damaged")
    with pytest.raises(DamagedRun, match="its results are not labelled with it"):
        sddlab.load(copy)


@pytest.mark.parametrize("missing", ["levels/level_01.json", "levels/level_03.json", "examples.safetensors"])
def test_readers_warn_in_one_line_about_missing_files_and_show_the_rest(copy, cli, missing):
    (copy / missing).unlink()
    code, out, err = cli("index", str(copy.parent))
    rows = 3 if missing.startswith("levels/") else 4
    assert code == 0 and len(out.splitlines()) == rows + 1 and err.count("\n") == 1
    assert err.startswith(f"sddlab: warning: {copy} would not pass `sddlab verify`: {missing} is missing (")
    with pytest.warns(DamagedRunWarning, match=f"{missing} is missing"):
        assert len(sddlab.load(copy)) == rows


@pytest.mark.parametrize("case", ["record of 2 GB (sparse)", "checkpoint header claiming 1.5 GB (sparse)"])
def test_reading_costs_what_the_file_holds_not_what_it_claims(copy, cli, case):
    """Each command on a file claiming gigabytes allocates a few MB at most (Python's own allocations)."""
    name, corrupt = CORRUPTIONS[case]
    corrupt(copy / name)
    tracemalloc.start()
    try:
        outcomes = [cli(*args)[0] for args in (["verify", str(copy)], ["show", str(copy)], ["index", str(copy.parent)])]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcomes == [1, 2 if name.endswith(".json") else 0, 0]
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB"


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


def test_files_a_repair_moved_aside_are_never_taken_for_a_run(copy, finished_run, data_dir, cli):
    (copy / "config.json").write_text('{"training": {"lr": "fast"}}')
    assert cli("run", "--config", finished_run / "config.json", "--results", copy.parent, "--data", data_dir,
               "--device", "cpu", "--no-figure")[0] == 0
    assert list((copy / "damaged").rglob("config.json"))  # kept aside
    assert find_runs(copy.parent) == [copy]
    code, out, err = cli("verify", copy.parent)
    assert (code, out, err) == (0, f"ok       {copy}\n", "")
