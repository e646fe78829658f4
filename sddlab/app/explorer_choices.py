"""The explorer's choices as users name them (data set, architecture, noise, sparsity schedule, ...) and the
one place that turns them into a `Config`, with every error worded after the control the user touched.

The widgets (`explorer_controls`) and the headless `explore` notebook (papermill parameters) both go
through `to_config`, so a teacher's parameters and a student's clicks are validated the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sddlab.config import Config, ModelConfig, choices
from sddlab.data import DATASETS, vision
from sddlab.data.noise import noise_limit
from sddlab.duration import Duration
from sddlab.errors import ConfigError, SddError
from sddlab.models import MODELS, build_model, prunable_names
from sddlab.models.build import resolve_ignored
from sddlab.presets import list_presets

SCHEDULES = choices("pruning.strategy")  # iterative, oneshot
MAX_EPOCHS, MAX_LEVELS = 10_000, 100
MAX_SEEDS = 8  # seeds run side by side (lockstep) or one after another; more would not fit the figure's band

# the label each control shows; config fields the user reaches through a control are reported by it
LABELS = {
    "data_set": "data set", "model": "architecture", "hidden": "hidden sizes", "width": "width",
    "noise_type": "noise type", "noise_rate": "noise rate", "schedule": "schedule",
    "fraction": "prune / level", "levels": "levels", "final_sparsity": "final sparsity",
    "score": "criterion", "scope": "scope", "mode": "retraining", "epochs": "epochs / level", "seed": "seed",
    "seeds": "seeds",
}
FIELD_LABELS = {
    "data.name": "data set", "model.name": "architecture", "model.hidden": "hidden sizes", "model.width": "width",
    "noise.type": "noise type", "noise.rate": "noise rate", "pruning.fraction": "prune / level",
    "pruning.strategy": "schedule", "experiment.levels": "levels", "pruning.score": "criterion",
    "pruning.scope": "scope", "retraining.mode": "retraining", "training.duration": "epochs / level",
    "experiment.seed": "seed",
}


class ChoiceError(SddError):
    """A control holds a value that is not allowed: '<label> <message>', e.g. 'levels must be a whole number ...'."""

    def __init__(self, label: str, message: str):
        self.label = label
        super().__init__(f"{label} {message}")


@dataclass(frozen=True)
class Choices:
    """What the explorer's controls hold; `schedule='oneshot'` reaches `final_sparsity` in `levels` steps.

    `seeds` is how many runs the explorer starts (seed, seed + 1, ...); no config field, so `to_config` ignores it.
    """

    data_set: str
    model: str
    hidden: tuple[int, ...]
    width: float
    noise_type: str
    noise_rate: float
    schedule: str
    fraction: float
    levels: int
    final_sparsity: float
    score: str
    scope: str
    mode: str
    epochs: int
    seed: int
    seeds: int = 1

    def updated(self, **changes: Any) -> Choices:
        return replace(self, **changes)


def choices_of(config: Config) -> Choices:
    """The controls' values for a config (a preset): an iteration-count duration shows as whole hundreds."""
    duration = config.training.duration
    epochs = duration.count if duration.unit == "ep" else max(1, duration.count // 100)
    levels = config.experiment.levels
    return Choices(
        data_set=config.data.name, model=config.model.name, hidden=tuple(config.model.hidden), width=config.model.width,
        noise_type=config.noise.type, noise_rate=config.noise.rate, schedule=config.pruning.strategy,
        fraction=config.pruning.fraction, levels=levels,
        final_sparsity=round(reached_sparsity(config.pruning.fraction, levels), 6),
        score=config.pruning.score, scope=config.pruning.scope, mode=config.retraining.mode, epochs=epochs,
        seed=config.experiment.seed,
    )


def reached_sparsity(fraction: float, levels: int) -> float:
    """The sparsity of the last level: 1 - (1 - fraction)^levels (iterative and one-shot alike)."""
    return 1.0 - (1.0 - fraction) ** levels


def oneshot_fraction(final_sparsity: float, levels: int) -> float:
    """The per-level fraction whose one-shot targets 1 - (1 - f)^L (L = 1..levels) end at `final_sparsity`."""
    return round(1.0 - (1.0 - final_sparsity) ** (1.0 / levels), 6)


def oneshot_targets(fraction: float, levels: int) -> list[float]:
    """The target sparsity of every one-shot level 1..levels."""
    return [reached_sparsity(fraction, level) for level in range(1, levels + 1)]


@lru_cache(maxsize=64)
def fitting_models(data: str) -> tuple[str, ...]:
    """The registered architectures that build on `data`'s input shape (tried once at 1/16 width, cached)."""
    spec = DATASETS.lookup(data)
    fit = []
    for name in sorted(MODELS):
        try:
            build_model(ModelConfig(name=name, width=1 / 16), spec.input_shape, spec.num_classes, seed=0)
        except ConfigError:
            continue
        fit.append(name)
    return tuple(fit)


def has_hidden(model: str) -> bool:
    """Whether the architecture reads `model.hidden` (the MLP)."""
    return model == "mlp"


def has_width(model: str) -> bool:
    """Whether the architecture reads `model.width` (the conv nets)."""
    return model not in ("mlp", "lenet-300-100")


@lru_cache(maxsize=64)
def prunable_weights(data: str, model: str, hidden: tuple[int, ...], width: float) -> int:
    """How many weights the pruning schedule acts on for this data set and architecture."""
    spec = DATASETS.lookup(data)
    config = ModelConfig(name=model, hidden=hidden, width=width)
    built = build_model(config, spec.input_shape, spec.num_classes, seed=0)
    params = dict(built.named_parameters())
    return sum(params[name].numel() for name in prunable_names(built, resolve_ignored(config, built)))


def parse_hidden(text: str | Any) -> tuple[int, ...]:
    """'256, 256' (or a list) as hidden sizes; anything else is the hidden-sizes control's one error."""
    parts = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text)
    try:
        sizes = tuple(int(part) for part in parts)
        valid = all(str(part).isdigit() or isinstance(part, int) for part in parts)
    except (TypeError, ValueError):
        sizes, valid = (), False
    if not sizes or not valid or any(size <= 0 for size in sizes):
        raise ChoiceError(LABELS["hidden"], f"must be positive whole numbers separated by commas, e.g. 256,256 "
                          f"(got {text!r})")
    return sizes


def _whole(label: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ChoiceError(label, f"must be a whole number from {low} to {high} (got {value!r})")


def _open_unit(label: str, value: Any, closed_low: bool = False) -> None:
    low = "must be at least 0" if closed_low else "must be above 0"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value >= 0 if closed_low else value > 0) or value >= 1:
        raise ChoiceError(label, f"{low} and below 1 (got {value!r})")


def _one_of(label: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ChoiceError(label, f"must be one of {', '.join(map(str, allowed))} (got {value!r})")


def check(choices: Choices) -> None:
    """Every control's rule, one wording per rule; raises ChoiceError naming the first control that breaks one."""
    _one_of(LABELS["data_set"], choices.data_set, tuple(sorted(DATASETS)))
    fit = fitting_models(choices.data_set)
    if choices.model not in fit:
        raise ChoiceError(LABELS["model"], f"{choices.model!r} does not fit data set {choices.data_set} (input shape "
                          f"{DATASETS[choices.data_set].input_shape}): one of {', '.join(fit)}")
    if not (isinstance(choices.width, (int, float)) and math.isfinite(choices.width) and 0 < choices.width <= 8):
        raise ChoiceError(LABELS["width"], f"must be above 0 and at most 8 (got {choices.width!r})")
    _one_of(LABELS["schedule"], choices.schedule, SCHEDULES)
    _open_unit(LABELS["noise_rate"], choices.noise_rate, closed_low=True)
    limit = noise_limit(choices.noise_type, DATASETS[choices.data_set].num_classes)
    if limit is not None and choices.noise_rate >= limit - 1e-12:
        raise ChoiceError(LABELS["noise_rate"], f"{choices.noise_rate:g} is at or above {limit:.3g} for "
                          f"{choices.noise_type} noise on {DATASETS[choices.data_set].num_classes} classes, where the "
                          "true class is no longer the most likely training label; choose a lower rate")
    _whole(LABELS["levels"], choices.levels, 0 if choices.schedule == "iterative" else 1, MAX_LEVELS)
    if choices.schedule == "iterative":
        _open_unit(LABELS["fraction"], choices.fraction)
    else:
        _open_unit(LABELS["final_sparsity"], choices.final_sparsity)
    _whole(LABELS["epochs"], choices.epochs, 1, MAX_EPOCHS)
    _whole(LABELS["seeds"], choices.seeds, 1, MAX_SEEDS)
    _whole(LABELS["seed"], choices.seed, 0, 2**31 - choices.seeds)  # the last seed, seed + seeds - 1, fits too


def to_config(base: Config, choices: Choices) -> Config:
    """`base` (a preset) with the choices that differ from its own applied; unchanged choices keep it exact."""
    check(choices)
    own = choices_of(base)
    overrides: dict[str, Any] = {}
    pairs = {
        "data_set": "data.name", "model": "model.name", "noise_type": "noise.type", "noise_rate": "noise.rate",
        "score": "pruning.score", "scope": "pruning.scope", "mode": "retraining.mode", "seed": "experiment.seed",
        "levels": "experiment.levels", "schedule": "pruning.strategy",
    }
    for key, path in pairs.items():
        if getattr(choices, key) != getattr(own, key):
            overrides[path] = getattr(choices, key)
    if has_hidden(choices.model) and tuple(choices.hidden) != tuple(base.model.hidden):
        overrides["model.hidden"] = list(choices.hidden)
    if has_width(choices.model) and choices.width != base.model.width:
        overrides["model.width"] = choices.width
    fraction = choices.fraction if choices.schedule == "iterative" else oneshot_fraction(
        choices.final_sparsity, choices.levels)
    if fraction != base.pruning.fraction:
        overrides["pruning.fraction"] = fraction
    if choices.epochs != own.epochs:
        overrides["training.duration"] = str(Duration.epochs(choices.epochs))
    try:
        return base.with_overrides(overrides) if overrides else base
    except ConfigError as error:  # a rule of the config itself, reported by the control that reaches it
        label = FIELD_LABELS.get(error.field, error.field)
        raise ChoiceError(label, f"must be {error.allowed} (got {error.value!r})") from None


def from_parameters(base: Config, **parameters: Any) -> Config:
    """A config from notebook parameters named like the controls (None keeps the preset's value).

    `seeds` is checked like the control (1 to MAX_SEEDS) but is no part of the config: pass it on to the explorer.
    """
    known = {field.name for field in fields(Choices)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ChoiceError("parameter", f"{unknown[0]!r} is not one of {', '.join(sorted(known))}")
    changes = {key: value for key, value in parameters.items() if value is not None}
    if "hidden" in changes:
        changes["hidden"] = parse_hidden(changes["hidden"])
    chosen = choices_of(base).updated(**changes)
    if "final_sparsity" not in changes and chosen.schedule == "oneshot":  # keep the preset's reach
        chosen = chosen.updated(final_sparsity=round(reached_sparsity(chosen.fraction, chosen.levels), 6))
    return to_config(base, chosen)


def differences(base: Config, config: Config) -> list[str]:
    """'label: preset value -> chosen value' for every control-reachable field the config changes."""
    before, after = base.flat(), config.flat()
    out = []
    for path, label in FIELD_LABELS.items():
        if before.get(path) != after.get(path):
            out.append(f"{label} {before.get(path)} → {after.get(path)}")
    return out


def offered_presets(data_dir: str | Path, keep: str | None = None) -> dict[str, Config]:
    """The presets the explorer lists: every one, except those on a data set that a system package provides
    (Fashion-MNIST: Debian's dataset-fashion-mnist) while neither that package nor a copy in `data_dir` is
    there; `keep` (the preset asked for) is listed either way, so its run can say what is missing."""
    missing = {name for name in vision.SYSTEM_COPIES if not vision.idx_set_on_disk(name, Path(data_dir))}
    return {name: config for name, config in list_presets().items() if config.data.name not in missing or name == keep}


def as_parameters(choices: Choices) -> dict[str, Any]:
    """The choices as papermill parameters of the `explore` notebook (what a teacher would pass)."""
    values = asdict(choices)
    values["hidden"] = ",".join(map(str, choices.hidden))
    return values
