"""`optimizer.step()` of a fused Adam, AdamW or SGD without its per-call Python: one kernel call a step.

`torch.optim`'s step regroups its tensors by device and dtype, checks hooks and builds argument lists at
every call; for the small steps of the lockstep MLP on a CPU that costs about as much as the update
itself. `FusedStep` lets the optimizer make its state on the first step, then calls the same fused kernel
with the same arguments directly, so the numbers are the optimizer's own (tested bitwise equal). Any
other optimizer (not fused, several parameter groups or devices, a tensor learning rate) is stepped
through `optimizer.step()` as before.
"""

from __future__ import annotations

import torch


class FusedStep:
    """Call once a training step, in place of `optimizer.step()`; reads the group's learning rate each time."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self._kind: str | None = None  # "adam", "adamw", "sgd", or "plain" (optimizer.step() every time)
        self._state: tuple | None = None  # (first parameter's state dict, its lists) while that dict stands

    def __call__(self) -> None:
        if self._kind is None:  # the first step makes the optimizer's state, exactly as torch does
            self.optimizer.step()
            self._kind = self._supported()
            return
        if self._kind == "plain":
            self.optimizer.step()
            return
        group = self.optimizer.param_groups[0]
        params = group["params"]
        grads = [p.grad for p in params]  # read every step: autograd makes new ones after zero_grad
        if any(g is None for g in grads):
            self.optimizer.step()
            return
        lists = self._state_lists(params, group)
        if self._kind == "sgd":
            torch._fused_sgd_(params, grads, lists["momentum_buffer"], weight_decay=group["weight_decay"],
                              momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"],
                              nesterov=group["nesterov"], maximize=group["maximize"], is_first_step=False,
                              grad_scale=None, found_inf=None)
            return
        torch._foreach_add_(lists["step"], lists["ones"])
        beta1, beta2 = (float(b) for b in group["betas"])
        kernel = torch._fused_adamw_ if self._kind == "adamw" else torch._fused_adam_
        kernel(params, grads, lists["exp_avg"], lists["exp_avg_sq"], lists["max_exp_avg_sq"], lists["step"],
               amsgrad=group["amsgrad"], lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
               eps=group["eps"], maximize=group["maximize"], grad_scale=None, found_inf=None)

    def _state_lists(self, params: list[torch.Tensor], group: dict) -> dict[str, list[torch.Tensor]]:
        """The state tensors the kernel takes, as lists, gathered once: the optimizer updates them in place,
        and only `load_state_dict` (new state dicts) replaces them, which the first parameter's dict shows."""
        first = self.optimizer.state[params[0]]
        if self._state is None or self._state[0] is not first:
            state = [self.optimizer.state[p] for p in params]
            if self._kind == "sgd":
                lists = {"momentum_buffer": [] if group["momentum"] == 0 else [s["momentum_buffer"] for s in state]}
            else:
                lists = {key: [s[key] for s in state] for key in ("step", "exp_avg", "exp_avg_sq")}
                lists["max_exp_avg_sq"] = [s["max_exp_avg_sq"] for s in state] if group["amsgrad"] else []
                lists["ones"] = [torch.ones_like(step) for step in lists["step"]]  # one add for all the steps
            self._state = (first, lists)
        return self._state[1]

    def _supported(self) -> str:
        """Which direct call reproduces this optimizer's step ("plain": none does)."""
        optimizer, groups = self.optimizer, self.optimizer.param_groups
        if len(groups) != 1 or not groups[0].get("fused") or isinstance(groups[0]["lr"], torch.Tensor):
            return "plain"
        params = groups[0]["params"]
        if len({(p.device, p.dtype) for p in params}) != 1 or groups[0].get("differentiable"):
            return "plain"
        if isinstance(optimizer, torch.optim.Adam):  # AdamW is an Adam with decoupled weight decay
            decoupled = groups[0].get("decoupled_weight_decay", isinstance(optimizer, torch.optim.AdamW))
            return "adamw" if decoupled else "adam"
        if isinstance(optimizer, torch.optim.AdamW):
            return "adamw"
        if isinstance(optimizer, torch.optim.SGD):
            return "sgd"
        return "plain"
