"""One run beside competing busy processes: how the intra-op thread choice holds up on a shared machine.

    .venv/bin/python benchmarks/bench_contention.py [--preset digits] [--levels 1] [--epochs 150] [--repeat 1]

Times `sddlab.run` of the preset (levels 0..`--levels`, `--epochs` a level) in this process, in a fresh
temporary folder, under three loads started here: none ("idle": whatever else the machine runs), one and
two competing busy processes (each a Python loop spinning on one core, started before the run and
stopped after it). Thread policies: `auto` (the default: `sddlab.runtime.ThreadChoice`, re-chosen as the
load moves), and fixed counts (`--fixed 1 2`; 2 was the default before). Every policy runs under every
load in one run, loads outermost, so all ratios share the machine's drift; each cell is the fastest of
`--repeat`. Prints wall seconds, the ratio to the same policy idle, and the ratio to the fastest idle
policy. Targets: auto beside one busy process <= 1.3x its idle time; auto idle no slower than the fastest
fixed policy idle (within the machine's noise).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch
from args import checked_config, int_between, non_negative_int, positive_int, preset, run_main

import sddlab
from sddlab.runtime import Runtime

MAX_BUSY = 4 * (os.cpu_count() or 1)  # more spinning processes than this swamp the machine, not the thread choice
# a busy loop that ends with this process (checked every few million iterations), even if it is killed
SPIN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(3_000_000):\n        pass\n"


def _time_run(config: sddlab.Config, threads: int | None, given: int) -> float:
    """Wall seconds of one run; the process is given `given` threads first (as a fresh process would be)."""
    torch.set_num_threads(given)
    with tempfile.TemporaryDirectory() as results:
        began = time.perf_counter()
        sddlab.run(config, results, device="cpu", progress=False, runtime=Runtime(device="cpu", threads=threads))
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", type=preset, default="digits")
    parser.add_argument("--levels", type=non_negative_int, default=1)
    parser.add_argument("--epochs", type=positive_int, default=150)
    parser.add_argument("--fixed", type=positive_int, nargs="*", default=[1, 2], help="fixed thread counts to compare")
    parser.add_argument("--busy", type=int_between(0, MAX_BUSY, f"(4 x this machine's {os.cpu_count() or 1} cores)"),
                        nargs="+", default=[0, 1, 2], help="competing busy processes, each spinning on one core")
    parser.add_argument("--repeat", type=positive_int, default=1)
    args = parser.parse_args()
    given = os.cpu_count() or 1
    config = checked_config(parser, lambda: sddlab.get_preset(args.preset).with_overrides(
        {"experiment.levels": args.levels, "training.duration": f"{args.epochs}ep"}))
    with tempfile.TemporaryDirectory() as warm:  # data loading and first-call costs out of the timings
        sddlab.run(config.with_overrides({"training.duration": "1ep", "experiment.levels": 0}), warm,
                   device="cpu", progress=False)
    policies: list[tuple[str, int | None]] = [("auto", None)] + [(f"{n} thread(s)", n) for n in args.fixed]
    print(f"# {args.preset}, levels 0..{args.levels} x {args.epochs} epochs; {given} cores; torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} at start; fastest of {args.repeat}", flush=True)
    walls: dict[tuple[str, int], float] = {}
    for busy in args.busy:
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
        try:
            time.sleep(0.5 if busy else 0.0)  # let them start spinning
            for name, threads in policies:
                walls[name, busy] = min(_time_run(config, threads, given) for _ in range(args.repeat))
                print(f"  measured {name}, {busy} busy: {walls[name, busy]:.1f} s", flush=True)
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
    idle = min(walls[name, 0] for name, _ in policies) if 0 in args.busy else float("nan")
    print(f"# end load average {os.getloadavg()[0]:.1f}; x idle: the same policy idle; x best: the fastest idle policy")
    header = " ".join(f"{f'{b} busy s':>9} {'x idle':>7} {'x best':>7}" for b in args.busy)
    print(f"{'threads':>12} {header}")
    for name, _ in policies:
        own = walls.get((name, 0), float("nan"))
        cells = " ".join(f"{walls[name, b]:>9.1f} {walls[name, b] / own:>7.2f} {walls[name, b] / idle:>7.2f}"
                         for b in args.busy)
        print(f"{name:>12} {cells}")


if __name__ == "__main__":
    run_main(main)
