"""The lockstep MLP step alone: the hand-written pass and a full step, against the FLOP floor, in CPU time.

    .venv/bin/python benchmarks/bench_stacked_step.py [--ks 1 4 8] [--rounds 20]

One thread, the `digits` MLP (64-256-256-10, batch 64, fused Adam, 30 % of every weight matrix pruned).
Times are this thread's CPU time (`time.thread_time`), the fastest of `--rounds` interleaved rounds, so a
busy machine (other processes taking the core) changes them little. Rows per K:
- pass: `StackedMLP.loss_and_gradients` (forward, loss, hand-written backward);
- step: pass + the gradient masks + the optimizer step, as `sddlab.lockstep.loop.train_stacked` runs them;
- fused: the same step with `sddlab.lockstep.fused_step.FusedStep` in place of `optimizer.step()`;
- forward product of the 256 x 256 layer, a @ W^T through a transposed view (the former batch-major
  layout) against W @ a (the feature-major layout the pass uses): the layout's effect on its largest product.
The floor is 6 x batch x weights at the fp32 matmul rate of this thread, measured in the same rounds.
"""

from __future__ import annotations

import argparse
import time

import torch
from args import positive_int

import sddlab
from sddlab.lockstep.fused_step import FusedStep
from sddlab.lockstep.stacked import StackedMLP
from sddlab.models.mlp import MLP
from sddlab.training import make_optimizer

BATCH, WIDTHS = 64, (64, 256, 256, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", type=positive_int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=positive_int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    training = sddlab.get_preset("digits").training
    weights = sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=False))
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    jobs, rate = {}, 0.0
    for k in args.ks:
        stacked = StackedMLP([MLP(WIDTHS[0], WIDTHS[1:-1], WIDTHS[-1]) for _ in range(k)])
        optimizer = make_optimizer(stacked, training)
        x, y = torch.randn(k, BATCH, 1, 8, 8), torch.randint(0, 10, (k, BATCH))
        params = list(stacked.stack[0::2])
        keeps = [(torch.rand_like(p) > 0.3).float() for p in params]
        h, w = torch.randn(k, BATCH, 256), torch.randn(k, 256, 256)
        ht, out, out_t = h.transpose(1, 2).contiguous(), torch.empty(k, BATCH, 256), torch.empty(k, 256, BATCH)

        def step(stacked=stacked, update=optimizer.step, x=x, y=y, params=params, keeps=keeps) -> None:
            stacked.loss_and_gradients(x, y)
            torch._foreach_mul_([p.grad for p in params], keeps)
            update()

        twin = StackedMLP([MLP(WIDTHS[0], WIDTHS[1:-1], WIDTHS[-1]) for _ in range(k)])
        fused = FusedStep(make_optimizer(twin, training))
        twin_params = list(twin.stack[0::2])

        jobs[k, "pass"] = lambda stacked=stacked, x=x, y=y: stacked.loss_and_gradients(x, y)
        jobs[k, "step"] = step
        jobs[k, "fused"] = lambda twin=twin, fused=fused, x=x, y=y, p=twin_params, keeps=keeps: step(twin, fused, x, y,
                                                                                                    p, keeps)
        jobs[k, "a @ W^T"] = lambda h=h, w=w, out=out: torch.bmm(h, w.transpose(1, 2), out=out)
        jobs[k, "W @ a"] = lambda ht=ht, w=w, out_t=out_t: torch.bmm(w, ht, out=out_t)
    best = dict.fromkeys(jobs, float("inf"))
    for job in jobs.values():
        job()
    for _ in range(args.rounds):
        began = time.thread_time()
        a @ b
        rate = max(rate, 2 * 1024**3 / max(time.thread_time() - began, 1e-9))
        for key, job in jobs.items():
            began = time.thread_time()
            for _ in range(10):
                job()
            best[key] = min(best[key], (time.thread_time() - began) / 10)
    floor = 6 * BATCH * weights / rate
    print(f"# 1 thread, CPU time, fastest of {args.rounds}; matmul {rate / 1e9:.0f} GFLOP/s, floor "
          f"{1e6 * floor:.0f} us a seed-step; torch {torch.__version__}")
    print(f"{'K':>3} {'pass us/seed-step':>18} {'x floor':>8} {'step':>7} {'x floor':>8} {'fused':>7} {'x floor':>8} "
          f"{'W@a / a@W^T':>12}")
    for k in args.ks:
        per = {name: best[k, name] / k for name in ("pass", "step", "fused")}
        cells = " ".join(f"{1e6 * per[name]:>{18 if name == 'pass' else 7}.0f} {per[name] / floor:>8.2f}"
                         for name in ("pass", "step", "fused"))
        print(f"{k:>3} {cells} {best[k, 'W @ a'] / best[k, 'a @ W^T']:>12.2f}")


if __name__ == "__main__":
    main()
