"""Time the main job (the `digits` preset) end to end, in a fresh temporary results folder.

    .venv/bin/python benchmarks/bench_main.py [--seeds 0 1 2 3] [--set field=value ...]

Prints one row per seed (wall seconds, microseconds per training iteration, the phases found) and the
targets from the project's issue: <= 90 s per trajectory on a 2-core CPU, stretch <= 45 s.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

import sddlab
from sddlab.config import parse_assignment

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
             f"{'@sparsity':>9} {'last':>6} {'target':>7}"
    print(header)
    walls = []
    for seed in args.seeds:
        config = base.with_overrides({"experiment.seed": seed})
        with tempfile.TemporaryDirectory() as results:
            began = time.perf_counter()
            run_dir = sddlab.run(config, results, device=args.device, progress=False)
            wall = time.perf_counter() - began
            table = sddlab.load(run_dir)
        walls.append(wall)
        iterations = int(table["iterations"].sum())
        dense = table["test_acc"].iloc[0]
        low = table.loc[table["test_acc"].iloc[1:].idxmin()] if len(table) > 1 else table.iloc[0]
        after = table[table["level"] > low["level"]]
        peak = after.loc[after["test_acc"].idxmax()] if len(after) else low
        verdict = "ok" if wall <= STRETCH_S else ("ok" if wall <= TARGET_S else "SLOW")
        print(f"{seed:>4} {wall:>8.1f} {1e6 * wall / iterations:>8.0f} {dense:>6.3f} {low['test_acc']:>6.3f} "
              f"{low['sparsity']:>9.2%} {peak['test_acc']:>6.3f} {peak['sparsity']:>9.2%} "
              f"{table['test_acc'].iloc[-1]:>6.3f} {verdict:>7}")
    print(f"# mean wall {sum(walls) / len(walls):.1f} s per trajectory; target <= {TARGET_S:.0f} s, "
          f"stretch <= {STRETCH_S:.0f} s")


if __name__ == "__main__":
    main()
