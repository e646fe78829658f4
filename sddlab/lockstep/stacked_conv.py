"""K conv nets of one architecture (BatchNorm included) held as one stacked model through `torch.func`.

`torch.func.stack_module_state` stacks the seeds' parameters and buffers along a leading dimension;
`vmap` over `functional_call` runs seed k's network on seed k's batch with seed k's BatchNorm running
statistics, which the forward pass updates in place in the stacked buffers. Seed k's loss is its own batch
mean, so one backward pass through the sum gives every seed exactly a separate run's gradient. The
interface is `StackedMLP`'s (`stack`, `named_stacks`, `copy_into`, `loss_and_gradients`, `seeds`), so the
lockstep training loop (`sddlab.lockstep.loop.train_stacked`) drives either.

Where it pays: on a GPU, where one seed's batch of 128 small images leaves the device mostly idle, K
seeds make each launch K times larger (`benchmarks/gpu_check.sh` measures K = 1, 4, 8). On the CPU
`vmap` turns a stacked conv into a grouped one and the time goes to the arithmetic either way, so conv
nets train as separate runs there (`stack_conv_nets`) until a measurement says otherwise.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

CONV_MODELS = ("resnet18", "resnet101", "vgg16")


def stack_conv_nets(device: str | torch.device) -> bool:
    """Whether seeds of a conv net train stacked on `device`: on CUDA yes, on the CPU as separate runs."""
    return torch.device(device).type == "cuda"


class StackedConv(nn.Module):
    """Seeds' conv nets stacked along a leading dimension; `forward` maps (K, B, C, H, W) to (K, B, classes).

    Parameters are kept in the ordinary model's order (one optimizer over `stack` holds per-seed state
    that slices into an ordinary optimizer's exactly); buffers (BatchNorm running statistics and counts)
    are stacked the same way and follow `train()` / `eval()` as the ordinary model's do.
    """

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        kinds = {type(m) for m in models}
        if len(kinds) != 1:
            raise TypeError(f"seeds of one architecture only, got {sorted(k.__name__ for k in kinds)}")
        params, buffers = stack_module_state(models)
        self.names, self.buffer_names = list(params), list(buffers)
        self.stack = nn.ParameterList(nn.Parameter(params[name].detach().contiguous()) for name in self.names)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer{i}", buffers[name].contiguous())
        self.seeds = len(models)
        # a weightless copy to call functionally; kept out of the module tree (its meta tensors are no state)
        object.__setattr__(self, "_template", copy.deepcopy(models[0]).to("meta"))

    def train(self, mode: bool = True) -> StackedConv:
        super().train(mode)
        self._template.train(mode)
        return self

    def named_stacks(self) -> dict[str, nn.Parameter]:
        """Ordinary parameter name -> its (K, ...) stacked tensor."""
        return dict(zip(self.names, self.stack, strict=True))

    def _stacked_buffers(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"buffer{i}") for i, name in enumerate(self.buffer_names)}

    @torch.no_grad()
    def copy_into(self, k: int, model: nn.Module) -> None:
        """Write seed k's weights and buffers into its ordinary model (for measuring, checkpoints and events)."""
        params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
        for name, stacked in self.named_stacks().items():
            params[name].copy_(stacked[k])
        for name, stacked in self._stacked_buffers().items():
            buffers[name].copy_(stacked[k])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each seed's logits for its own inputs; training mode updates each seed's running statistics."""
        template = self._template

        def one(params: dict, buffers: dict, inputs: torch.Tensor) -> torch.Tensor:
            return functional_call(template, (params, buffers), (inputs,))

        return vmap(one, randomness="error")(self.named_stacks(), self._stacked_buffers(), x)

    def loss_and_gradients(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each seed's mean cross-entropy and (K, B, classes) logits, with the gradients written into `.grad`.

        Through autograd (the conv layers have no hand-written pass): the sum of the seeds' batch means
        is differentiated once, so seed k's gradient is its own loss's.
        """
        with torch.enable_grad():
            logits = self(x)
            losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
            losses = losses.view(self.seeds, -1).mean(1)
            for param in self.stack:
                param.grad = None
            losses.sum().backward()
        return losses.detach(), logits.detach()
