"""The training loop: pruned weights stay exactly zero under every optimizer, LR by absolute iteration."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sddlab import pruning
from sddlab.config import DataConfig, ModelConfig, NoiseConfig, TrainingConfig
from sddlab.data.device import prepare_data
from sddlab.metrics import evaluate
from sddlab.models import build_model, prunable_names
from sddlab.training import EpochStats, Schedule, Span, make_optimizer, train

BATCH = 50  # 200 examples: 4 iterations per epoch


@pytest.fixture(scope="module")
def data(data_dir):
    return prepare_data(DataConfig(name="digits", subset=200), NoiseConfig(type="symmetric", rate=0.2), 0, data_dir)


def span(training: TrainingConfig, schedule, start: int, end: int, stream: str = "test") -> Span:
    """A span of the 4-iteration epochs of `data`, seed 0."""
    return Span(training, schedule, start, end, per_epoch=4, seed=0, stream=stream)


def model_and_mask(seed: int = 0, keep: float = 0.5):
    model = build_model(ModelConfig(name="mlp", hidden=(16, 16)), (64,), 10, seed)
    mask = pruning.dense_mask(model, prunable_names(model, ()))
    generator = torch.Generator().manual_seed(seed)
    mask = {name: torch.rand(m.shape, generator=generator) < keep for name, m in mask.items()}
    return model, mask


OPTIMIZERS = {
    "sgd-momentum-wd": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-3},
    "sgd-nesterov": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    "adam-wd": {"optimizer": "adam", "lr": 1e-2, "weight_decay": 1e-2},
    "adamw": {"optimizer": "adamw", "lr": 1e-2, "weight_decay": 0.1},
}
STATE_KEYS = ("momentum_buffer", "exp_avg", "exp_avg_sq")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pruned_weights_and_optimizer_state_stay_exactly_zero(name, data):
    training = TrainingConfig(batch_size=BATCH, duration="3ep", **OPTIMIZERS[name])
    model, mask = model_and_mask()
    params = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    assert all((before[n][~mask[n]] != 0).any() for n in mask)  # the mask has something to zero
    optimizer = make_optimizer(model, training)
    schedule = Schedule.from_config(training, data.iterations_per_epoch(BATCH))
    train(model, mask, data, span(training, schedule, 0, 12), optimizer)
    checked = 0
    for n in mask:
        assert (params[n][~mask[n]] == 0).all(), f"{n}: a pruned weight is not exactly zero"
        assert not torch.equal(params[n][mask[n]], before[n][mask[n]]), f"{n}: kept weights did not train"
        state = optimizer.state[params[n]]
        for key in STATE_KEYS:
            if key in state and state[key] is not None:
                assert (state[key][~mask[n]] == 0).all(), f"{n}: {key} is not zero on pruned weights"
                assert (state[key][mask[n]] != 0).any()
                checked += 1
    assert checked >= len(mask)  # every prunable parameter had optimizer state to check
    assert not torch.equal(params["out.bias"], before["out.bias"])  # biases train, unmasked


def test_training_is_deterministic(data):
    training = TrainingConfig(batch_size=BATCH, **OPTIMIZERS["sgd-momentum-wd"])
    states = []
    for _ in range(2):
        model, mask = model_and_mask(seed=3)
        optimizer = make_optimizer(model, training)
        train(model, mask, data, span(training, Schedule(0.05), 0, 10), optimizer)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_constant_schedule():
    schedule = Schedule(base_lr=0.1, kind="constant", total=100)
    assert [schedule(i) for i in (0, 1, 50, 99, 100)] == [0.1] * 5


def test_multistep_schedule_drops_at_the_milestones():
    schedule = Schedule(base_lr=0.1, kind="multistep", total=30, milestones=(10, 20), gamma=0.1)
    assert schedule(0) == schedule(9) == 0.1
    assert schedule(10) == pytest.approx(0.01) and schedule(19) == pytest.approx(0.01)
    assert schedule(20) == pytest.approx(0.001) and schedule(29) == pytest.approx(0.001)


def test_cosine_schedule_reaches_zero_at_the_end():
    schedule = Schedule(base_lr=0.2, kind="cosine", total=100)
    assert schedule(0) == 0.2
    assert schedule(50) == pytest.approx(0.1)
    assert schedule(25) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert schedule(100) == pytest.approx(0.0, abs=1e-15)
    assert 0 < schedule(99) < 1e-3
    values = [schedule(i) for i in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_linear_warmup_then_schedule():
    schedule = Schedule(base_lr=0.2, kind="multistep", total=100, milestones=(50,), gamma=0.1, warmup=10)
    assert schedule(0) == pytest.approx(0.02)
    assert schedule(4) == pytest.approx(0.1)
    assert schedule(9) == pytest.approx(0.2)
    assert schedule(10) == 0.2 and schedule(49) == 0.2
    assert schedule(50) == pytest.approx(0.02)


def test_schedule_from_config_converts_epochs_to_iterations():
    training = TrainingConfig(lr=0.1, duration="10ep", schedule="multistep", milestones=("2ep", "15it"), warmup="1ep")
    schedule = Schedule.from_config(training, iterations_per_epoch=7)
    assert schedule.total == 70 and schedule.milestones == (14, 15) and schedule.warmup == 7


def test_train_sets_the_lr_by_absolute_iteration_and_reports_absolute_epochs(data):
    training = TrainingConfig(batch_size=BATCH, optimizer="sgd", lr=0.1)
    model, mask = model_and_mask()
    optimizer = make_optimizer(model, training)
    asked: list[int] = []

    def schedule(iteration: int) -> float:
        asked.append(iteration)
        return 0.01 * (iteration + 1)

    epochs: list[EpochStats] = []
    train(model, mask, data, span(training, schedule, 5, 13), optimizer, on_epoch=epochs.append, track=True)
    assert asked == list(range(5, 13))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.13)
    # 4 iterations per epoch: [5, 8) ends epoch 2, [8, 12) epoch 3, [12, 13) the start of epoch 4
    assert [(s.epoch, s.iteration, s.last_epoch, s.finished) for s in epochs] == [
        (2, 8, 4, False), (3, 12, 4, False), (4, 13, 4, True)]
    assert epochs[0].lr == pytest.approx(0.08) and math.isfinite(epochs[0].train_loss)
    assert 0.0 <= epochs[1].train_acc <= 1.0


def test_untracked_epochs_report_no_train_stats(data):
    training = TrainingConfig(batch_size=BATCH, optimizer="sgd", lr=0.1)
    model, mask = model_and_mask()
    epochs: list[EpochStats] = []
    train(model, mask, data, span(training, Schedule(0.1), 0, 8), make_optimizer(model, training),
          on_epoch=epochs.append)
    assert len(epochs) == 2 and epochs[0].train_loss is None and epochs[0].train_acc is None


def test_a_span_resumed_at_an_epoch_boundary_continues_exactly(data):
    training = TrainingConfig(batch_size=BATCH, optimizer="sgd", lr=0.1, momentum=0.9)
    straight, _ = model_and_mask(seed=5)
    model, mask = model_and_mask(seed=5)
    optimizer = make_optimizer(straight, training)
    train(straight, mask, data, span(training, Schedule(0.1), 0, 12), optimizer)
    first = make_optimizer(model, training)
    whole = span(training, Schedule(0.1), 0, 12)
    train(model, mask, data, span(training, Schedule(0.1), 0, 8), first)
    train(model, mask, data, whole.resumed_at(8), first)  # same optimizer state, the rest of the span
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), model.state_dict().values(),
                                                   strict=True))


def test_span_counts_the_epochs_it_touches():
    training = TrainingConfig()
    assert span(training, Schedule(0.1), 0, 12).epochs == 3
    assert span(training, Schedule(0.1), 5, 13).epochs == 3  # epochs 2, 3 and the start of 4
    assert span(training, Schedule(0.1), 5, 13).last_epoch == 4


def test_evaluate_matches_a_direct_computation(data):
    model, _ = model_and_mask()
    model.train()
    result = evaluate(model, data.x_test, data.y_test, transform=data.spec.eval_transform)
    with torch.no_grad():
        logits = model(data.x_test)
    assert result.loss == pytest.approx(float(F.cross_entropy(logits.double(), data.y_test)), rel=1e-5)
    assert result.acc == pytest.approx(float((logits.argmax(1) == data.y_test).double().mean()))
    assert torch.equal(result.predictions, logits.argmax(1))
    assert model.training  # the mode is restored


def test_evaluate_with_a_state_and_a_mask_leaves_the_model_untouched(data):
    model, mask = model_and_mask()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    shifted = {name: t + 0.01 for name, t in model.named_parameters()}
    result = evaluate(model, data.x_test, data.y_test, state=shifted, mask=mask, chunk=7)
    assert all(torch.equal(before[name], t) for name, t in model.state_dict().items())
    reference, _ = model_and_mask()
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.copy_(shifted[name] * mask[name] if name in mask else shifted[name])
    expected = evaluate(reference, data.x_test, data.y_test)
    assert result.loss == pytest.approx(expected.loss, rel=1e-6) and result.acc == expected.acc
