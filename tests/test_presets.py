"""Every preset validates, says what it reproduces, and a paper preset without its data fails in one line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import sddlab
from sddlab.config import Config
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
