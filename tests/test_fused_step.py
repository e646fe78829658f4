"""`FusedStep` updates parameters and optimizer state bit for bit as `optimizer.step()` does."""

from __future__ import annotations

import copy

import pytest
import torch

from sddlab.lockstep.fused_step import FusedStep

OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, fused=True),
    "adam-wd-amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, amsgrad=True, fused=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2, betas=(0.8, 0.99), fused=True),
    "sgd-nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, fused=True),
    "sgd-plain": lambda p: torch.optim.SGD(p, lr=0.1, fused=True),
    "adam-foreach": lambda p: torch.optim.Adam(p, lr=1e-2, foreach=True),  # not fused: stepped as before
}


@pytest.mark.parametrize("reload", [False, True])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fused_step_equals_optimizer_step(name, reload):
    """Also across a `load_state_dict` of fresh tensors midway (as a resume does): the direct call must then
    update the new state, not the tensors it gathered before."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(3, 7, 5), (3, 7), (3, 4, 7)]
    initial = [torch.randn(shape, generator=generator) for shape in shapes]
    grads = [[torch.randn(shape, generator=generator) for shape in shapes] for _ in range(6)]
    results = []
    for direct in (False, True):
        params = [torch.nn.Parameter(t.clone()) for t in initial]
        optimizer = OPTIMIZERS[name](params)
        step = FusedStep(optimizer) if direct else optimizer.step
        for index, step_grads in enumerate(grads):
            if reload and index == 3:
                optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
            optimizer.param_groups[0]["lr"] *= 0.7  # the loop sets the LR every step
            for param, grad in zip(params, step_grads, strict=True):
                param.grad = grad.clone()
            step()
        state = [{key: value.clone() for key, value in optimizer.state[p].items() if torch.is_tensor(value)}
                 for p in params]
        results.append(([p.detach().clone() for p in params], state))
    (theirs, their_state), (mine, my_state) = results
    assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))
    for a, b in zip(my_state, their_state, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    assert not torch.equal(mine[0], initial[0])  # it did train
    assert step._kind == KINDS[name]  # the fused ones really took the direct call


KINDS = {"adam": "adam", "adam-wd-amsgrad": "adam", "adamw": "adamw", "sgd-nesterov": "sgd", "sgd-plain": "sgd",
         "adam-foreach": "plain"}
