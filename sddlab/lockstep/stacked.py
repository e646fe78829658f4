"""K fully connected networks of one architecture held as one stacked model (batched matmuls over seeds).

Parameter k of every stacked tensor is seed k's; the parameter order is the ordinary model's, so one
optimizer over the stack keeps per-seed state that slices into an ordinary optimizer's state exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from sddlab.config import ModelConfig

LOCKSTEP_MODELS = ("mlp", "lenet-300-100")  # conv nets (BatchNorm buffers) train as separate runs


def supports_lockstep(model: ModelConfig) -> bool:
    """Whether seeds of this model can train stacked (the MLP family); others fall back to separate runs."""
    return model.name in LOCKSTEP_MODELS


def _layers(model: nn.Module) -> list[str]:
    """The Linear layers of a flatten-Linear-ReLU-...-Linear network, in forward order."""
    kinds = (nn.Linear, nn.ReLU, nn.ModuleList)
    others = [name for name, m in model.named_modules() if name and not isinstance(m, kinds)]
    if others or list(model.buffers()):
        raise TypeError(f"{type(model).__name__} is not a plain MLP; lockstep training needs one")
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


class StackedMLP(nn.Module):
    """Seeds' MLPs stacked along a leading dimension; `forward` maps (K, B, ...) inputs to (K, B, C) logits."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.layers = _layers(models[0])
        self.names = [name for name, _ in models[0].named_parameters()]
        expected = [f"{layer}.{kind}" for layer in self.layers for kind in ("weight", "bias")]
        if self.names != expected:
            raise TypeError(f"unexpected parameters {self.names} (need {expected})")
        self.stack = nn.ParameterList(
            nn.Parameter(torch.stack([dict(m.named_parameters())[name].detach() for m in models]).clone())
            for name in self.names)
        self.seeds = len(models)

    def named_stacks(self) -> dict[str, nn.Parameter]:
        """Ordinary parameter name -> its (K, ...) stacked tensor."""
        return dict(zip(self.names, self.stack, strict=True))

    @torch.no_grad()
    def copy_into(self, k: int, model: nn.Module) -> None:
        """Write seed k's weights into its ordinary model (for measuring, checkpoints and events)."""
        params = dict(model.named_parameters())
        for name, stacked in self.named_stacks().items():
            params[name].copy_(stacked[k])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2)
        last = len(self.layers) - 1
        for i in range(len(self.layers)):
            weight, bias = self.stack[2 * i], self.stack[2 * i + 1]
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            if i < last:
                h = torch.relu(h)
        return h


def slice_optimizer_state(state: dict, k: int) -> dict:
    """Seed k's part of a stacked optimizer's `state_dict()`: the state of an ordinary optimizer."""
    return {
        "state": {index: {key: (value[k].clone() if isinstance(value, torch.Tensor) and value.dim() > 0 else value)
                          for key, value in values.items()} for index, values in state["state"].items()},
        "param_groups": state["param_groups"],
    }


def stack_optimizer_states(states: list[dict]) -> dict:
    """The inverse of `slice_optimizer_state`: K ordinary optimizers' states as one stacked state."""
    first = states[0]
    stacked = {}
    for index, values in first["state"].items():
        stacked[index] = {
            key: (torch.stack([s["state"][index][key] for s in states])
                  if isinstance(value, torch.Tensor) and value.dim() > 0 else value)
            for key, value in values.items()}
    return {"state": stacked, "param_groups": first["param_groups"]}
