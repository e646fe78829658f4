"""K fully connected networks of one architecture held as one stacked model (batched matmuls over seeds).

Parameter k of every stacked tensor is seed k's; the parameter order is the ordinary model's, so one
optimizer over the stack keeps per-seed state that slices into an ordinary optimizer's state exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from sddlab.config import Config
from sddlab.lockstep.stacked_conv import CONV_MODELS, StackedConv, stack_conv_nets

LOCKSTEP_MODELS = ("mlp", "lenet-300-100")  # on every device; conv nets stack on CUDA only (`stack_conv_nets`)


def supports_lockstep(config: Config, device: str | torch.device = "cpu") -> bool:
    """Whether seeds of this config can train stacked on `device`: the MLP family anywhere, conv nets on
    CUDA, with the plain loss and no early stopping. Others (conv nets on the CPU, distillation, entropy
    early stopping) fall back to separate runs."""
    training = config.training
    name = config.model.name
    stackable = name in LOCKSTEP_MODELS or (name in CONV_MODELS and stack_conv_nets(device))
    return stackable and training.distill_weight == 0 and training.early_stop == "none"


def stack_models(models: list[nn.Module]) -> StackedMLP | StackedConv:
    """The seeds' models as one stacked model: the hand-written MLP step for plain MLPs, `torch.func` else."""
    try:
        return StackedMLP(models)
    except TypeError:  # not a plain MLP: conv layers, BatchNorm buffers
        return StackedConv(models)


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
        self._buffers: dict[tuple, _Workspace] = {}
        # (weight, bias) of each layer as plain tensors: ParameterList indexing costs microseconds a call
        self._pairs = [(self.stack[2 * i], self.stack[2 * i + 1]) for i in range(len(self.layers))]

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
        """(K, B, ...) inputs to (K, B, C) logits through autograd (the bf16 path and the reference)."""
        h, last = x.flatten(2), len(self.layers) - 1
        for i in range(len(self.layers)):
            h = torch.baddbmm(self.stack[2 * i + 1].unsqueeze(1), h, self.stack[2 * i].transpose(1, 2))
            if i < last:
                h = torch.relu(h)
        return h

    def _workspace(self, x: torch.Tensor, batch: int) -> _Workspace:
        """Activation and gradient buffers for a batch size, made once and reused.

        At K = 4 a hidden layer's (K, 64, 256) float32 activations are 256 kB, above glibc's mmap
        threshold, so fresh tensors every step would each cost a map, page faults and an unmap.
        """
        key = (batch, x.dtype, x.device)
        if key not in self._buffers:
            self._buffers[key] = _Workspace([weight for weight, _ in self._pairs], self.seeds, batch, x.dtype, x.device)
        return self._buffers[key]

    @torch.no_grad()
    def loss_and_gradients(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each seed's mean cross-entropy and (K, B, C) logits, with the gradients written into `.grad` by hand.

        The same arithmetic as autograd through `forward` (softmax minus one-hot over the batch, then
        two batched matmuls a layer), without the autograd graph, whose per-operation cost dominates
        these small steps on a CPU. Activations are kept feature-major, (K, features, B): the forward
        product W @ a then reads both operands as stored, which ran 20-25 % faster than a @ W^T through
        a transposed view on the 2-core CPU; the backward products (g @ a^T, W^T @ g) take one
        transposed operand in either layout. The logits returned are a view of a reused buffer: read
        them before the next call.
        """
        batch = targets.shape[1]
        space = self._workspace(x, batch)
        inputs = x.flatten(2)  # (K, B, in): its transpose is the first layer's feature-major input
        activations = [inputs.transpose(1, 2)]
        last = len(self.layers) - 1
        for i, (weight, bias) in enumerate(self._pairs):
            h = torch.baddbmm(bias.unsqueeze(2), weight, activations[i], out=space.outputs[i])
            activations.append(h.relu_() if i < last else h)
        logits = activations[-1]  # (K, C, B)
        log_probs = torch.log_softmax(logits, 1)
        picked = targets.unsqueeze(1)
        losses = log_probs.gather(1, picked).sum((1, 2)).mul_(-1.0 / batch)
        grad = log_probs.exp_().mul_(1.0 / batch).scatter_add_(1, picked, space.minus)
        for i in reversed(range(last + 1)):
            weight, bias = self._pairs[i]
            if weight.grad is None:
                weight.grad, bias.grad = torch.empty_like(weight), torch.empty_like(bias)
            torch.bmm(grad, inputs if i == 0 else activations[i].transpose(1, 2), out=weight.grad)
            torch.sum(grad, 2, out=bias.grad)
            if i > 0:
                back = torch.bmm(weight.transpose(1, 2), grad, out=space.backprop[i])
                grad = torch.ops.aten.threshold_backward.grad_input(back, activations[i], 0, grad_input=back)
        return losses, logits.transpose(1, 2)


class _Workspace:
    """One batch size's reused buffers: each layer's feature-major output and propagated gradient."""

    def __init__(self, weights: list[torch.Tensor], seeds: int, batch: int, dtype: torch.dtype, device: torch.device):
        self.outputs = [torch.empty(seeds, w.shape[1], batch, dtype=dtype, device=device) for w in weights]
        self.backprop = [torch.empty(seeds, w.shape[2], batch, dtype=dtype, device=device) for w in weights]
        # -1 / batch at every target: the one-hot part of the mean cross-entropy's gradient
        self.minus = torch.full((seeds, 1, batch), -1.0 / batch, dtype=dtype, device=device)


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
