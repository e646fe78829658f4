"""The lockstep MLP step alone: its products, the hand-written pass and a full step, against the FLOP floor.

    .venv/bin/python benchmarks/bench_stacked_step.py [--ks 1 4 8] [--rounds 20] [--threads 1]

The `digits` MLP (64-256-256-10, batch 64, fused Adam, 30 % of every weight matrix pruned). With one
thread (the default) times are this thread's CPU time (`time.thread_time`), so a busy machine (other
processes taking the core) changes them little; with `--threads N` > 1 they are wall time, as in
`bench_lockstep.py`. Each is the fastest of `--rounds` interleaved rounds. Rows per K:
- products: the pass's eight batched matrix products alone, at its shapes and into its buffers (three
  forward, three weight gradients, two propagated gradients): what the FLOP floor's matrix work costs
  at these small shapes, so the share of a step that no elementwise saving can remove;
- pass: `StackedMLP.loss_and_gradients` (forward, loss, hand-written backward);
- step: pass + the gradient masks + the optimizer step, as `sddlab.lockstep.loop.train_stacked` runs them;
- fused: the same step with `sddlab.lockstep.fused_step.FusedStep` in place of `optimizer.step()`;
- forward product of the 256 x 256 layer, a @ W^T through a transposed view (the former batch-major
  layout) against W @ a (the feature-major layout the pass uses): the layout's effect on its largest product.
The floor is 6 x batch x weights at the fp32 matmul rate of a 2048 x 2048 product on the same threads and
clock, measured in the same rounds (`bench_lockstep.py`'s floor).
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from args import int_between, positive_int, run_main

import sddlab
from sddlab.lockstep.fused_step import FusedStep
from sddlab.lockstep.stacked import StackedMLP
from sddlab.models.mlp import MLP
from sddlab.training import make_optimizer

BATCH, WIDTHS = 64, (64, 256, 256, 10)


def _products(k: int):
    """The pass's eight batched products for K seeds, laid out as `StackedMLP.loss_and_gradients` lays them."""
    shapes = list(zip(WIDTHS[:-1], WIDTHS[1:], strict=False))
    weights = [torch.randn(k, out, into) / into**0.5 for into, out in shapes]
    biases = [torch.randn(k, out, 1) for _, out in shapes]
    outputs = [torch.randn(k, width, BATCH) for width in WIDTHS]  # feature-major; outputs[0] is the input
    backprop = [torch.empty(k, width, BATCH) for width in WIDTHS[:-1]]
    grads = [torch.empty_like(w) for w in weights]
    last = len(weights) - 1

    def run() -> None:
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            torch.baddbmm(b, w, outputs[i], out=outputs[i + 1])
        gradient = outputs[-1]  # stands in for the loss gradient: same shape, same cost
        for i in reversed(range(last + 1)):
            torch.bmm(gradient, outputs[i].transpose(1, 2), out=grads[i])
            if i > 0:
                gradient = torch.bmm(weights[i].transpose(1, 2), gradient, out=backprop[i])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", type=int_between(1, 64), nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=positive_int, default=20)
    parser.add_argument("--threads", type=int_between(1, os.cpu_count() or 1, "(this machine's cores)"), default=1,
                        help="intra-op threads; above 1 the times are wall time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    torch.set_flush_denormal(True)
    training = sddlab.get_preset("digits").training
    weights = sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=False))
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
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

        jobs[k, "products"] = _products(k)
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
        began = clock()
        a @ b
        rate = max(rate, 2 * 2048**3 / max(clock() - began, 1e-9))
        for key, job in jobs.items():
            began = clock()
            for _ in range(10):
                job()
            best[key] = min(best[key], (clock() - began) / 10)
    floor = 6 * BATCH * weights / rate
    timing = "1 thread, CPU time" if args.threads == 1 else f"{args.threads} threads, wall time"
    print(f"# {timing}, fastest of {args.rounds}; matmul {rate / 1e9:.0f} GFLOP/s, floor "
          f"{1e6 * floor:.0f} us a seed-step; torch {torch.__version__}")
    names = ("products", "pass", "step", "fused")
    header = " ".join(f"{name:>{22 if name == names[0] else 7}} {'x floor':>8}" for name in names)
    print(f"{'K':>3} {header.replace('products', 'products us/seed-step', 1)} {'W@a / a@W^T':>12}")
    for k in args.ks:
        per = {name: best[k, name] / k for name in names}
        cells = " ".join(f"{1e6 * per[name]:>{22 if name == 'products' else 7}.0f} {per[name] / floor:>8.2f}"
                         for name in names)
        print(f"{k:>3} {cells} {best[k, 'W @ a'] / best[k, 'a @ W^T']:>12.2f}")


if __name__ == "__main__":
    run_main(main)
