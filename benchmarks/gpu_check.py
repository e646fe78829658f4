"""The GPU check: what one accelerator does with the paper's workloads, in one table, in a few minutes.

    benchmarks/gpu_check.sh [--device cuda] [--smoke] [--out rows.json]

Rows (each printed as soon as it is measured):
- LeNet-300-100 paper epoch: train 60,000 MNIST-shaped images in batches of 128, then evaluate the 60k
  training and 10k test images (synthetic data of the real shapes and dtype), fastest of 2 after a warm-up;
- ResNet-18 CIFAR-10 epoch (391 steps of 128, augmentation on the device, channels-last) in fp32 and bf16,
  without and with `torch.compile` (warm-up and compilation timed apart);
- lockstep K = 1, 4, 8 seeds of LeNet-300-100 (fp32, the hand-written step) and ResNet-18 (bf16,
  `torch.func` stacking): milliseconds a step and the throughput gain over K = 1;
- a two-level `fig1-cifar10` run through the command line on CIFAR-format files written by the tests'
  generator (random pixels, the real file layout), killed (SIGKILL) once level 0 is stored and resumed:
  wall seconds, and whether the resumed run finished with level 0 untouched;
- the projected hours of Figure 1's CIFAR-10 panel (29 levels x 160 epochs) for 3 seeds: separately at the
  fastest single-seed epoch, and stacked at the K = 4 step time (an upper bound for K = 3); training only.

`--smoke` runs every row on tiny sizes (narrow models, a few steps, `torch.compile` with the eager
backend) so the test suite keeps the script alive on a CPU; its numbers mean nothing.
Without a CUDA GPU the script refuses to start unless `--smoke` or `--device cpu` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from args import device as device_name  # noqa: E402
from args import output_file, run_main  # noqa: E402
from bench_epoch import _sync, matmul_gflops, sddlab_epoch, synthetic  # noqa: E402

import sddlab  # noqa: E402
from sddlab.config import ModelConfig, TrainingConfig  # noqa: E402
from sddlab.io import atomic_write_text  # noqa: E402
from sddlab.lockstep.loop import train_stacked  # noqa: E402
from sddlab.lockstep.stacked import stack_models  # noqa: E402
from sddlab.models import build_model  # noqa: E402
from sddlab.runtime import Runtime  # noqa: E402
from sddlab.store import RunStore  # noqa: E402
from sddlab.training import Schedule, Span, make_optimizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ROWS: list[dict] = []
# torch.func has no batching rule for as_strided copies yet: a warning (once, mid-table) of a known slow path
AS_STRIDED_WARNING = (r"There is a performance drop because we have not yet implemented the batching rule for "
                      r"aten::as_strided")


def row(check: str, value: float, unit: str, note: str = "") -> None:
    """Print one row of the table and keep it for --out."""
    ROWS.append({"check": check, "value": value, "unit": unit, "note": note})
    print(f"{check:<44} {value:>10.3f} {unit:<14} {note}", flush=True)


def lenet_epoch(device: str, smoke: bool) -> None:
    data = synthetic("mnist", 1024 if smoke else 60_000, 256 if smoke else 10_000, device)
    training = TrainingConfig(optimizer="sgd", lr=0.1, batch_size=128)
    runtime = Runtime(device=device, channels_last=False)
    model = build_model(ModelConfig(name="lenet-300-100"), (1, 28, 28), 10, seed=0).to(device)
    sddlab_epoch(model, data, training, runtime, None, True)  # warm-up
    train_s, eval_s = min((sddlab_epoch(model, data, training, runtime, None, True) for _ in range(2)), key=sum)
    row("LeNet-300-100 paper epoch (train + eval)", train_s + eval_s, "s",
        f"train {train_s:.3f} s, eval {eval_s:.3f} s")


def resnet_epochs(device: str, smoke: bool, compiled: bool) -> dict[str, float]:
    """Seconds a ResNet-18 CIFAR-10 epoch in each precision (its 390 full batches, scaled to 391 steps: the
    last, partial batch would recompile a compiled model inside the timing)."""
    data = synthetic("cifar10", 256 if smoke else 50_000, 64 if smoke else 10_000, device)
    batch = 16 if smoke else 128
    training = TrainingConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=batch)
    per_epoch = math.ceil(50_000 / 128)
    steps, warm = (2, 1) if smoke else (50_000 // 128, 20)
    seconds = {}
    for precision in ("fp32", "bf16"):
        runtime = Runtime(device=device, amp=precision == "bf16", channels_last=True)
        model = build_model(ModelConfig(name="resnet18", width=0.125 if smoke else 1.0), (3, 32, 32), 10, 0)
        model = model.to(device).to(memory_format=torch.channels_last)
        if compiled:
            model.compile(backend="eager" if smoke else "inductor")
        warm_s, _ = sddlab_epoch(model, data, training, runtime, warm, False)  # cudnn autotuning, compilation
        spent, _ = sddlab_epoch(model, data, training, runtime, steps, False)
        name = f"{precision}{' compiled' if compiled else ''}"
        seconds[name] = spent * per_epoch / steps
        row(f"ResNet-18 CIFAR-10 epoch, {name}", seconds[name], "s", f"warm-up {warm_s:.1f} s")
    return seconds


def _stacked_step_ms(name: str, k: int, device: str, smoke: bool, amp: bool) -> float:
    """Milliseconds a lockstep step of K seeds (the loop the lockstep group runs), after a warm-up."""
    dataset, shape = ("mnist", (1, 28, 28)) if name == "lenet-300-100" else ("cifar10", (3, 32, 32))
    data = synthetic(dataset, 2048 if not smoke else 64, 64, device)
    width = 0.125 if smoke and name == "resnet18" else 1.0
    models = [build_model(ModelConfig(name=name, width=width), shape, 10, seed).to(device) for seed in range(k)]
    stacked = stack_models(models)
    batch = 16 if smoke else 128
    training = TrainingConfig(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=batch)
    per_epoch = data.iterations_per_epoch(batch)
    runtime = Runtime(device=device, amp=amp, channels_last=name == "resnet18")
    optimizer = make_optimizer(stacked, training)
    masks = {n: torch.ones_like(p) for n, p in stacked.named_stacks().items() if n.endswith("weight")}
    warm, steps = (1, 2) if smoke else (5, min(20, per_epoch - 5))

    def spans(start: int, end: int) -> list[Span]:
        return [Span(training, Schedule(training.lr), start, end, per_epoch, seed, "bench") for seed in range(k)]

    train_stacked(stacked, masks, [data] * k, spans(0, warm), optimizer, runtime)
    _sync(device)
    began = time.perf_counter()
    train_stacked(stacked, masks, [data] * k, spans(warm, warm + steps), optimizer, runtime)
    _sync(device)
    return 1e3 * (time.perf_counter() - began) / steps


def lockstep(device: str, smoke: bool) -> dict[tuple[str, int], float]:
    times = {}
    for name, amp in (("lenet-300-100", False), ("resnet18", True)):
        for k in (1, 4, 8):
            times[name, k] = _stacked_step_ms(name, k, device, smoke, amp)
            gain = k * times[name, 1] / times[name, k]
            row(f"lockstep {name} K={k}{' bf16' if amp else ''}", times[name, k], "ms/step",
                f"{times[name, k] / k:.2f} ms a seed-step, {gain:.2f}x the seeds a second of K=1")
    return times


def _fig1_overrides(smoke: bool) -> dict:
    """fig1-cifar10 cut to two levels of 2 epochs (rewinding to iteration 100: 1000 is past the end)."""
    overrides = {"experiment.levels": 1, "training.duration": "2ep", "training.milestones": ["1ep"],
                 "retraining.rewind_point": "2it" if smoke else "100it"}
    if smoke:
        overrides.update({"model.width": 0.0625, "training.batch_size": 16})
    return overrides


def fig1_killed_and_resumed(device: str, smoke: bool, work: Path) -> None:
    """A two-level fig1-cifar10 run through the command line, SIGKILLed after level 0 and resumed."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_vision_data import write_cifar10  # the tests' generator: the real CIFAR-10 file layout

    data, results = work / "data", work / "results"
    write_cifar10(data, n=8 if smoke else 10_000)
    overrides = _fig1_overrides(smoke)
    config = sddlab.get_preset("fig1-cifar10").with_overrides(overrides)
    sets = [arg for key, value in overrides.items()
            for arg in ("--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}")]
    command = [sys.executable, "-m", "sddlab", "run", "--preset", "fig1-cifar10", *sets, "--results", str(results),
               "--data", str(data), "--device", device, "--quiet", "--no-figure"]
    env = {**os.environ, "SDDLAB_NO_DOWNLOAD": "1"}
    run_dir = results / config.run_name()
    began = time.perf_counter()
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while first.poll() is None and not (run_dir.exists() and RunStore(run_dir).has_level(0)):
        time.sleep(0.2)
    killed = first.poll() is None
    if killed:
        first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = time.perf_counter() - began
    if not killed and first.returncode != 0:
        raise RuntimeError(f"fig1-cifar10 run failed: {first.stderr.read()[-2000:]}")
    level0 = RunStore(run_dir).records()[0]
    second = subprocess.run(command, env=env, capture_output=True, text=True)
    if second.returncode != 0:
        raise RuntimeError(f"fig1-cifar10 resume failed: {second.stderr[-2000:]}")
    total = time.perf_counter() - began
    records = RunStore(run_dir).records()
    ok = [r["level"] for r in records] == [0, 1] and records[0] == level0
    state = "killed after level 0" if killed else "finished before the kill"
    row("fig1-cifar10 two levels, killed + resumed", total, "s",
        f"{state} at {at_kill:.1f} s; resumed: {'ok' if ok else 'FAILED'} (levels {[r['level'] for r in records]})")
    if not ok:
        raise RuntimeError("the resumed fig1-cifar10 run did not finish both levels with level 0 unchanged")


def projection(epochs: dict[str, float], stacked: dict[tuple[str, int], float]) -> None:
    """Hours of Figure 1's CIFAR-10 panel for 3 seeds (training only)."""
    config = sddlab.get_preset("fig1-cifar10")
    per_epoch = math.ceil(50_000 / config.training.batch_size)
    total = config.training.duration.iterations(per_epoch)
    rewind = config.retraining.rewind_point.iterations(per_epoch)
    steps = total + config.experiment.levels * (total - rewind)  # level 0 from scratch, then from the rewind point
    best = min(epochs, key=epochs.get)
    row("Figure 1 CIFAR-10, 3 seeds, separate", 3 * steps / per_epoch * epochs[best] / 3600, "hours",
        f"{config.experiment.levels + 1} levels, {steps:,} steps a seed at the {best} epoch")
    row("Figure 1 CIFAR-10, 3 seeds, stacked", steps * stacked["resnet18", 4] / 1e3 / 3600, "hours",
        "at the K=4 bf16 step time (an upper bound for K=3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=device_name, help="cpu, cuda or cuda:N (default: cuda; cpu with --smoke "
                        "where there is no CUDA GPU)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every row runs")
    parser.add_argument("--out", type=output_file, help="also write the rows as JSON (its folder must exist)")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() or not args.smoke else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():  # no --device, no --smoke: the full check
        parser.error("no CUDA GPU here: this check is for one GPU; run `benchmarks/gpu_check.sh --smoke --device "
                     "cpu` for the CPU smoke mode (or pass --device cpu for the full sizes on the CPU)")
    Runtime(device=device).configure_backends()
    began = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    print(f"# gpu_check{' (smoke)' if args.smoke else ''}: {name}, torch {torch.__version__}, "
          f"fp32 matmul {matmul_gflops(device, 512 if args.smoke else 8192):.0f} GFLOP/s")
    print(f"{'check':<44} {'value':>10} {'unit':<14} note")
    lenet_epoch(device, args.smoke)
    epochs = resnet_epochs(device, args.smoke, compiled=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=AS_STRIDED_WARNING, category=UserWarning)
        stacked = lockstep(device, args.smoke)
    with tempfile.TemporaryDirectory() as work:
        fig1_killed_and_resumed(device, args.smoke, Path(work))
    epochs |= resnet_epochs(device, args.smoke, compiled=True)  # last: compilation takes the longest
    projection(epochs, stacked)
    print(f"# {time.perf_counter() - began:.0f} s in all")
    if args.out:
        atomic_write_text(args.out, json.dumps(ROWS, indent=1))


if __name__ == "__main__":
    run_main(main)
