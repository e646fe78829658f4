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
import sddlab.lockstep.group
import sddlab.runs
import sddlab.runtime
from sddlab.divergence import SeedsDiverged
from sddlab.epoch_end import StopRequested
from sddlab.errors import ConfigError
from sddlab.events import EpochEnded, LevelFinished, LevelStarted, RunFinished
from sddlab.runs import run_lockstep, run_seeds, with_seeds
from sddlab.store import RunStore

SEEDS = [0, 3]


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
        separate = run_config(seed_config, tmp_path / "separate", step="autograd")
        assert group_dir.name == separate.name
        _assert_records_close(group_dir, separate)
        assert RunStore(group_dir).meta()["finished"] is True
    # the seeds really differ from one another (own init, noise draw and order)
    first, second = (RunStore(d).records()[0] for d in group)
    assert first["learning_distance"] != second["learning_distance"]


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_float64_single_run_hand_written_step_equals_autograd(case, float64, small_config, run_config, tmp_path):
    """A single run of the MLP family takes the hand-written step by default; its records equal autograd's."""
    config = small_config({**CASES[case], "experiment.levels": 2})
    assert sddlab.runs.hand_written_step(config, sddlab.runtime.Runtime(device="cpu"))
    fast = run_config(config, tmp_path / "fast")
    slow = run_config(config, tmp_path / "autograd", step="autograd")
    _assert_records_close(fast, slow)


def test_the_hand_written_step_is_really_taken_by_a_single_run(small_config, run_config, tmp_path, monkeypatch):
    """`step='auto'` trains through the stacked loop (K = 1); `step='autograd'` never touches it."""
    calls = []
    original = sddlab.lockstep.group.train_stacked
    monkeypatch.setattr(sddlab.lockstep.group, "train_stacked", lambda *a, **k: calls.append(1) or original(*a, **k))
    run_config(small_config(), tmp_path / "fast")
    assert len(calls) == small_config().experiment.levels + 1
    run_config(small_config(), tmp_path / "autograd", step="autograd")
    assert len(calls) == small_config().experiment.levels + 1
    with pytest.raises(sddlab.ConfigError, match="step"):
        run_config(small_config(), tmp_path / "bad", step="fast")


def test_float32_group_matches_separate_runs_closely(small_config, run_config, data_dir, tmp_path):
    config = small_config()
    group = run_lockstep(with_seeds(config, SEEDS), tmp_path / "group", data_dir=data_dir, device="cpu",
                         progress=False)
    for seed_config, group_dir in zip(with_seeds(config, SEEDS), group, strict=True):
        _assert_records_close(group_dir, run_config(seed_config, tmp_path / "separate", step="autograd"),
                              tolerance=1e-4)


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


def test_a_seed_that_diverges_is_recorded_and_the_other_seed_goes_on(small_config, run_config, data_dir, tmp_path,
                                                                      monkeypatch, capsys):
    """Seed 3's weights blow up (NaN) after epoch 1 of level 2: the real epoch-end check records it with its
    reason and drops it from the stack; seed 0 trains on, restacked, to the same records as a run of its own."""
    config = small_config({"experiment.levels": 3})
    configs, (kept, lost) = with_seeds(config, SEEDS), SEEDS
    position = [c.experiment.seed for c in sorted(configs, key=lambda c: c.run_name())].index(lost)  # stack order
    original, level_of, events = sddlab.lockstep.group.largest_per_seed, {}, []

    def listener(seed, event):
        events.append((seed, event))
        if isinstance(event, LevelStarted):
            level_of[seed] = event.level

    def blow_up(stacks):
        if level_of.get(lost) == 2 and len(stacks[0]) == 2:  # once: while seed 3 is still in the stack
            with torch.no_grad():
                stacks[0][position].fill_(math.nan)
        return original(stacks)

    monkeypatch.setattr(sddlab.lockstep.group, "largest_per_seed", blow_up)
    with pytest.raises(SeedsDiverged) as error:
        run_lockstep(configs, tmp_path / "group", data_dir=data_dir, device="cpu", progress=True, listener=listener)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("seed 3 diverged (the other seeds went on): seed 3: level 2 diverged at epoch 1: "
                              "weights are not finite (nan); lower training.lr")
    lost_dir, kept_dir = (tmp_path / "group" / c.run_name() for c in configs[::-1])
    records = RunStore(lost_dir).records()
    assert [r["level"] for r in records] == [0, 1, 2]
    assert "diverged" not in records[1] and records[2]["diverged"].startswith("level 2 diverged at epoch 1: ")
    assert message.endswith(f"seed 3: {records[2]['diverged']}")  # the reason a single run would record
    assert "test_acc" not in records[2] and not RunStore(lost_dir).meta().get("finished")
    assert not list((lost_dir / "checkpoints").glob("partial-*"))
    assert [e.level for s, e in events if s == lost and isinstance(e, LevelStarted)] == [0, 1, 2]  # no level 3
    assert [e.record for s, e in events if s == lost and isinstance(e, LevelFinished)] == records
    assert RunStore(kept_dir).meta()["finished"] is True
    _assert_records_close(kept_dir, run_config(configs[0], tmp_path / "separate"), tolerance=1e-5)
    bar = capsys.readouterr().err.split("\r")[-1]  # the bar follows seed 0 to the end and names seed 3
    assert "diverged=seed 3" in bar and "100%" in bar

    monkeypatch.setattr(sddlab.lockstep.group, "largest_per_seed", original)
    again = []
    with pytest.raises(SeedsDiverged, match="^seed 3 diverged: seed 3: level 2 diverged at epoch 1"):
        run_lockstep(configs, tmp_path / "group", data_dir=data_dir, device="cpu", progress=False,
                     listener=lambda seed, event: again.append((seed, event)))
    assert not any(isinstance(e, EpochEnded) for _, e in again)  # nothing trained on the rerun
    assert {s for s, e in again if isinstance(e, RunFinished)} == {kept}


def test_seeds_run_one_after_another_all_run_when_one_diverges(small_config, data_dir, tmp_path):
    config = small_config({"training.lr": 1e8, "experiment.levels": 1})
    with pytest.raises(SeedsDiverged, match=r"^seeds 0, 3 diverged: seed 0: level 0 diverged at epoch 1: .*; seed 3: "):
        run_seeds(config, SEEDS, tmp_path, lockstep=False, data_dir=data_dir, device="cpu", progress=False)
    for seeded in with_seeds(config, SEEDS):  # the second seed ran although the first diverged
        (record,) = RunStore(tmp_path / seeded.run_name()).records()
        assert record["diverged"].startswith("level 0 diverged at epoch 1")
