"""Interrupted runs resume to exactly the records of an uninterrupted run (wall-clock seconds aside)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sddlab.experiment
import sddlab.lockstep.group
from sddlab.epoch_end import StopRequested
from sddlab.events import LevelFinished, LevelStarted
from sddlab.store import RunStore

REPO = Path(__file__).resolve().parents[1]

# 3 epochs of 4 batches per level, so a stop can fall after epoch 1 or 2 of a level
CASES = {
    "adam-cosine": {"training.duration": "3ep"},
    "sgd-nesterov-rewind": {
        "training.duration": "3ep", "training.optimizer": "sgd", "training.lr": 0.05, "training.momentum": 0.9,
        "training.nesterov": True, "training.weight_decay": 1e-3, "training.schedule": "multistep",
        "training.milestones": ["2ep"], "retraining.rewind_point": "5it",
    },
    "finetune": {"training.duration": "3ep", "retraining.mode": "finetune", "retraining.finetune_duration": "3ep",
                 "retraining.finetune_lr": 1e-3},
    "random-global": {"training.duration": "3ep", "pruning.score": "random"},
    "scratch-gradient": {"training.duration": "3ep", "retraining.mode": "scratch", "pruning.score": "gradient"},
}


class Boom(Exception):
    pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_config, run_config):
    """Records of the uninterrupted run of a case, computed once per module."""
    done: dict[str, list] = {}

    def records(case: str) -> list:
        if case not in done:
            run_dir = run_config(small_config(CASES[case]), tmp_path_factory.mktemp(f"reference-{case}"))
            done[case] = RunStore(run_dir).records()
        return done[case]

    return records


def checkpoint_names(run_dir: Path) -> set[str]:
    return {path.name for path in (run_dir / "checkpoints").iterdir()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_stop_between_levels_from_a_listener(case, tmp_path, small_config, run_config, reference, without_seconds):
    config = small_config(CASES[case])

    def stop_after_level_one(event):
        if isinstance(event, LevelFinished) and event.record["level"] == 1:
            raise Boom

    with pytest.raises(Boom):
        run_config(config, tmp_path, listener=stop_after_level_one)
    store = RunStore(tmp_path / config.run_name())
    assert [r["level"] for r in store.records()] == [0, 1]
    assert not store.meta().get("finished")

    events = []
    run_dir = run_config(config, tmp_path, listener=events.append)
    assert run_dir == store.dir
    assert without_seconds(RunStore(run_dir).records()) == without_seconds(reference(case))
    assert [e.level for e in events if isinstance(e, LevelStarted)] == [2, 3]
    assert [(e.record["level"], e.cached) for e in events if isinstance(e, LevelFinished)] == [
        (0, True), (1, True), (2, False), (3, False)]


# (case, epoch-end calls of should_stop until it says stop): where each stops, in absolute iterations:
# adam-cosine 1: level 0 at 4, 5: level 1 at 8; sgd-nesterov-rewind (rewind to iteration 5) 1: the dense
# pretraining at 4, 2: level 0 at 8, 6: level 2 at 8; finetune 5: level 1 at 8, 9: level 3 at 4 (a finetune
# span); random-global 5: level 1 at 8; scratch-gradient 4: level 1 at 4
STOPS = [("adam-cosine", 1), ("adam-cosine", 5), ("sgd-nesterov-rewind", 1), ("sgd-nesterov-rewind", 2),
         ("sgd-nesterov-rewind", 6), ("finetune", 5), ("finetune", 9), ("random-global", 5), ("scratch-gradient", 4)]


@pytest.mark.parametrize(("case", "calls"), STOPS)
def test_stop_mid_level_and_resume(case, calls, tmp_path, small_config, run_config, reference, without_seconds):
    config = small_config(CASES[case])
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) >= calls

    with pytest.raises(StopRequested):
        run_config(config, tmp_path, should_stop=should_stop, checkpoint_every=0)
    run_dir = tmp_path / config.run_name()
    finished = len(RunStore(run_dir).records())
    assert finished < 4
    # the span that stopped left its checkpoint (the dense pretraining's may linger until the run ends)
    pretraining = config.retraining.rewind_point.count > 0 and "rewind.safetensors" not in checkpoint_names(run_dir)
    stopped = "partial-pretrain" if pretraining else f"partial-level_{finished:02d}"
    assert f"{stopped}.safetensors" in checkpoint_names(run_dir)

    run_config(config, tmp_path, checkpoint_every=0)
    assert without_seconds(RunStore(run_dir).records()) == without_seconds(reference(case))
    assert not any(name.startswith("partial-") for name in checkpoint_names(run_dir))


@pytest.fixture
def partial_saves(monkeypatch):
    """The iteration of every mid-level checkpoint the experiment writes, by span."""
    saved: list[tuple[str, int]] = []
    original = sddlab.experiment.save_partial

    def spy(store, name, model, optimizer, iteration, notes=None):
        saved.append((name, iteration))
        return original(store, name, model, optimizer, iteration, notes)

    monkeypatch.setattr(sddlab.experiment, "save_partial", spy)  # the autograd loop's checkpoints
    monkeypatch.setattr(sddlab.lockstep.group, "save_partial", spy)  # the hand-written step's (MLP family)
    return saved


def test_a_stop_request_checkpoints_at_the_epoch_boundary_first(tmp_path, small_config, run_config, partial_saves):
    config = small_config({"training.duration": "3ep"})  # 200 examples at batch 64: 4 iterations per epoch
    with pytest.raises(StopRequested, match="iteration 4"):
        run_config(config, tmp_path, should_stop=lambda: True, checkpoint_every=3600)
    assert partial_saves == [("partial-level_00", 4)]


def test_a_stop_request_in_a_span_s_last_epoch_ends_it_normally(tmp_path, small_config, run_config, partial_saves):
    config = small_config({"training.duration": "1ep", "experiment.levels": 0})
    run_dir = run_config(config, tmp_path, should_stop=lambda: True)
    assert partial_saves == [] and [r["level"] for r in RunStore(run_dir).records()] == [0]


def test_checkpoint_every_zero_checkpoints_each_epoch_but_the_last(tmp_path, small_config, run_config, partial_saves):
    run_config(small_config({"training.duration": "3ep", "experiment.levels": 0}), tmp_path, checkpoint_every=0)
    assert partial_saves == [("partial-level_00", 4), ("partial-level_00", 8)]


def test_stop_twice_in_one_level(tmp_path, small_config, run_config, reference, without_seconds):
    config = small_config(CASES["adam-cosine"])
    for _ in range(2):  # each attempt trains one more epoch of level 0, then stops
        with pytest.raises(StopRequested):
            run_config(config, tmp_path, should_stop=lambda: True, checkpoint_every=0)
    run_dir = tmp_path / config.run_name()
    assert RunStore(run_dir).records() == []
    run_config(config, tmp_path)
    assert without_seconds(RunStore(run_dir).records()) == without_seconds(reference("adam-cosine"))


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import torch
    import sddlab
    from sddlab.config import Config
    from sddlab.events import EpochEnded

    torch.set_num_threads(1)
    config = Config.from_json(Path(sys.argv[1]).read_text())
    results, data_dir, marker = sys.argv[2], sys.argv[3], Path(sys.argv[4])

    def wait_to_be_killed(event):
        # in level 2 after its second epoch: levels 0-1 written, level 2 checkpointed after epoch 1
        if isinstance(event, EpochEnded) and event.level == 2 and event.stats.epoch == 2:
            marker.write_text("ready")
            time.sleep(300)

    sddlab.run(config, results, data_dir=data_dir, device="cpu", progress=False, listener=wait_to_be_killed,
               checkpoint_every=0)
    """
)


def test_resume_after_sigkill(tmp_path, data_dir, small_config, run_config, reference, without_seconds):
    config = small_config(CASES["adam-cosine"])
    config_file, script, marker = tmp_path / "config.json", tmp_path / "killed_run.py", tmp_path / "ready"
    config_file.write_text(config.to_json())
    script.write_text(KILLED_RUN)
    results = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, str(script), str(config_file), str(results), str(data_dir), str(marker)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(f"the run ended before it could be killed: {process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("the run did not reach level 2 within 120 s")
            time.sleep(0.05)
        run_dir = results / config.run_name()
        assert (run_dir / "levels" / "level_01.json").exists()
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()

    store = RunStore(run_dir)
    assert [r["level"] for r in store.records()] == [0, 1]
    assert "partial-level_02.safetensors" in checkpoint_names(run_dir)
    assert not (run_dir / "levels" / "level_02.json").exists()

    assert run_config(config, results) == run_dir
    assert without_seconds(store.records()) == without_seconds(reference("adam-cosine"))
    assert store.meta()["finished"] is True
