"""Seeds in lockstep: a stacked group's run directories equal K separate `sddlab.run` results.

Float64 (models and data): every record field except wall-clock seconds agrees to 1e-6 for every retraining
mode and criterion, layerwise scope, a rewind point t > 0 and LeNet-300-100. A group stopped mid-level and
resumed (by the group, or by an ordinary run) ends with the same records. Bad groups fail before any work.
"""

from __future__ import annotations

import math

import pytest
import torch

import sddlab
import sddlab.data.device
from sddlab.errors import ConfigError
from sddlab.events import EpochEnded, LevelFinished, RunFinished
from sddlab.experiment import StopRequested
from sddlab.lockstep import run_lockstep, run_seeds
from sddlab.runs import with_seeds
from sddlab.store import RunStore

SEEDS = [0, 3]


@pytest.fixture
def float64(monkeypatch):
    """Models built and data held in float64 for the duration of a test."""
    original = sddlab.data.device._load_raw

    def load64(name, data_dir):
        raw = original(name, data_dir)
        return type(raw)(raw.x_train.double(), raw.y_train, raw.x_test.double(), raw.y_test, raw.num_classes)

    monkeypatch.setattr(sddlab.data.device, "_load_raw", load64)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _assert_records_close(group_dir, separate_dir, tolerance=1e-6):
    group, separate = RunStore(group_dir).records(), RunStore(separate_dir).records()
    assert len(group) == len(separate) > 0
    for mine, theirs in zip(group, separate, strict=True):
        assert set(mine) == set(theirs)
        for key, value in theirs.items():
            if key == "seconds":
                continue
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(mine[key]), key
            else:
                assert mine[key] == pytest.approx(value, abs=tolerance, rel=tolerance), (key, mine["level"])


CASES = {
    "rewind-magnitude": {},
    "finetune": {"retraining.mode": "finetune", "retraining.finetune_lr": 1e-3, "retraining.finetune_duration": "1ep"},
    "lr-rewind": {"retraining.mode": "lr-rewind"},
    "scratch": {"retraining.mode": "scratch"},
    "gradient-layerwise": {"pruning.score": "gradient", "pruning.scope": "layerwise"},
    "random-sgd": {"pruning.score": "random", "training.optimizer": "sgd", "training.lr": 0.05,
                   "training.momentum": 0.9, "training.weight_decay": 1e-4, "training.schedule": "multistep",
                   "training.milestones": ["1ep"]},
    "adamw-finetune": {"training.optimizer": "adamw", "training.weight_decay": 1e-2, "retraining.mode": "finetune",
                       "retraining.finetune_lr": 1e-3, "retraining.finetune_duration": "2ep"},
    "rewind-point-lenet": {"model.name": "lenet-300-100", "retraining.rewind_point": "3it", "training.lr": 1e-3},
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_float64_lockstep_group_equals_separate_runs(case, float64, small_config, run_config, data_dir, tmp_path):
    config = small_config({**CASES[case], "experiment.levels": 2})
    group = run_lockstep(with_seeds(config, SEEDS), tmp_path / "group", data_dir=data_dir, device="cpu",
                         progress=False)
    assert {t.dtype for t in RunStore(group[0]).load_checkpoint("init").values()} == {torch.float64}
    for seed_config, group_dir in zip(with_seeds(config, SEEDS), group, strict=True):
        separate = run_config(seed_config, tmp_path / "separate")
        assert group_dir.name == separate.name
        _assert_records_close(group_dir, separate)
        assert RunStore(group_dir).meta()["finished"] is True
    # the seeds really differ from one another (own init, noise draw and order)
    first, second = (RunStore(d).records()[0] for d in group)
    assert first["learning_distance"] != second["learning_distance"]


def test_float32_group_matches_separate_runs_closely(small_config, run_config, data_dir, tmp_path):
    config = small_config()
    group = run_lockstep(with_seeds(config, SEEDS), tmp_path / "group", data_dir=data_dir, device="cpu",
                         progress=False)
    for seed_config, group_dir in zip(with_seeds(config, SEEDS), group, strict=True):
        _assert_records_close(group_dir, run_config(seed_config, tmp_path / "separate"), tolerance=1e-4)


def _stop_after(epochs: int):
    seen = {"epochs": 0}

    def listener(seed, event):
        if isinstance(event, EpochEnded) and event.level == 1 and seed == SEEDS[0]:
            seen["epochs"] += 1

    return listener, (lambda: seen["epochs"] >= epochs)


@pytest.mark.parametrize("resumer", ["group", "separate"])
def test_stopped_group_resumes_to_the_same_records(resumer, small_config, run_config, data_dir, tmp_path):
    config = small_config({"training.duration": "3ep", "experiment.levels": 2})
    configs = with_seeds(config, SEEDS)
    listener, should_stop = _stop_after(1)
    with pytest.raises(StopRequested):
        run_lockstep(configs, tmp_path / "stopped", data_dir=data_dir, device="cpu", progress=False,
                     listener=listener, should_stop=should_stop, checkpoint_every=0.0)
    stopped = [tmp_path / "stopped" / c.run_name() for c in configs]
    assert all(RunStore(d).has_level(0) and not RunStore(d).has_level(1) for d in stopped)
    assert all(RunStore(d).has_checkpoint("partial-level_01") for d in stopped)
    if resumer == "group":
        run_lockstep(configs, tmp_path / "stopped", data_dir=data_dir, device="cpu", progress=False)
    else:
        for c in configs:
            run_config(c, tmp_path / "stopped")
    for c, d in zip(configs, stopped, strict=True):
        assert not RunStore(d).has_checkpoint("partial-level_01")
        _assert_records_close(d, run_config(c, tmp_path / "uninterrupted"), tolerance=1e-5)


def test_run_seeds_emits_per_seed_events_and_falls_back_for_conv_nets(small_config, data_dir, tmp_path):
    events: list[tuple[int, object]] = []
    config = small_config({"experiment.levels": 1})
    dirs = run_seeds(config, [1, 2], tmp_path, data_dir=data_dir, device="cpu", progress=False,
                     listener=lambda seed, event: events.append((seed, event)), epoch_metrics=True)
    for seed, run_dir in zip([1, 2], dirs, strict=True):
        finished = [e.record for s, e in events if s == seed and isinstance(e, LevelFinished)]
        assert finished == RunStore(run_dir).records()
        epochs = [e.stats for s, e in events if s == seed and isinstance(e, EpochEnded)]
        assert len(epochs) == 4 and all(0.0 <= stats.test_acc <= 1.0 for stats in epochs)
        assert [e.run_dir for s, e in events if s == seed and isinstance(e, RunFinished)] == [run_dir]
    again: list[int] = []
    assert run_seeds(config, [1, 2], tmp_path, data_dir=data_dir, device="cpu", progress=False,
                     listener=lambda seed, event: again.append(seed)) == dirs  # read back, nothing trained
    assert sorted(set(again)) == [1, 2]


def test_bad_groups_fail_before_any_directory(small_config, data_dir, tmp_path):
    config = small_config()
    cases = [
        ([config, config.with_overrides({"noise.rate": 0.2, "experiment.seed": 1})], "differ in experiment.seed"),
        ([config, config], "distinct seeds"),
        (with_seeds(small_config({"model.name": "resnet18"}), [0, 1]), "model.name"),
    ]
    for configs, message in cases:
        with pytest.raises(ConfigError, match=message):
            run_lockstep(configs, tmp_path / "results", data_dir=data_dir, device="cpu", progress=False)
    assert not (tmp_path / "results").exists()


def test_hand_written_gradients_equal_autograd_through_forward():
    from sddlab.lockstep.stacked import StackedMLP
    from sddlab.models.mlp import MLP

    torch.manual_seed(0)
    models = [MLP(64, (12, 7), 5).double() for _ in range(3)]
    x, y = torch.randn(3, 16, 1, 8, 8, dtype=torch.float64), torch.randint(0, 5, (3, 16))
    by_hand = StackedMLP(models)
    losses, _ = by_hand.loss_and_gradients(x, y)
    reference = StackedMLP(models)
    logits = reference(x)
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(3, -1)
    expected.mean(1).sum().backward()
    assert torch.allclose(losses, expected.mean(1).detach(), atol=1e-12)
    for mine, theirs in zip(by_hand.stack, reference.stack, strict=True):
        assert torch.allclose(mine.grad, theirs.grad, atol=1e-12)


def test_bf16_group_trains_through_autograd_close_to_separate_runs(small_config, run_config, data_dir, tmp_path):
    config = small_config({"training.precision": "bf16", "training.duration": "6ep"})
    group = run_lockstep(with_seeds(config, SEEDS), tmp_path / "group", data_dir=data_dir, device="cpu",
                         progress=False)
    for seed_config, group_dir in zip(with_seeds(config, SEEDS), group, strict=True):
        mine = RunStore(group_dir).records()
        theirs = RunStore(run_config(seed_config, tmp_path / "separate")).records()
        assert [r["iterations"] for r in mine] == [r["iterations"] for r in theirs]
        # bf16 rounding differs between batched and plain matmuls: close, not equal
        assert max(abs(a["test_acc"] - b["test_acc"]) for a, b in zip(mine, theirs, strict=True)) < 0.1
    full = run_lockstep(with_seeds(config.with_overrides({"training.precision": "fp32"}), SEEDS), tmp_path / "fp32",
                        data_dir=data_dir, device="cpu", progress=False)
    assert RunStore(full[0]).records()[0]["test_loss"] != RunStore(group[0]).records()[0]["test_loss"]  # bf16 ran
