"""Ways to dodge sparse double descent: distillation from the dense network or from a sparse teacher, and
entropy early stopping.

All are training options (`training.distill_weight`, `training.distill_teacher`, `training.early_stop`);
weight decay, the other antidote, is the optimizer's own `training.weight_decay`. A sparse teacher is the
level that a noisy-label selection rule (`training.distill_rule`, see `sddlab.selection`) keeps from the
run of the same config without distillation (its plain twin, run first), so no clean label is ever read.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from sddlab.config import Config, TrainingConfig
from sddlab.errors import ConfigError, SddError
from sddlab.metrics import eval_mode
from sddlab.selection import pick_level
from sddlab.store import RunStore

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


DISTILLATION_FIELDS = ("distill_weight", "distill_temperature", "distill_teacher", "distill_rule")


def teacher_config(config: Config) -> Config | None:
    """The config whose run holds a sparse teacher: `config` without distillation (its plain twin, the same
    run directory as the run without any antidote); None unless `training.distill_teacher` is sparse."""
    training = config.training
    if training.distill_weight == 0 or training.distill_teacher != "sparse":
        return None
    defaults = {f"training.{name}": TrainingConfig.model_fields[name].default for name in DISTILLATION_FIELDS}
    return config.with_overrides(defaults)


def teacher_level(table: pd.DataFrame, rule: str, noise_rate: float) -> int:
    """The level of the teacher run's level table that the noisy-label `rule` keeps; `noise_rate` is the
    configured rate (what the noise-floor rule is given). Only `sddlab.selection.NOISY_COLUMNS` are read."""
    return pick_level(table.assign(**{"noise.rate": noise_rate}), rule)


def sparse_teacher(config: Config, model: nn.Module, results: str | Path) -> tuple[nn.Module, int]:
    """A frozen copy of `model` holding the teacher level's final weights (pruned weights at zero), and that
    level; the teacher run (`teacher_config`) must be finished in `results`."""
    twin = teacher_config(config)
    if twin is None:
        raise ConfigError("training.distill_teacher", config.training.distill_teacher,
                          "sparse, with distill_weight > 0")
    run_dir = Path(results) / twin.run_name()
    store = RunStore(run_dir) if (run_dir / "config.json").exists() else None
    table = store.table() if store is not None else None
    if table is None or len(table) < twin.experiment.levels + 1:
        raise SddError(f"the sparse teacher's run {run_dir} is not finished: run its config first "
                       "(sddlab.run does so before a run that needs it)")
    level = teacher_level(table, config.training.distill_rule, config.noise.rate)
    device = next(model.parameters()).device
    mask, weights = store.load_level_state(level, device)
    teacher = copy.deepcopy(model).requires_grad_(False).eval()
    teacher.load_state_dict(weights)
    with torch.no_grad():
        parameters = dict(teacher.named_parameters())
        for name, keep in mask.items():
            parameters[name].mul_(keep.to(parameters[name].dtype))
    return teacher, level


def distillation_for(config: Config, model: nn.Module, level: int,
                     dense_weights: Callable[[], Mapping[str, torch.Tensor]], results: str | Path) -> LossFn | None:
    """The training loss of a level under `training.distill_*`: None without distillation; from the run's
    own trained dense network (`dense_weights()`) at levels >= 1; from a sparse teacher at every level."""
    training = config.training
    if training.distill_weight == 0 or (level == 0 and training.distill_teacher == "dense"):
        return None
    if training.distill_teacher == "sparse":
        teacher, _ = sparse_teacher(config, model, results)
        return distillation_loss(teacher, training.distill_weight, training.distill_temperature)
    return level_loss(training, model, dense_weights())


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
