"""Crashes anywhere, a full disk, two writers: real processes (forked, so no 10 s import each) killed
with SIGKILL inside checkpoint, record, table and manifest writes; every resume ends with records
identical to an uninterrupted run, and no crash leaves a file that fails verification."""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

import sddlab
import sddlab.events
import sddlab.io
from sddlab.integrity import check_run
from sddlab.store import RunStore

KILL_POINTS = 24  # at least 20, spread evenly over every write of a run


def forked(body: Callable[[], None], stderr: Path | None = None) -> int:
    """Run `body` in a forked child; returns its wait status (exit code 0 when it returned)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            if stderr is not None:
                os.dup2(os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
                sys.stderr = os.fdopen(2, "w", buffering=1)  # pytest may have replaced sys.stderr
            body()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def records(run_dir: Path, strip: Callable) -> list:
    return strip(RunStore(run_dir).records())


@pytest.fixture(scope="module")
def crash_config(small_config):
    return small_config({"training.duration": "2ep", "data.subset": 120})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, crash_config, data_dir):
    """An uninterrupted run, and the path of every atomic write it made, in order."""
    written: list[Path] = []
    original = sddlab.io._maybe_killed
    sddlab.io._maybe_killed = written.append
    try:
        run_dir = sddlab.run(crash_config, tmp_path_factory.mktemp("reference"), data_dir=data_dir, device="cpu",
                             progress=False, checkpoint_every=0)
    finally:
        sddlab.io._maybe_killed = original
    return run_dir, written


def test_sigkill_at_any_write_then_resume_gives_identical_records(tmp_path, crash_config, data_dir, reference,
                                                                    without_seconds, monkeypatch):
    run_dir, written = reference
    expected = records(run_dir, without_seconds)
    kind = [path.suffix if path.name != "manifest.json" else "manifest" for path in written]
    points = {1 + round(i * (len(written) - 1) / (KILL_POINTS - 1)) for i in range(KILL_POINTS)}
    points |= {kind.index(k, len(kind) // 2) + 1 for k in set(kind) - {kind[n - 1] for n in points}}
    points = sorted(points)  # spread over the run's life, each kind of write at least once
    assert len(points) >= 20
    assert {".safetensors", ".json", ".csv", ".parquet", "manifest"} <= {kind[n - 1] for n in points}
    survived = 0
    began = time.monotonic()
    for n in points:
        results = tmp_path / f"kill-{n}"

        def killed_run(n: int = n, results: Path = results) -> None:
            os.environ[sddlab.io.KILL_AT_WRITE] = str(n)
            sddlab.io._writes = 0
            sddlab.run(crash_config, results, data_dir=data_dir, device="cpu", progress=False, checkpoint_every=0)

        status = forked(killed_run)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"write {n} ({written[n - 1]})"
        crashed = results / crash_config.run_name()
        if crashed.exists():  # a crash leaves old or new versions only: nothing fails verification
            assert check_run(crashed) == [], f"killed in write {n} ({written[n - 1].name})"
        monkeypatch.delenv(sddlab.io.KILL_AT_WRITE, raising=False)
        assert forked(lambda results=results: sddlab.run(crash_config, results, data_dir=data_dir, device="cpu",
                                                         progress=False, checkpoint_every=0)) == 0
        resumed = results / crash_config.run_name()
        assert records(resumed, without_seconds) == expected, f"killed in write {n} ({written[n - 1].name})"
        assert check_run(resumed) == [] and not (resumed / "damaged").exists()
        survived += 1
    print(f"\nkill points survived: {survived} of {len(points)} (of {len(written)} writes), "
          f"{time.monotonic() - began:.1f} s")
    assert survived == len(points)


def test_a_full_disk_ends_with_one_line_and_the_run_resumes(tmp_path, crash_config, data_dir, reference,
                                                            without_seconds):
    run_dir, _ = reference
    sizes = {path.name: path.stat().st_size for path in run_dir.rglob("*") if path.is_file()}
    limit = max(size for name, size in sizes.items() if name.endswith(".safetensors")) + 64
    assert sizes["levels.parquet"] > limit  # the tables outgrow the limit partway through the run
    results, stderr = tmp_path / "results", tmp_path / "stderr.txt"

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        from sddlab.app.cli import main

        sys.argv = ["sddlab", "run", "--config", str(tmp_path / "config.json"),
                    "--results", str(results), "--data", str(data_dir), "--device", "cpu", "--quiet", "--no-figure"]
        main()

    (tmp_path / "config.json").write_text(crash_config.to_json())
    status = forked(limited, stderr)
    lines = stderr.read_text().strip().splitlines()
    assert os.WEXITSTATUS(status) == 2, stderr.read_text()
    assert len(lines) == 1 and "File too large" in lines[0] and "previous state is intact" in lines[0]
    stopped = results / crash_config.run_name()
    done = records(stopped, without_seconds)
    expected = records(run_dir, without_seconds)
    assert 0 < len(done) < len(expected) and done == expected[: len(done)]
    assert check_run(stopped) == []
    sddlab.run(crash_config, results, data_dir=data_dir, device="cpu", progress=False, checkpoint_every=0)
    assert records(stopped, without_seconds) == expected


def test_two_writers_one_waits_and_nothing_is_corrupted(tmp_path, crash_config, data_dir, reference,
                                                        without_seconds):
    run_dir, _ = reference
    results, marker = tmp_path / "results", tmp_path / "first-is-training"

    def first() -> None:
        def slow(event) -> None:
            if isinstance(event, sddlab.events.EpochEnded) and event.level == 1 and not marker.exists():
                marker.write_text("training level 1")
                time.sleep(3)  # holds the lock while the second process arrives

        sddlab.run(crash_config, results, data_dir=data_dir, device="cpu", progress=False, listener=slow)

    def second() -> None:
        while not marker.exists():
            time.sleep(0.02)
        sddlab.run(crash_config, results, data_dir=data_dir, device="cpu", progress=False)

    pid = os.fork()
    if pid == 0:
        os._exit(forked(first) >> 8)
    second_status = forked(second, tmp_path / "second.txt")
    _, first_status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(first_status) == 0 and os.WEXITSTATUS(second_status) == 0
    busy = (tmp_path / "second.txt").read_text()
    assert "is busy (another process is writing it); waiting" in busy
    stored = results / crash_config.run_name()
    assert records(stored, without_seconds) == records(run_dir, without_seconds)
    assert check_run(stored) == []
