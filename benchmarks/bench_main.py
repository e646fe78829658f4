"""Time the main job (the `digits` preset) end to end, in a fresh temporary results folder.

    .venv/bin/python benchmarks/bench_main.py [--seeds 0 1 2 3] [--set field=value ...]

Prints one row per seed (wall seconds, microseconds per training iteration, the critical minimum and
sweet peak found by `sddlab.phases.detect_phases`, whether the curve has the required shape) and the
targets: <= 90 s per trajectory on a 2-core CPU, stretch <= 45 s.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

import sddlab
from sddlab.config import parse_assignment
from sddlab.phases import detect_phases

TARGET_S, STRETCH_S = 90.0, 45.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    base = sddlab.get_preset(args.preset).with_overrides(dict(parse_assignment(a) for a in args.assignments))
    print(f"# {args.preset}: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {args.device}")
    header = f"{'seed':>4} {'wall s':>8} {'us/iter':>8} {'dense':>6} {'min':>6} {'@sparsity':>9} {'peak':>6} " \
             f"{'@sparsity':>9} {'last':>6} {'target':>7} {'shape':>6}"
    print(header)
    walls, shapes = [], []
    for seed in args.seeds:
        config = base.with_overrides({"experiment.seed": seed})
        with tempfile.TemporaryDirectory() as results:
            began = time.perf_counter()
            run_dir = sddlab.run(config, results, device=args.device, progress=False)
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


if __name__ == "__main__":
    main()
