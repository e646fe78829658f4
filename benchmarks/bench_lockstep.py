"""K seeds of one config: lockstep (one stacked model, one process) against a process pool and one by one.

    .venv/bin/python benchmarks/bench_lockstep.py [--ks 1 4 8] [--levels 3] [--epochs 150] [--device cpu]

Runs the `digits` preset (shortened to `--levels` pruning levels; the per-step cost does not depend on
the level) into fresh temporary folders, all in one run so the ratios share the machine's load:
- serial:   K separate `sddlab.run` calls in this process (`--threads` intra-op threads);
- lockstep: `sddlab.lockstep.run_lockstep`, the K seeds stacked (`--threads` threads);
- pool:     `sddlab.executors.process_pool`, `--workers` spawned processes with cores/workers threads each
            (process start-up and imports included: what a sweep pays).
Each row is timed `--repeat` times and the fastest is shown (the machine may be shared). Prints wall
seconds end to end, the ratio to serial K = 1, microseconds per seed-step (wall / (K x steps per seed)), and
the target (K = 4 in <= 1.6x the wall time of K = 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch

import sddlab
from sddlab.executors import Task, Where, process_pool
from sddlab.lockstep import run_lockstep
from sddlab.runs import with_seeds

TARGET = 1.6


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--modes", nargs="+", default=["serial", "lockstep", "pool"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3, help="timings per row; the fastest is shown (load spikes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = sddlab.get_preset(args.preset).with_overrides(
        {"experiment.levels": args.levels, "training.duration": f"{args.epochs}ep"})
    with tempfile.TemporaryDirectory() as warm:  # data loading and first-call costs out of the timings
        sddlab.run(base.with_overrides({"training.duration": "1ep", "experiment.levels": 0}), warm,
                   device=args.device, progress=False)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu = platform.processor() or platform.machine()
    print(f"# {args.preset}, levels 0..{args.levels} x {args.epochs} epochs: {cpu}, "
          f"{os.cpu_count()} cores, {args.threads} threads in process, pool {args.workers} workers x "
          f"{max(1, (os.cpu_count() or 1) // args.workers)} threads, torch {torch.__version__}, device {args.device}, "
          f"load average {load:.1f} at start")
    print(f"{'mode':>9} {'K':>3} {'wall s':>8} {'x K=1':>7} {'us/seed-step':>13} {'target':>7}")
    baseline = None
    for k in args.ks:
        configs = with_seeds(base, list(range(k)))
        for mode in args.modes:
            if mode != "serial" and k == 1 and "serial" in args.modes:
                continue  # one seed: lockstep and a pool of one worker are the serial run
            walls = []
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as results:
                    began = time.perf_counter()
                    if mode == "serial":
                        _serial(configs, results, args.device)
                    elif mode == "lockstep":
                        _lockstep(configs, results, args.device)
                    else:
                        _pool(configs, results, args.device, min(args.workers, k))
                    walls.append(time.perf_counter() - began)
                    steps = int(sddlab.load(f"{results}/{configs[0].run_name()}")["iterations"].sum())
            wall = min(walls)
            if baseline is None:
                baseline = wall
            verdict = ("ok" if wall / baseline <= TARGET else "MISS") if k == 4 else ""
            print(f"{mode:>9} {k:>3} {wall:>8.1f} {wall / baseline:>7.2f} {1e6 * wall / (k * steps):>13.0f} "
                  f"{verdict:>7}   (all: {', '.join(f'{w:.1f}' for w in walls)})", flush=True)

if __name__ == "__main__":
    main()
