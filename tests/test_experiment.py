"""Whole small experiments: checkpoints, rewinding, the four retraining modes, records, caching, the index."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

import sddlab
from sddlab.app.tables import TABLE_COLUMNS
from sddlab.events import EpochEnded, LevelFinished, LevelStarted, RunFinished, RunStarted
from sddlab.experiment import Experiment
from sddlab.io import load_tensors
from sddlab.preparation import prepare
from sddlab.store import RunStore

LEVELS = 3  # levels 0..3 in every small config


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def level_checkpoint(run_dir, level: int):
    tensors = load_tensors(run_dir / "checkpoints" / f"level_{level:02d}.safetensors")
    assert all(key.startswith(("mask/", "weights/")) for key in tensors)
    mask = {k.removeprefix("mask/"): v.bool() for k, v in tensors.items() if k.startswith("mask/")}
    weights = {k.removeprefix("weights/"): v for k, v in tensors.items() if k.startswith("weights/")}
    return mask, weights


def init_weights(run_dir):
    return load_tensors(run_dir / "checkpoints" / "init.safetensors")


def level_calls(calls):
    """The spied training calls of the levels, by level number (the pretraining span left out)."""
    return {int(call["stream"].removeprefix("level_")): call for call in calls if call["stream"].startswith("level_")}


def test_level_checkpoints_hold_masks_and_exactly_zero_pruned_weights(finished_run):
    store = RunStore(finished_run)
    prunable = store.meta()["prunable"]
    assert prunable == ["hidden.0.weight", "hidden.1.weight", "out.weight"]
    previous = None
    for level in range(LEVELS + 1):
        mask, weights = level_checkpoint(finished_run, level)
        assert sorted(mask) == sorted(prunable)
        assert set(weights) == set(init_weights(finished_run))  # the whole state, biases included
        for name, keep in mask.items():
            assert (weights[name][~keep] == 0).all()
            assert (weights[name][keep] != 0).all()
            if previous is not None:
                assert not (keep & ~previous[name]).any()
        record = store.records()[level]
        kept = sum(int(keep.sum()) for keep in mask.values())
        total = sum(keep.numel() for keep in mask.values())
        assert record["level"] == level and record["remaining"] == kept
        assert record["sparsity"] == pytest.approx(1 - kept / total)
        assert abs(kept - 0.8**level * total) <= level
        previous = mask


def test_learning_distance_recomputed_from_checkpoints(finished_run):
    init = init_weights(finished_run)
    for record in RunStore(finished_run).records():
        mask, weights = level_checkpoint(finished_run, record["level"])
        squares = sum(float(((init[n].double() - weights[n].double() * mask[n]) ** 2).sum()) for n in mask)
        assert record["learning_distance"] == pytest.approx(math.sqrt(squares), rel=1e-9)
        # rewinding to iteration 0: the start is the init, measured on the kept weights only
        kept_only = sum(float((((init[n] - weights[n]) * mask[n]).double() ** 2).sum()) for n in mask)
        assert record["learning_distance_rewind"] == pytest.approx(math.sqrt(kept_only), rel=1e-6)
        assert record["learning_distance_start"] == record["learning_distance_rewind"]
    # pruning moves the network away from its init: the pruned init weights count in D
    records = RunStore(finished_run).records()
    assert records[-1]["learning_distance"] > records[-1]["learning_distance_rewind"]


def test_level_table_csv_columns_and_values(finished_run):
    table = pd.read_csv(finished_run / "levels.csv")
    assert TABLE_COLUMNS == ["level", "sparsity", "remaining", "test_acc", "test_loss", "train_acc_noisy",
                             "train_acc_clean", "memorized", "learning_distance", "seconds"]
    assert set(TABLE_COLUMNS) <= set(table.columns)
    assert table["level"].tolist() == list(range(LEVELS + 1))
    records = pd.DataFrame(RunStore(finished_run).records())
    pd.testing.assert_frame_equal(table[TABLE_COLUMNS], records[TABLE_COLUMNS], check_exact=False, rtol=1e-12)
    parquet = pd.read_parquet(finished_run / "levels.parquet")
    pd.testing.assert_frame_equal(parquet[TABLE_COLUMNS], records[TABLE_COLUMNS])
    for column in ("test_acc", "train_acc_noisy", "train_acc_clean", "memorized"):
        assert table[column].between(0, 1).all()
    assert (table["iterations"] == 8).all()  # 2 epochs of 4 batches of 64 out of 200


def test_meta_and_config_are_stored(finished_run, small_config):
    store = RunStore(finished_run)
    assert store.config() == small_config()
    assert finished_run.name == small_config().run_name()
    meta = store.meta()
    assert meta["finished"] is True
    assert meta["noise"]["noisy_examples"] == 80 and meta["noise"]["train_examples"] == 200
    assert meta["iterations_per_epoch"] == 4 and meta["rewind_iteration"] == 0
    assert meta["prunable_weights"] == 64 * 16 + 16 * 16 + 16 * 10
    assert not any(path.name.startswith("partial") for path in (finished_run / "checkpoints").iterdir())


def test_rewind_to_init_starts_every_level_from_the_init(tmp_path, small_config, run_config, spy_train):
    run_dir = run_config(small_config(), tmp_path)
    init = init_weights(run_dir)
    calls = level_calls(spy_train)
    assert sorted(calls) == list(range(LEVELS + 1))
    assert not (run_dir / "checkpoints" / "rewind.safetensors").exists()
    for level, call in calls.items():
        assert tensors_equal(call["entry"], init), f"level {level} did not start from the init"
        assert (call["start"], call["end"]) == (0, 8)
        mask, _ = level_checkpoint(run_dir, level)
        assert tensors_equal(call["mask"], mask)


def test_rewind_to_a_later_iteration(tmp_path, small_config, run_config, spy_train):
    run_dir = run_config(small_config({"retraining.rewind_point": "3it"}), tmp_path)
    init = init_weights(run_dir)
    rewind = load_tensors(run_dir / "checkpoints" / "rewind.safetensors")
    assert rewind.keys() == init.keys()
    assert not tensors_equal(rewind, init)
    assert [(c["start"], c["end"]) for c in spy_train if c["stream"] == "pretrain"] == [(0, 3)]
    assert tensors_equal(spy_train[0]["entry"], init)  # the dense pretraining starts from the init
    assert RunStore(run_dir).meta()["rewind_iteration"] == 3
    for level, call in level_calls(spy_train).items():
        assert tensors_equal(call["entry"], rewind), f"level {level} did not start from the rewind point"
        assert (call["start"], call["end"]) == (3, 8)
    for record in RunStore(run_dir).records():
        mask, weights = level_checkpoint(run_dir, record["level"])
        distance = math.sqrt(sum(float(((init[n] - weights[n] * mask[n]).double() ** 2).sum()) for n in mask))
        to_rewind = math.sqrt(sum(float((((rewind[n] - weights[n]) * mask[n]).double() ** 2).sum()) for n in mask))
        assert record["learning_distance"] == pytest.approx(distance, rel=1e-6)  # D is measured from the init
        assert record["learning_distance_rewind"] == pytest.approx(to_rewind, rel=1e-6)
        assert record["learning_distance_start"] == record["learning_distance_rewind"]
        assert record["iterations"] == 5


def test_start_state_of_each_mode(tmp_path, small_config, data_dir):
    """Experiment._start_state directly: rewind -> the rewind weights, finetune -> the previous level."""
    init = {"w": torch.zeros(2)}
    rewind = {"w": torch.ones(2)}
    previous = {"w": torch.full((2,), 2.0)}
    for mode, expected in [("rewind", rewind), ("finetune", previous), ("lr-rewind", previous)]:
        config = small_config({"retraining.mode": mode})
        store = RunStore.open_or_create(tmp_path, config, {})
        experiment = Experiment(prepare(config, data_dir), store)
        assert experiment._start_state(0, init, rewind, None) is rewind
        assert experiment._start_state(2, init, rewind, previous) is expected


def test_finetune_mode(tmp_path, small_config, run_config, spy_train):
    config = small_config({"retraining.mode": "finetune", "retraining.finetune_lr": 1e-3,
                           "retraining.finetune_duration": "1ep"})
    run_dir = run_config(config, tmp_path)
    calls = level_calls(spy_train)
    init = init_weights(run_dir)
    assert tensors_equal(calls[0]["entry"], init)
    assert (calls[0]["start"], calls[0]["end"]) == (0, 8)
    assert calls[0]["schedule"](4) == pytest.approx(config.training.lr * 0.5)  # level 0: the cosine schedule
    for level in range(1, LEVELS + 1):
        _, previous = level_checkpoint(run_dir, level - 1)
        call = calls[level]
        assert tensors_equal(call["entry"], previous), f"level {level} did not continue the previous level"
        assert (call["start"], call["end"]) == (0, 4)
        assert call["training"].lr == 1e-3 and call["training"].schedule == "constant"
        assert [call["schedule"](i) for i in (0, 3, 4)] == [1e-3] * 3
    iterations = [r["iterations"] for r in RunStore(run_dir).records()]
    assert iterations == [8, 4, 4, 4]


def test_finetune_defaults_to_the_training_lr_and_duration(tmp_path, small_config, run_config, spy_train):
    config = small_config({"retraining.mode": "finetune", "experiment.levels": 1})
    run_config(config, tmp_path)
    call = level_calls(spy_train)[1]
    assert (call["start"], call["end"]) == (0, 8)
    assert call["schedule"](7) == config.training.lr  # constant, not the cosine of the main schedule


def test_lr_rewind_mode(tmp_path, small_config, run_config, spy_train):
    config = small_config({"retraining.mode": "lr-rewind"})
    run_dir = run_config(config, tmp_path)
    calls = level_calls(spy_train)
    assert tensors_equal(calls[0]["entry"], init_weights(run_dir))
    for level in range(1, LEVELS + 1):
        _, previous = level_checkpoint(run_dir, level - 1)
        call = calls[level]
        assert tensors_equal(call["entry"], previous)
        assert (call["start"], call["end"]) == (0, 8)
        assert call["schedule"](0) == config.training.lr  # the main (cosine) schedule, replayed from 0
        assert call["schedule"](4) == pytest.approx(config.training.lr / 2)


def test_scratch_mode_draws_a_fresh_init_each_level(tmp_path, small_config, run_config, spy_train):
    run_dir = run_config(small_config({"retraining.mode": "scratch"}), tmp_path)
    init = init_weights(run_dir)
    calls = level_calls(spy_train)
    assert tensors_equal(calls[0]["entry"], init)
    entries = [calls[level]["entry"] for level in range(1, LEVELS + 1)]
    for level, entry in enumerate(entries, start=1):
        assert entry.keys() == init.keys()
        assert not torch.equal(entry["hidden.0.weight"], init["hidden.0.weight"]), f"level {level} reused the init"
        assert (calls[level]["start"], calls[level]["end"]) == (0, 8)
    assert not torch.equal(entries[0]["hidden.0.weight"], entries[1]["hidden.0.weight"])
    for record in RunStore(run_dir).records()[1:]:
        assert record["learning_distance_start"] != record["learning_distance_rewind"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"retraining.mode": "rewind"},
        {"retraining.mode": "finetune", "retraining.finetune_lr": 1e-3, "retraining.finetune_duration": "1ep"},
        {"retraining.mode": "lr-rewind"},
        {"retraining.mode": "scratch"},
        {"pruning.score": "gradient"},
        {"pruning.score": "random", "pruning.scope": "layerwise"},
        {"training.optimizer": "sgd", "training.momentum": 0.9, "training.weight_decay": 1e-3,
         "training.schedule": "multistep", "training.milestones": ["1ep"], "training.warmup": "2it"},
    ],
    ids=["rewind", "finetune", "lr-rewind", "scratch", "gradient", "random-layerwise", "sgd-multistep"],
)
def test_every_mode_and_score_runs_end_to_end(tmp_path, small_config, run_config, overrides):
    run_dir = run_config(small_config(overrides), tmp_path)
    records = RunStore(run_dir).records()
    assert [r["level"] for r in records] == list(range(LEVELS + 1))
    for record in records:
        assert math.isfinite(record["test_loss"]) and 0 <= record["test_acc"] <= 1
        assert abs(record["sparsity"] - (1 - 0.8 ** record["level"])) < 0.02
        mask, weights = level_checkpoint(run_dir, record["level"])
        assert all((weights[n][~mask[n]] == 0).all() for n in mask)


def test_a_finished_run_is_returned_without_training(tmp_path, small_config, run_config, monkeypatch):
    import sddlab.experiment

    config = small_config()
    run_dir = run_config(config, tmp_path)
    records = RunStore(run_dir).records()
    stamps = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run trained again")

    monkeypatch.setattr(sddlab.experiment, "train", no_training)
    events = []
    assert run_config(config, tmp_path, listener=events.append) == run_dir
    assert RunStore(run_dir).records() == records
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()} == stamps
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    finished = [e for e in events if isinstance(e, LevelFinished)]
    assert [e.record for e in finished] == records and all(e.cached for e in finished)
    assert not any(isinstance(e, (LevelStarted, EpochEnded)) for e in events)
    assert [p.name for p in tmp_path.iterdir()] == [run_dir.name]


def test_events_of_a_fresh_run(tmp_path, small_config, run_config):
    events = []
    run_dir = run_config(small_config({"experiment.levels": 1}), tmp_path, listener=events.append)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert events[0].run_dir == run_dir and events[0].levels == 2 and events[0].finished == 0
    assert events[0].epochs_per_level == [2, 2]
    assert [e.level for e in events if isinstance(e, LevelStarted)] == [0, 1]
    epochs = [(e.level, e.stats.epoch) for e in events if isinstance(e, EpochEnded)]
    assert epochs == [(0, 1), (0, 2), (1, 1), (1, 2)]
    finished = [e for e in events if isinstance(e, LevelFinished)]
    assert not any(e.cached for e in finished)
    assert [e.record for e in finished] == RunStore(run_dir).records()


def test_index_has_a_row_per_run_and_level(tmp_path, small_config, run_config):
    low = run_config(small_config({"noise.rate": 0.2, "experiment.levels": 1}), tmp_path)
    high = run_config(small_config({"noise.rate": 0.4, "experiment.levels": 2}), tmp_path)
    table = sddlab.index(tmp_path)
    assert len(table) == 2 + 3
    assert set(zip(table["run"], table["level"], strict=True)) == {
        (low.name, 0), (low.name, 1), (high.name, 0), (high.name, 1), (high.name, 2)}
    assert table.groupby("run")["noise.rate"].first().to_dict() == {low.name: 0.2, high.name: 0.4}
    for column in ("noise.type", "model.name", "pruning.score", "retraining.mode", "test_acc", "run_dir"):
        assert column in table.columns
    assert json.loads(table["model.hidden"].iloc[0]) == [16, 16]
    single = sddlab.load(low)
    assert len(single) == 2 and (single["noise.rate"] == 0.2).all()
    assert sddlab.index([low, high]).shape == table.shape
