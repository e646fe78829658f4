"""Measurements as the paper's code makes them (augmented stream, eval mode) beside today's, and precision
as part of a run's identity, with the bf16 autocast path run on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sddlab
from sddlab.data import DATASETS
from sddlab.data.device import DeviceData
from sddlab.metrics import measure
from sddlab.runtime import Runtime


def cifar_like(n: int = 48) -> DeviceData:
    """A CIFAR-10-shaped data set in memory (random pixels), 25 % of its labels noisy."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=generator, dtype=torch.uint8)
    clean = torch.arange(n) % 10
    noisy = torch.zeros(n, dtype=torch.bool)
    noisy[::4] = True
    labels = torch.where(noisy, (clean + 1) % 10, clean)
    return DeviceData(DATASETS["cifar10"], x, labels, clean, noisy, noisy.clone(), x[:16], clean[:16], 10, 0.25,
                      0.25)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))


def test_augmented_measurement_is_the_training_stream_in_eval_mode():
    data, model = cifar_like(), small_net()
    model.train()
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    augmented = measure(model, data, augment=torch.Generator().manual_seed(7))
    # independently: the same augmentation draw, the model in eval mode, accuracy against the noisy labels
    inputs = data.spec.train_transform(data.x_train, torch.Generator().manual_seed(7))
    model.eval()
    with torch.no_grad():
        predicted = model(inputs).argmax(1)
    model.train()
    assert augmented["train_acc_noisy"] == pytest.approx(float((predicted == data.y_train).double().mean()))
    assert augmented["train_acc_clean"] == pytest.approx(float((predicted == data.y_train_clean).double().mean()))
    noisy = data.noisy
    assert augmented["memorized"] == pytest.approx(float((predicted[noisy] == data.y_train[noisy]).double().mean()))
    assert model.training and all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())
    clean = measure(model, data)
    assert clean["test_acc"] == augmented["test_acc"]  # the test set is never augmented
    assert clean["train_loss"] != augmented["train_loss"]  # crops and flips change what is measured


def test_measure_on_is_neutral_in_the_hash_and_a_no_op_without_augmentation(tmp_path, small_config, run_config):
    clean = small_config()
    augmented = clean.with_overrides({"experiment.measure_on": "augmented"})
    assert clean.run_name() == sddlab.get_preset("tiny").with_overrides(
        {"model.hidden": [16, 16], "training.duration": "2ep", "experiment.levels": 3, "data.subset": 200}).run_name()
    assert augmented.run_name() != clean.run_name()
    # digits has no augmentation: both ways measure the same images, so the records agree exactly
    columns = ["level", "remaining", "test_acc", "train_acc_noisy", "train_acc_clean", "train_loss", "memorized",
               "learning_distance"]
    first = sddlab.load(run_config(clean, tmp_path))[columns]
    second = sddlab.load(run_config(augmented, tmp_path))[columns]
    assert first.to_dict("records") == second.to_dict("records")


def test_gradient_scores_use_an_augmented_batch_when_measured_as_the_paper(data_dir, small_config, monkeypatch):
    """The gradient batch goes through the training transform (seeded per level) instead of the eval one."""
    from sddlab.experiment import Experiment
    from sddlab.preparation import prepare

    config = small_config({"pruning.score": "gradient", "experiment.measure_on": "augmented"})
    setup = prepare(config, data_dir)
    seen: list[str] = []
    spec = setup.data.spec
    spied = {"train_transform": lambda x, g: seen.append("train") or x,
             "eval_transform": lambda x: seen.append("eval") or x}
    monkeypatch.setattr(setup.data, "spec", type(spec)(**{**spec.__dict__, **spied}))
    experiment = Experiment(setup, store=None)
    loss = experiment._gradient_batch_loss(1)(setup.model)
    assert seen == ["train"] and loss.ndim == 0
    clean = Experiment(prepare(small_config({"pruning.score": "gradient"}), data_dir), store=None)
    assert clean._augmentation("prune-gradient-augment", 1) is None


# -- precision ----------------------------------------------------------------------------------------
def test_precision_is_part_of_the_run_identity(small_config):
    fp32 = small_config()
    bf16 = fp32.with_overrides({"training.precision": "bf16"})
    assert fp32.training.precision == "fp32" and "precision" not in fp32.hash_payload()["training"]
    assert bf16.run_name() != fp32.run_name()  # a bf16 run never resumes an fp32 run directory


def test_bf16_autocast_runs_on_the_cpu():
    layer = nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with Runtime(amp=True).autocast():
        assert layer(x).dtype == torch.bfloat16
    with Runtime(amp=False).autocast():
        assert layer(x).dtype == torch.float32


def test_a_bf16_run_trains_in_bf16_on_the_cpu(tmp_path, small_config, run_config, monkeypatch):
    """The run's precision reaches the training loop: logits are bf16 under autocast, results differ."""
    dtypes: set[torch.dtype] = set()
    original = F.cross_entropy

    def spy(logits, *args, **kwargs):
        dtypes.add(logits.dtype)
        return original(logits, *args, **kwargs)

    config = small_config({"experiment.levels": 1})
    fp32_dir = run_config(config, tmp_path)
    fp32 = sddlab.load(fp32_dir)
    monkeypatch.setattr("sddlab.training.F.cross_entropy", spy)
    bf16_config = config.with_overrides({"training.precision": "bf16"})
    bf16_dir = run_config(bf16_config, tmp_path)
    bf16 = sddlab.load(bf16_dir)
    assert torch.bfloat16 in dtypes
    assert bf16_dir.name == bf16_config.run_name() != fp32_dir.name
    assert not np.allclose(fp32["train_loss"], bf16["train_loss"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(bf16["train_loss"], fp32["train_loss"], rtol=0.05)  # the same training, rounded


def test_the_amp_flag_sets_the_configs_precision(tmp_path, monkeypatch, capsys):
    """`sddlab run --amp` writes a bf16 run into the bf16 config's own directory, beside the fp32 one."""
    from sddlab.app.cli import main

    args = ["run", "--preset", "tiny", "--set", "model.hidden=8,8", "--set", "training.duration=1ep", "--set",
            "experiment.levels=1", "--set", "data.subset=100", "--results", str(tmp_path), "--device", "cpu",
            "--quiet", "--no-figure"]
    for flag in ("--amp", "--no-amp"):
        monkeypatch.setattr("sys.argv", ["sddlab", *args, flag])
        with pytest.raises(SystemExit) as info:
            main()
        assert info.value.code in (0, None), capsys.readouterr().err
    base = sddlab.get_preset("tiny").with_overrides({"model.hidden": [8, 8], "training.duration": "1ep",
                                                     "experiment.levels": 1, "data.subset": 100})
    names = {path.name for path in tmp_path.iterdir() if path.is_dir()}
    assert names == {base.run_name(), base.with_overrides({"training.precision": "bf16"}).run_name()}
