"""Every preset validates, says what it reproduces, and a paper preset without its data fails in one line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

import sddlab
from sddlab.config import Config
from sddlab.data import DATASETS
from sddlab.presets import list_presets

PAPER_FIGURES = {
    "fig1-lenet-mnist": ("mnist", "lenet-300-100"),
    "fig1-cifar10": ("cifar10", "resnet18"),
    "fig1-cifar100": ("cifar100", "resnet18"),
    "vgg16-cifar10": ("cifar10", "vgg16"),
    "vgg16-cifar100": ("cifar100", "vgg16"),
    "resnet101-tiny-imagenet": ("tiny-imagenet", "resnet101"),
}


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_preset_validates_and_describes_itself(name):
    config = list_presets()[name]
    assert isinstance(config, Config) and config.name == name
    assert len(config.description) > 20
    assert Config.from_json(config.to_json()) == config


def test_paper_presets_cover_the_papers_experiments():
    presets = list_presets()
    for name, (dataset, model) in PAPER_FIGURES.items():
        assert presets[name].data.name == dataset and presets[name].model.name == model
    figure_tagged = [name for name, config in presets.items() if re.match(r"Fig\. \d", config.description)]
    assert {"fig1-lenet-mnist", "fig1-cifar10", "fig1-cifar100"} <= set(figure_tagged)
    assert {presets[f"fig2-cifar100-{s}"].pruning.score for s in ("magnitude", "gradient", "random")} == {
        "magnitude", "gradient", "random"}
    assert {presets[f"fig3-cifar100-{m}"].retraining.mode for m in ("rewind", "finetune", "lr-rewind", "scratch")} \
        == {"rewind", "finetune", "lr-rewind", "scratch"}
    assert {presets[f"fig4-cifar10-noise{r}"].noise.rate for r in (20, 40, 80)} == {0.2, 0.4, 0.8}
    assert presets["resnet101-tiny-imagenet"].pruning.strategy == "oneshot"
    assert presets["clean-cifar10"].noise.rate == 0.0
    # Table B: the CIFAR schedule
    cifar = presets["fig1-cifar10"].training
    assert (cifar.lr, cifar.momentum, cifar.weight_decay, str(cifar.duration), tuple(map(str, cifar.milestones))) == (
        0.1, 0.9, 1e-4, "160ep", ("80ep", "120ep"))
    assert str(presets["fig1-cifar10"].retraining.rewind_point) == "1000it"
    assert str(presets["vgg16-cifar10"].retraining.rewind_point) == "2000it"
    assert all(name + "-cpu" in presets for name in ("fig1-lenet-mnist", "fig1-cifar10"))


def test_missing_paper_data_offline_is_one_line_and_leaves_nothing(tmp_path):
    env_script = (
        "import os, sys; os.environ['SDDLAB_NO_DOWNLOAD'] = '1'; from sddlab.app.cli import main; "
        f"sys.argv = ['sddlab', 'run', '--preset', 'fig1-cifar10', '--data', r'{tmp_path / 'data'}', "
        f"'--results', r'{tmp_path / 'results'}', '--quiet']; main()"
    )
    done = subprocess.run([sys.executable, "-c", env_script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cifar10" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_oneshot_pruning_reaches_the_target_sparsity_from_the_dense_model(tmp_path):
    config = sddlab.get_preset("tiny").with_overrides(
        {"model.hidden": [16, 16], "data.subset": 200, "training.duration": "1ep", "experiment.levels": 3,
         "pruning.strategy": "oneshot"})
    table = sddlab.load(sddlab.run(config, tmp_path, progress=False, device="cpu"))
    total = table["remaining"].iloc[0]
    for level, remaining in zip(table["level"], table["remaining"], strict=True):
        assert abs(remaining - total * 0.8**level) <= 1


# -- Table B of the paper, typed here from the paper (not read from the presets) ---------------------------
# (lr, momentum, weight decay, batch, epochs, milestones, gamma, warm-up, rewind point, levels, fraction,
#  normalisation (mean, std), augmentation)
MNIST_NORM, IMAGENET_NORM = ((0.1307,), (0.3081,)), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TABLE_B = {
    "lenet-mnist": (0.1, 0.0, 0.0, 128, "200ep", (), None, "0it", "0it", 24, 0.2, MNIST_NORM, False),
    "resnet18-cifar10": (0.1, 0.9, 1e-4, 128, "160ep", ("80ep", "120ep"), 0.1, "0it", "1000it", 28, 0.2,
                         IMAGENET_NORM, True),
    "resnet18-cifar100": (0.1, 0.9, 1e-4, 128, "160ep", ("80ep", "120ep"), 0.1, "0it", "1000it", 25, 0.2,
                          IMAGENET_NORM, True),
    "vgg16-cifar": (0.1, 0.9, 1e-4, 128, "160ep", ("80ep", "120ep"), 0.1, "0it", "2000it", 25, 0.2, IMAGENET_NORM,
                    True),
    "resnet101-tiny": (0.2, 0.9, 1e-4, 512, "200ep", ("100ep", "150ep"), 0.1, "5ep", "1000it", 16, 0.2,
                       IMAGENET_NORM, True),
}
# preset -> (Table B row, noise type, noise rate); "random" is the paper's "symmetric" as its code runs it
PAPER_PRESETS = {
    "fig1-lenet-mnist": ("lenet-mnist", "random", 0.2),
    "fig1-cifar10": ("resnet18-cifar10", "random", 0.2),
    "fig1-cifar100": ("resnet18-cifar100", "random", 0.2),
    "clean-cifar10": ("resnet18-cifar10", "random", 0.0),
    **{f"fig4-cifar10-noise{r}": ("resnet18-cifar10", "random", r / 100) for r in (20, 40, 80)},
    **{f"fig2-cifar100-{s}": ("resnet18-cifar100", "random", 0.4) for s in ("magnitude", "gradient", "random")},
    **{f"fig2-lenet-mnist-{s}": ("lenet-mnist", "random", 0.2) for s in ("magnitude", "gradient", "random")},
    "fig3-cifar100-rewind": ("resnet18-cifar100", "random", 0.4),
    "fig3-lenet-mnist-rewind": ("lenet-mnist", "random", 0.2),
    "noise-asymmetric-cifar10": ("resnet18-cifar10", "asymmetric", 0.2),
    "noise-pairflip-cifar10": ("resnet18-cifar10", "pairflip", 0.2),
    "noise-asymmetric-cifar100": ("resnet18-cifar100", "asymmetric", 0.4),
    "noise-pairflip-cifar100": ("resnet18-cifar100", "pairflip", 0.4),
    "vgg16-cifar10": ("vgg16-cifar", "random", 0.2),
    "vgg16-cifar100": ("vgg16-cifar", "random", 0.4),
    "resnet101-tiny-imagenet": ("resnet101-tiny", "random", 0.2),
}
# the other retraining modes train the dense level once, from 0 (only rewinding returns to t > 0);
# fine-tuning runs at the schedule's final LR (CIFAR 0.001, LeNet's constant 0.1) for a full length
OTHER_MODES = {
    "fig3-cifar100-finetune": ("resnet18-cifar100", "finetune", 0.001, "160ep"),
    "fig3-cifar100-lr-rewind": ("resnet18-cifar100", "lr-rewind", None, None),
    "fig3-cifar100-scratch": ("resnet18-cifar100", "scratch", None, None),
    "fig3-lenet-mnist-finetune": ("lenet-mnist", "finetune", 0.1, "200ep"),
    "fig3-lenet-mnist-lr-rewind": ("lenet-mnist", "lr-rewind", None, None),
    "fig3-lenet-mnist-scratch": ("lenet-mnist", "scratch", None, None),
}
REDUCED = {"fig1-lenet-mnist-cpu", "fig1-cifar10-cpu", "fig1-lenet-mnist5k"}
NOISIER = {"fig1-lenet-mnist5k-noise40": ("fig1-lenet-mnist5k", 0.4)}  # a reduced preset at another noise rate
FASHION = {"fig1-lenet-fashion": "200ep", "fig1-lenet-fashion-laptop": "20ep"}  # Figure 1's protocol, 60k images


@pytest.mark.parametrize("name", list(FASHION))
def test_fashion_presets_are_figure_1s_lenet_protocol_on_all_of_fashion_mnist(name):
    config, mnist = sddlab.get_preset(name), sddlab.get_preset("fig1-lenet-mnist")
    expected = ("fashion-mnist", None, FASHION[name])
    assert (config.data.name, config.data.subset, str(config.training.duration)) == expected
    changed = {"data.name": "mnist", "training.duration": "200ep"}
    assert config.with_overrides(changed).short_hash() == mnist.short_hash()  # nothing else differs


def assert_table_b(config: Config, row: str, rewind: bool = True) -> None:
    lr, momentum, wd, batch, epochs, milestones, gamma, warmup, rewind_point, levels, fraction, norm, aug = TABLE_B[row]
    t = config.training
    assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.batch_size, str(t.duration)) == (
        "sgd", lr, momentum, wd, batch, epochs), config.name
    assert tuple(map(str, t.milestones)) == milestones and str(t.warmup) == warmup, config.name
    assert t.schedule == ("multistep" if milestones else "constant"), config.name
    if gamma is not None:
        assert t.gamma == gamma
    if rewind:
        assert str(config.retraining.rewind_point) == rewind_point, config.name
    assert (config.experiment.levels, config.pruning.fraction) == (levels, fraction), config.name
    assert config.pruning.count == "official" and config.experiment.measure_on == "augmented", config.name
    spec = DATASETS[config.data.name]
    pixels = torch.arange(0, 256, 4, dtype=torch.uint8).repeat(2, len(norm[0]), 32, 1)[..., :32, :32]
    mean = torch.tensor(norm[0]).view(1, -1, 1, 1)
    std = torch.tensor(norm[1]).view(1, -1, 1, 1)
    if config.data.name != "tiny-imagenet":  # Tiny ImageNet is resized at test time, normalised the same
        torch.testing.assert_close(spec.eval_transform(pixels), (pixels / 255 - mean) / std)
    draws = [spec.train_transform(pixels, torch.Generator().manual_seed(seed)) for seed in range(4)]
    augmented = any(not torch.equal(draw, draws[0]) for draw in draws)
    assert augmented == aug, config.name


@pytest.mark.parametrize("name", sorted(PAPER_PRESETS))
def test_paper_presets_match_table_b(name):
    config = list_presets()[name]
    row, kind, rate = PAPER_PRESETS[name]
    assert_table_b(config, row)
    assert (config.noise.type, config.noise.rate) == (kind, rate)
    assert config.retraining.mode == "rewind"
    if kind == "asymmetric" and config.data.name == "cifar100":
        assert config.noise.asymmetric_map == "official"


@pytest.mark.parametrize("name", sorted(OTHER_MODES))
def test_retraining_mode_presets_match_table_b(name):
    config = list_presets()[name]
    row, mode, finetune_lr, finetune_duration = OTHER_MODES[name]
    assert_table_b(config, row, rewind=False)
    assert config.retraining.mode == mode and str(config.retraining.rewind_point) == "0it"
    assert config.retraining.finetune_lr == finetune_lr
    assert (finetune_duration is None) == (config.retraining.finetune_duration is None)
    if finetune_duration:
        assert str(config.retraining.finetune_duration) == finetune_duration


def test_every_paper_preset_is_pinned_and_tiny_imagenet_is_one_shot():
    laptop = {"digits", "digits-noise20", "digits-clean", "digits-finetune", "mnist1d", "tiny"}
    assert set(list_presets()) == laptop | set(PAPER_PRESETS) | set(OTHER_MODES) | REDUCED | set(NOISIER) | set(FASHION)
    assert list_presets()["resnet101-tiny-imagenet"].pruning.strategy == "oneshot"


def test_reduced_presets_keep_the_paper_protocol_but_length_and_data():
    for name in REDUCED:
        config = list_presets()[name]
        base = list_presets()["fig1-lenet-mnist" if "lenet" in name else "fig1-cifar10"]
        changed = {key for key, value in config.flat().items() if base.flat()[key] != value}
        assert changed <= {"name", "data.name", "data.subset", "training.duration", "training.milestones",
                           "model.width", "retraining.rewind_point", "experiment.levels"}, name
        assert config.pruning.count == "official" and config.experiment.measure_on == "augmented"
    assert list_presets()["fig1-lenet-mnist5k"].data.name == "mnist5k"


@pytest.mark.parametrize("name", sorted(NOISIER))
def test_noisier_presets_change_only_the_noise_rate(name):
    base, rate = NOISIER[name]
    config, reduced = list_presets()[name], list_presets()[base]
    changed = {key for key, value in config.flat().items() if reduced.flat()[key] != value}
    assert changed == {"name", "noise.rate"} and config.noise.rate == rate
