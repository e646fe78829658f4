"""Ways to dodge sparse double descent: distillation from the dense network, and entropy early stopping.

Both are training options (`training.distill_weight`, `training.early_stop`); weight decay, the third
antidote, is the optimizer's own `training.weight_decay`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from sddlab.config import TrainingConfig
from sddlab.errors import ConfigError
from sddlab.metrics import eval_mode

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, inputs, targets) -> loss

PROBE_SIZE = 512  # training examples whose hidden units' on/off states give the entropy


def cross_entropy(logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The plain training loss: mean cross-entropy on the (noisy) labels."""
    return F.cross_entropy(logits, targets)


def distillation_loss(teacher: nn.Module, weight: float, temperature: float) -> LossFn:
    """(1 − w)·CE(noisy labels) + w·T²·KL(teacher_T ‖ student_T), the teacher frozen in eval mode.

    The T² factor keeps the soft term's gradient on the scale of the hard one (Hinton et al., 2015).
    """
    teacher.requires_grad_(False).eval()  # a private frozen copy: eval mode once, not per batch

    def loss(logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = F.log_softmax(teacher(inputs).float() / temperature, dim=1)
        student = F.log_softmax(logits.float() / temperature, dim=1)
        kl = F.kl_div(student, soft, reduction="batchmean", log_target=True)
        return (1 - weight) * F.cross_entropy(logits, targets) + weight * temperature**2 * kl

    return loss


def level_loss(training: TrainingConfig, model: nn.Module, dense_weights: Mapping[str, torch.Tensor]) -> LossFn:
    """The distillation loss of a pruned level: a frozen copy of `model` holding the trained dense weights."""
    teacher = copy.deepcopy(model)
    teacher.load_state_dict(dict(dense_weights))
    return distillation_loss(teacher, training.distill_weight, training.distill_temperature)


class EarlyStopped(Exception):
    """Raised at an epoch end when entropy early stopping ends a level's training."""

    def __init__(self, iteration: int):
        super().__init__(f"early stop at iteration {iteration}")
        self.iteration = iteration


def check_entropy_model(model: nn.Module) -> None:
    """Entropy early stopping reads the outputs of `nn.ReLU` modules; a model without any is refused."""
    if not any(isinstance(module, nn.ReLU) for module in model.modules()):
        raise ConfigError("training.early_stop", "entropy", f"none for {type(model).__name__} (it has no ReLU modules)")


@torch.no_grad()
def activation_entropy(model: nn.Module, probe: torch.Tensor) -> float:
    """Mean binary entropy (bits) of each hidden unit's on/off state over the probe batch, in eval mode.

    A unit on for a share p of the examples contributes H(p); 1 bit is a unit that splits the probe in
    half, 0 one that is always on or always off.
    """
    outputs: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda _m, _i, out: outputs.append((out > 0).flatten(1).float().mean(0)))
             for module in model.modules() if isinstance(module, nn.ReLU)]
    try:
        with eval_mode(model):
            model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    p = torch.cat(outputs).double().clamp(1e-12, 1 - 1e-12)
    return float((-(p * p.log2()) - (1 - p) * (1 - p).log2()).mean())


class EntropyStop:
    """Says when a level's training should end: the entropy stayed within a relative tolerance of its
    value `patience` epochs ago for each of those epochs (the representation stopped changing)."""

    def __init__(self, training: TrainingConfig, history: list[float] | None = None):
        self.patience, self.tolerance = training.early_stop_patience, training.early_stop_tolerance
        self.history = list(history or [])

    def update(self, entropy: float) -> bool:
        """Record this epoch's entropy; True when training should stop now."""
        self.history.append(entropy)
        if len(self.history) <= self.patience:
            return False
        anchor = self.history[-self.patience - 1]
        scale = max(abs(anchor), 1e-12)
        return all(math.isfinite(h) and abs(h - anchor) / scale < self.tolerance for h in self.history[-self.patience:])
