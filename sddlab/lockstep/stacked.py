"""K fully connected networks of one architecture held as one stacked model (batched matmuls over seeds).

Parameter k of every stacked tensor is seed k's; the parameter order is the ordinary model's, so one
optimizer over the stack keeps per-seed state that slices into an ordinary optimizer's state exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from sddlab.config import Config

LOCKSTEP_MODELS = ("mlp", "lenet-300-100")  # conv nets (BatchNorm buffers) train as separate runs


def supports_lockstep(config: Config) -> bool:
    """Whether seeds of this config can train stacked: the MLP family with the plain loss and no early
    stopping. Others (conv nets, distillation, entropy early stopping) fall back to separate runs."""
    training = config.training
    return config.model.name in LOCKSTEP_MODELS and training.distill_weight == 0 and training.early_stop == "none"


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
        self._buffers: dict[tuple, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

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
        return self._activations(x)[-1]

    def _activations(self, x: torch.Tensor, out: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Every layer's input and the logits: what the hand-written backward pass needs (into `out`)."""
        h, last = x.flatten(2), len(self.layers) - 1
        activations = [h]
        for i in range(len(self.layers)):
            weight, bias = self.stack[2 * i], self.stack[2 * i + 1]
            if out is None:
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            else:
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2), out=out[i])
            if i < last:
                h = torch.relu_(h)
            activations.append(h)
        return activations

    def _workspace(self, x: torch.Tensor, batch: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Activation and back-propagated gradient buffers for a batch size, made once and reused.

        At K = 4 a hidden layer's (K, 64, 256) float32 activations are 256 kB, above glibc's mmap
        threshold, so fresh tensors every step would each cost a map, page faults and an unmap.
        """
        key = (batch, x.dtype, x.device)
        if key not in self._buffers:
            weights = self.stack[0::2]
            shape = [(self.seeds, batch, w.shape[1]) for w in weights]
            self._buffers[key] = ([torch.empty(s, dtype=x.dtype, device=x.device) for s in shape],
                                  [torch.empty(self.seeds, batch, w.shape[2], dtype=x.dtype, device=x.device)
                                   for w in weights])
        return self._buffers[key]

    @torch.no_grad()
    def loss_and_gradients(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each seed's mean cross-entropy and logits, with the gradients written into `.grad` by hand.

        The same arithmetic as autograd through `forward` (softmax minus one-hot over the batch, then
        two batched matmuls a layer), without the autograd graph, whose per-operation cost dominates
        these small steps on a CPU. The logits returned live in a reused buffer: read them before the
        next call.
        """
        batch = targets.shape[1]
        outputs, backprop = self._workspace(x, batch)
        activations = self._activations(x, outputs)
        logits = activations[-1]
        log_probs = torch.log_softmax(logits, 2)
        picked = targets.unsqueeze(2)
        losses = log_probs.gather(2, picked).mean((1, 2)).neg_()
        grad = log_probs.exp_().scatter_add_(2, picked, torch.full_like(picked, -1, dtype=logits.dtype))
        grad.div_(batch)
        for i in reversed(range(len(self.layers))):
            weight, bias = self.stack[2 * i], self.stack[2 * i + 1]
            if weight.grad is None:
                weight.grad, bias.grad = torch.empty_like(weight), torch.empty_like(bias)
            torch.bmm(grad.transpose(1, 2), activations[i], out=weight.grad)
            torch.sum(grad, 1, out=bias.grad)
            if i > 0:
                back = torch.bmm(grad, weight, out=backprop[i])
                grad = torch.ops.aten.threshold_backward.grad_input(back, activations[i], 0, grad_input=back)
        return losses, logits


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
