"""Time the main job (the `digits` preset) end to end, in a fresh temporary results folder.

    .venv/bin/python benchmarks/bench_main.py [--seeds 0 1 2 3] [--set field=value ...] [--step auto|autograd]

Prints one row per seed (wall seconds, microseconds per training iteration, the critical minimum and
sweet peak found by `sddlab.phases.detect_phases`, whether the curve has the required shape) and the
targets: <= 90 s per trajectory on a 2-core CPU, stretch <= 45 s.

Then, in the same process (same load), one level's training three ways: a bare PyTorch loop doing the same
steps (the same model, data on the device, a seeded permutation per epoch, cross-entropy, backward, the
keep-mask on the gradients, fused Adam, no evaluation), sddlab's default single run (the hand-written step
for the MLP family) and sddlab through autograd (`step="autograd"`). sddlab's level time includes its
evaluation, measurements and checkpoint; the bare loop's does not. Target: default <= 0.9x the bare loop.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch
from args import checked_config, device, non_negative_int, preset, run_main

import sddlab
from sddlab.assignments import parse_assignment
from sddlab.data.registry import DATASETS
from sddlab.models import build_model
from sddlab.phases import detect_phases

TARGET_S, STRETCH_S = 90.0, 45.0
BARE_TARGET = 0.9


def bare_level_seconds(config: sddlab.Config, sparsity: float = 0.2) -> float:
    """Wall seconds of one level's training steps in a bare PyTorch loop (pruned at `sparsity`, no evaluation)."""
    raw = DATASETS[config.data.name].load(None)
    x, y = raw.x_train.float(), raw.y_train
    model = build_model(config.model, DATASETS[config.data.name].input_shape, raw.num_classes, 0)
    masks = {p: (torch.rand_like(p) >= sparsity).float() for n, p in model.named_parameters() if n.endswith("weight")}
    optimizer = torch.optim.Adam(model.parameters(), lr=config.training.lr, fused=True)
    batch, epochs = config.training.batch_size, config.training.duration.count
    generator = torch.Generator().manual_seed(0)
    began = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x) - batch + 1, batch):
            index = order[start:start + batch]
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for param, keep in masks.items():
                param.grad.mul_(keep)
            optimizer.step()
    return time.perf_counter() - began


def level_seconds(config: sddlab.Config, device: str, step: str) -> float:
    """The median level time of levels 0-2 of `config` run by sddlab (evaluation and records included)."""
    with tempfile.TemporaryDirectory() as results:
        run_dir = sddlab.run(config.with_overrides({"experiment.levels": 2}), results, device=device,
                             progress=False, step=step)
        return float(sddlab.load(run_dir)["seconds"].median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", type=preset, default="digits")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0])
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    parser.add_argument("--device", type=device, default="cpu")
    parser.add_argument("--step", default="auto", choices=["auto", "autograd"],
                        help="the per-seed rows' training step (the one-level comparison runs both)")
    args = parser.parse_args()
    base = checked_config(parser, lambda: sddlab.get_preset(args.preset).with_overrides(
        dict(parse_assignment(a) for a in args.assignments)), args.device)
    print(f"# {args.preset}: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {args.device}, step {args.step}")
    header = f"{'seed':>4} {'wall s':>8} {'us/iter':>8} {'dense':>6} {'min':>6} {'@sparsity':>9} {'peak':>6} " \
             f"{'@sparsity':>9} {'last':>6} {'target':>7} {'shape':>6}"
    print(header)
    walls, shapes = [], []
    for seed in args.seeds:
        config = base.with_overrides({"experiment.seed": seed})
        with tempfile.TemporaryDirectory() as results:
            began = time.perf_counter()
            run_dir = sddlab.run(config, results, device=args.device, progress=False, step=args.step)
            wall = time.perf_counter() - began
            table = sddlab.load(run_dir)
        walls.append(wall)
        iterations = int(table["iterations"].sum())
        phases = detect_phases(table)
        verdict = "stretch" if wall <= STRETCH_S else ("ok" if wall <= TARGET_S else "SLOW")
        critical, sweet, nan = phases.critical, phases.sweet, float("nan")
        low, low_at = (critical.test_acc, critical.sparsity) if critical is not None else (nan, nan)
        peak, peak_at = (sweet.test_acc, sweet.sparsity) if sweet is not None else (nan, nan)
        after_peak = table[table["level"] > (sweet.level if sweet is not None else len(table))]["test_acc"]
        shape = (dense := phases.dense_test_acc) - low >= 0.04 and peak - low >= 0.10 and peak > dense and (
            len(after_peak) > 0 and peak - after_peak.min() >= 0.10)
        shapes.append(shape)
        print(f"{seed:>4} {wall:>8.1f} {1e6 * wall / iterations:>8.0f} {dense:>6.3f} {low:>6.3f} "
              f"{low_at:>9.2%} {peak:>6.3f} {peak_at:>9.2%} {table['test_acc'].iloc[-1]:>6.3f} {verdict:>7} "
              f"{'yes' if shape else 'no':>6}")
    print(f"# mean wall {sum(walls) / len(walls):.1f} s per trajectory; target <= {TARGET_S:.0f} s, "
          f"stretch <= {STRETCH_S:.0f} s")
    print(f"# shape (minimum >= 4 points under dense, peak >= 10 over it and above dense, then a fall of >= 10): "
          f"{sum(shapes)}/{len(shapes)} seeds")
    if base.training.optimizer != "adam" or base.training.duration.unit != "ep":
        return  # the bare loop mirrors the main job's Adam, epoch-long levels
    bare = bare_level_seconds(base)
    default, autograd = level_seconds(base, args.device, "auto"), level_seconds(base, args.device, "autograd")
    verdict = "ok" if default / bare <= BARE_TARGET else "MISS"
    print(f"# one level: bare PyTorch loop {bare:.2f} s; sddlab default {default:.2f} s "
          f"({default / bare:.2f}x bare, target <= {BARE_TARGET}x: {verdict}); "
          f"sddlab autograd {autograd:.2f} s ({autograd / bare:.2f}x bare)")


if __name__ == "__main__":
    run_main(main)
