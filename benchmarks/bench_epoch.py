"""Per-epoch time: sddlab's device-resident path against a torchvision DataLoader with per-sample transforms.

    .venv/bin/python benchmarks/bench_epoch.py [--device cpu|cuda] [--resnet-iterations 5] [--repeats 3]

Synthetic data of the real shapes and dtypes (MNIST 60k+10k 1x28x28 uint8; CIFAR 50k+10k 3x32x32 uint8).
LeNet-300-100/MNIST: a full epoch as the paper runs it (train 469 batches of 128, then evaluate on the 60k
training and 10k test images), warm-up epoch excluded. ResNet-18/CIFAR: a fixed number of training
iterations, scaled to a 391-iteration epoch (a full CPU epoch takes many minutes). The FLOP floor uses
the fp32 matmul rate measured on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from args import device as device_name
from args import positive_int, run_main
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from sddlab.config import ModelConfig, TrainingConfig
from sddlab.data.device import DeviceData
from sddlab.data.registry import DATASETS
from sddlab.metrics import evaluate
from sddlab.models import build_model, prunable_names
from sddlab.pruning import dense_mask
from sddlab.runtime import Runtime
from sddlab.training import Schedule, Span, make_optimizer, train

LENET_TRAIN_GFLOP = 96.0  # 6 x 266,200 weights x 60,000 images (forward + both backward matmuls)


def matmul_gflops(device: str, size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    for _ in range(2):
        a @ b
    _sync(device)
    began = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - began) / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def synthetic(dataset: str, n_train: int, n_test: int, device: str) -> DeviceData:
    spec = DATASETS[dataset]
    generator = torch.Generator().manual_seed(0)
    shape = spec.input_shape
    x_train = torch.randint(0, 256, (n_train, *shape), dtype=torch.uint8, generator=generator)
    x_test = torch.randint(0, 256, (n_test, *shape), dtype=torch.uint8, generator=generator)
    y_train = torch.randint(0, spec.num_classes, (n_train,), generator=generator)
    y_test = torch.randint(0, spec.num_classes, (n_test,), generator=generator)
    return DeviceData(spec, x_train.to(device), y_train.to(device), y_train.to(device),
                      torch.zeros(n_train, dtype=torch.bool, device=device),
                      torch.zeros(n_train, dtype=torch.bool, device=device), x_test.to(device), y_test.to(device),
                      spec.num_classes, 0.0, 0.0)


class PerSampleImages(Dataset):
    """What torchvision's MNIST/CIFAR datasets do per item: uint8 array -> PIL image -> transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index]
        image = Image.fromarray(image.squeeze(0) if image.shape[0] == 1 else image.transpose(1, 2, 0))
        return self.transform(image), int(self.labels[index])


def sddlab_epoch(model, data: DeviceData, training: TrainingConfig, runtime: Runtime, iterations: int | None,
                 with_eval: bool) -> tuple[float, float]:
    """(train seconds, eval seconds) of one epoch (or `iterations` steps) through sddlab's loop."""
    mask = dense_mask(model, prunable_names(model, ()))
    optimizer = make_optimizer(model, training)
    per_epoch = data.iterations_per_epoch(training.batch_size)
    end = iterations or per_epoch
    _sync(runtime.device)
    began = time.perf_counter()
    span = Span(training, Schedule(training.lr), 0, end, per_epoch, seed=0, stream="bench")
    train(model, mask, data, span, optimizer, runtime)
    _sync(runtime.device)
    trained = time.perf_counter()
    if with_eval:
        evaluate(model, data.x_train, data.y_train, transform=data.spec.eval_transform, runtime=runtime)
        evaluate(model, data.x_test, data.y_test, transform=data.spec.eval_transform, runtime=runtime)
        _sync(runtime.device)
    return trained - began, time.perf_counter() - trained


def loader_epoch(model, data: DeviceData, transform, training: TrainingConfig, device: str, iterations: int | None,
                 with_eval: bool, eval_transform=None) -> tuple[float, float]:
    """The same work through DataLoader(per-sample PIL transforms), as the paper's code base does it."""
    x_train, y_train = data.x_train.cpu().numpy(), data.y_train.cpu().numpy()
    train_set = PerSampleImages(x_train, y_train, transform)
    loader = DataLoader(train_set, batch_size=training.batch_size, shuffle=True, num_workers=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=training.lr, momentum=training.momentum,
                                weight_decay=training.weight_decay)
    model.train()
    began = time.perf_counter()
    for step, (inputs, targets) in enumerate(loader):
        if iterations is not None and step >= iterations:
            break
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    _sync(device)
    trained = time.perf_counter()
    if with_eval:
        model.eval()
        with torch.no_grad():
            for x, y in ((x_train, y_train), (data.x_test.cpu().numpy(), data.y_test.cpu().numpy())):
                for inputs, _ in DataLoader(PerSampleImages(x, y, eval_transform or transform), batch_size=1000):
                    model(inputs.to(device))
        _sync(device)
    return trained - began, time.perf_counter() - trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=device_name, default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--resnet-iterations", type=positive_int, default=None,
                        help="ResNet-18 steps to time (default: 5 on CPU, a full epoch on CUDA)")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    device = args.device
    runtime = Runtime(device=device)
    runtime.configure_backends()
    peak = matmul_gflops(device)
    print(f"# device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"fp32 2048^3 matmul: {peak:.0f} GFLOP/s")
    rows = []

    # LeNet-300-100 on MNIST-shaped data: a full epoch as the paper runs it
    mnist = synthetic("mnist", 60_000, 10_000, device)
    training = TrainingConfig(optimizer="sgd", lr=0.1, batch_size=128)
    model = build_model(ModelConfig(name="lenet-300-100"), (1, 28, 28), 10, seed=0).to(device)
    sddlab_epoch(model, mnist, training, runtime, None, True)  # warm-up
    times = [sddlab_epoch(model, mnist, training, runtime, None, True) for _ in range(args.repeats)]
    train_s = statistics.median(t[0] for t in times)
    total_s = statistics.median(sum(t) for t in times)
    floor = LENET_TRAIN_GFLOP / peak
    rows.append(("LeNet-300-100 / MNIST", "sddlab", train_s, total_s, floor))
    if not args.skip_baseline:
        mnist_transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        base = loader_epoch(model, mnist, mnist_transform, training, device, None, True)
        rows.append(("LeNet-300-100 / MNIST", "DataLoader", base[0], sum(base), floor))

    # ResNet-18 on CIFAR-shaped data
    cifar = synthetic("cifar10", 50_000, 10_000, device)
    training = TrainingConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=128)
    iterations = args.resnet_iterations or (5 if device == "cpu" else None)
    per_epoch = cifar.iterations_per_epoch(128)
    scale = per_epoch / iterations if iterations else 1.0
    model = build_model(ModelConfig(name="resnet18"), (3, 32, 32), 10, seed=0).to(device)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    sddlab_epoch(model, cifar, training, runtime, 2, False)  # warm-up (cudnn autotuning)
    spent, _ = sddlab_epoch(model, cifar, training, runtime, iterations, False)
    rows.append(("ResNet-18 / CIFAR-10", "sddlab", spent * scale, float("nan"), float("nan")))
    if not args.skip_baseline:
        cifar_transform = transforms.Compose([
            transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ])
        base_model = build_model(ModelConfig(name="resnet18"), (3, 32, 32), 10, seed=0).to(device)
        spent, _ = loader_epoch(base_model, cifar, cifar_transform, training, device, iterations, False)
        rows.append(("ResNet-18 / CIFAR-10", "DataLoader", spent * scale, float("nan"), float("nan")))

    note = f" (from {iterations} iterations, scaled to {per_epoch})" if iterations else ""
    print(f"{'model / data':<24} {'path':<11} {'train s':>8} {'epoch s':>8} {'floor s':>8} {'vs floor':>8} "
          f"{'speed-up':>8}")
    for name, path, train_s, total_s, floor in rows:
        baseline = next((r for r in rows if r[0] == name and r[1] == "DataLoader"), None)
        ratio = (baseline[2] / train_s) if baseline and path == "sddlab" else float("nan")
        vs_floor = train_s / floor if floor == floor else float("nan")
        print(f"{name:<24} {path:<11} {train_s:>8.3f} {total_s:>8.3f} {floor:>8.3f} {vs_floor:>8.2f} {ratio:>7.1f}x")
    print(f"# ResNet-18 rows: training only{note}. Targets (2-core CPU): LeNet epoch incl. evaluation <= 0.75 s; "
          f"training <= 1.3x the FLOP floor ({LENET_TRAIN_GFLOP:.0f} GFLOP at the measured matmul rate).")


if __name__ == "__main__":
    run_main(main)
