"""K seeds of one config: one by one, in lockstep (one stacked model) and in a process pool, against the FLOP floor.

    .venv/bin/python benchmarks/bench_lockstep.py [--ks 1 4 8] [--levels 1] [--epochs 150] [--repeat 3]

Runs the `digits` preset (shortened to `--levels` pruning levels; the per-step cost does not depend on
the level) into fresh temporary folders, all in one run so the ratios share the machine's load:
- serial:   K separate `sddlab.run` calls in this process (`--threads` intra-op threads);
- lockstep: `sddlab.runs.run_lockstep`, the K seeds stacked through the hand-written step (at K = 1
            the single-seed hand-written step);
- pool:     `sddlab.executors.process_pool`, min(K, `--workers`) spawned processes with cores/workers
            threads each (process start-up and imports included: what a sweep pays).
Each row is timed `--repeat` times and the fastest is shown (the machine may be shared). Columns: wall
seconds end to end (data, evaluation and checkpoints included), the ratio to serial K = 1, microseconds
per seed-step (wall / (K x steps per seed)) and that over the FLOP floor: 6 x batch x weights of a step
at the fp32 matmul rate measured in this run (a 2048 x 2048 product, `--threads` threads, the fastest of
the measurements taken before every row, so a loaded moment never flatters the ratio).
Targets: lockstep K = 8 within 1.6x the floor, lockstep K = 1 within 3x.

On a shared machine wall time measures the load as much as the code, so each row also shows the CPU
time per seed-step (this process and its finished pool workers, all threads) against the floor at this
thread's CPU-time matmul rate: with one thread a load-robust view of the same work.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time

import torch
from args import checked_config, device, int_between, non_negative_int, positive_int, preset, run_main

import sddlab
from sddlab.executors import Task, Where, process_pool
from sddlab.models import build_model
from sddlab.runs import run_lockstep, with_seeds

TARGETS = {("lockstep", 8): 1.6, ("lockstep", 1): 3.0}


def matmul_gflops(size: int = 2048, repeats: int = 5, clock=time.perf_counter) -> float:
    """The fp32 matmul rate of this process now (GFLOP/s): the fastest of `repeats` square products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        began = clock()
        a @ b
        best = min(best, clock() - began)
    return 2 * size**3 / max(best, 1e-9) / 1e9


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have finished (pool workers, once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def step_flop(config: sddlab.Config) -> float:
    """Matrix work of one seed-step: forward and both backward products, 6 x batch x weights."""
    from sddlab.data.registry import DATASETS

    spec = DATASETS[config.data.name]
    model = build_model(config.model, spec.input_shape, spec.num_classes, 0)
    weights = sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight") and p.dim() > 1)
    return 6.0 * config.training.batch_size * weights


def _serial(configs, results, device):
    for config in configs:
        sddlab.run(config, results, device=device, progress=False)


def _lockstep(configs, results, device):
    run_lockstep(configs, results, device=device, progress=False)


def _pool(configs, results, device, workers):
    outcomes = process_pool([Task.of([c], lockstep=False) for c in configs], Where(results, None, device),
                            {"workers": workers})
    failed = [o.error for o in outcomes if o.error]
    if failed:
        raise RuntimeError(failed[0])


def _time(mode: str, configs: list, args: argparse.Namespace) -> tuple[float, float, int]:
    """Wall and CPU seconds of one row and the training steps of one seed."""
    with tempfile.TemporaryDirectory() as results:
        began, cpu = time.perf_counter(), cpu_seconds()
        if mode == "serial":
            _serial(configs, results, args.device)
        elif mode == "lockstep":
            _lockstep(configs, results, args.device)
        else:
            _pool(configs, results, args.device, min(args.workers, len(configs)))
        wall, cpu = time.perf_counter() - began, cpu_seconds() - cpu
        steps = int(sddlab.load(f"{results}/{configs[0].run_name()}")["iterations"].sum())
    return wall, cpu, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", type=preset, default="digits")
    parser.add_argument("--ks", type=int_between(1, 64), nargs="+", default=[1, 4, 8])
    parser.add_argument("--levels", type=non_negative_int, default=1)
    parser.add_argument("--epochs", type=positive_int, default=150)
    cores = os.cpu_count() or 1
    parser.add_argument("--threads", type=int_between(1, cores, "(this machine's cores)"), default=cores)
    parser.add_argument("--workers", type=int_between(1, cores, "(this machine's cores)"), default=cores)
    parser.add_argument("--modes", nargs="+", default=["serial", "lockstep", "pool"],
                        choices=["serial", "lockstep", "pool"])
    parser.add_argument("--device", type=device, default="cpu")
    parser.add_argument("--repeat", type=positive_int, default=3,
                        help="timings per row; the fastest is shown (load spikes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    base = checked_config(parser, lambda: sddlab.get_preset(args.preset).with_overrides(
        {"experiment.levels": args.levels, "training.duration": f"{args.epochs}ep"}), args.device)
    with tempfile.TemporaryDirectory() as warm:  # data loading and first-call costs out of the timings
        sddlab.run(base.with_overrides({"training.duration": "1ep", "experiment.levels": 0}), warm,
                   device=args.device, progress=False)
    flop = step_flop(base)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu = platform.processor() or platform.machine()
    print(f"# {args.preset}, levels 0..{args.levels} x {args.epochs} epochs: {cpu}, {os.cpu_count()} cores, "
          f"{args.threads} threads in process, pool workers x cores/workers threads, torch {torch.__version__}, "
          f"device {args.device}, load average {load:.1f} at start; fastest of {args.repeat}")
    rows, rate, cpu_rate, baseline = [], 0.0, 0.0, None
    for k in args.ks:
        configs = with_seeds(base, list(range(k)))
        for mode in args.modes:
            rate = max(rate, matmul_gflops())
            cpu_rate = max(cpu_rate, matmul_gflops(clock=time.thread_time))
            timings = [_time(mode, configs, args) for _ in range(args.repeat)]
            steps = timings[0][2]
            wall, cpu = min(t[0] for t in timings), min(t[1] for t in timings)
            baseline = baseline or wall
            rows.append((mode, k, wall, 1e6 * wall / (k * steps), 1e6 * cpu / (k * steps)))
            print(f"  measured {mode} K={k}: wall {', '.join(f'{t[0]:.1f}' for t in timings)} s, "
                  f"cpu {', '.join(f'{t[1]:.1f}' for t in timings)} s", flush=True)
    floor_us, cpu_floor_us = 1e6 * flop / (rate * 1e9), 1e6 * flop / (cpu_rate * 1e9)
    print(f"# matmul rate {rate:.0f} GFLOP/s wall, {cpu_rate:.0f} in CPU time (fastest before any row); floor "
          f"{flop / 1e6:.1f} MFLOP a seed-step = {floor_us:.0f} us ({cpu_floor_us:.0f} us CPU); end load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'mode':>9} {'K':>3} {'wall s':>8} {'x K=1':>7} {'us/seed-step':>13} {'x floor':>8} {'target':>8} "
          f"{'cpu us':>7} {'x floor':>8}")
    for mode, k, wall, per_step, cpu_step in rows:
        ratio, target = per_step / floor_us, TARGETS.get((mode, k))
        verdict = "" if target is None else f"{'ok' if ratio <= target else 'MISS'} {target:.1f}"
        print(f"{mode:>9} {k:>3} {wall:>8.1f} {wall / baseline:>7.2f} {per_step:>13.0f} {ratio:>8.2f} {verdict:>8} "
              f"{cpu_step:>7.0f} {cpu_step / cpu_floor_us:>8.2f}")


if __name__ == "__main__":
    run_main(main)
