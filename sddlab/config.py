"""Typed, validated experiment configuration with a stable hash that names the run directory."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sddlab.catalog import Catalog
from sddlab.data import DATASETS
from sddlab.duration import Duration, DurationField
from sddlab.errors import ConfigError
from sddlab.models import MODELS
from sddlab.selection import RULES

MAX_HIDDEN_LAYERS = 64  # a plain MLP deeper than this does not train; a list of thousands is a typo


def _neutral(default: Any, **kwargs: Any) -> Any:
    """A field left out of the hash while it holds its default, so adding it renames no old run."""
    return Field(default, json_schema_extra={"neutral": True}, **kwargs)


def _first_error(error: ValidationError, prefix: str = "") -> ConfigError:
    detail = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in detail["loc"] if not str(part).startswith("function-"))
    inner = (detail.get("ctx") or {}).get("error")
    if isinstance(inner, ConfigError):  # a nested section (its own __init__) already named its field
        return ConfigError(prefix + ".".join(part for part in (field, inner.field) if part), inner.value, inner.allowed)
    allowed = detail["msg"].removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden":
        allowed = "unknown field"
    return ConfigError(prefix + field, detail.get("input"), allowed)


class _Section(BaseModel):
    """Frozen, strict section: unknown fields and bad values fail on construction with one line."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise _first_error(error) from None

    @model_validator(mode="before")
    @classmethod
    def _no_true_or_false_for_a_number(cls, data: Any) -> Any:
        """pydantic reads true as 1 for a number field; `noise.rate=true` is a slip, not a rate of 1."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                kinds = set(get_args(field.annotation) or (field.annotation,)) - {type(None)} if field else set()
                if isinstance(value, bool) and kinds and kinds <= {int, float}:  # int, float, and either or None
                    raise ConfigError(name, value, "a number, not true or false")
        return data


def _registered(catalog: Catalog) -> AfterValidator:
    """A validator accepting only the names in `catalog` (data sets, models)."""

    def check(name: str) -> str:
        if name not in catalog:
            raise ValueError(catalog.allowed())
        return name

    return AfterValidator(check)


class DataConfig(_Section):
    name: Annotated[str, _registered(DATASETS)] = "digits"
    subset: int | None = _neutral(None, gt=0, description="keep this many training examples (seeded)")
    holdout: float = _neutral(0.0, ge=0.0, le=0.5, description="share of the noisy training set held out, never "
                              "trained on: a validation split whose labels are as noisy as the training labels")


NoiseType = Literal["random", "symmetric", "pairflip", "asymmetric"]


class NoiseConfig(_Section):
    type: NoiseType = "symmetric"
    rate: float = Field(0.0, ge=0.0, lt=1.0, description="nominal fraction of corrupted training labels")
    asymmetric_map: Literal["classes", "official"] = _neutral(
        "classes", description="asymmetric noise: the data set's class map, or the paper's code's (CIFAR-100: "
        "blocks of five consecutive class indices)")


class ModelConfig(_Section):
    name: Annotated[str, _registered(MODELS)] = "mlp"
    hidden: tuple[int, ...] = Field((256, 256), description="hidden widths (MLP only)")
    init: Literal["kaiming_normal", "default"] = "kaiming_normal"
    ignored: tuple[str, ...] | None = Field(None, description="layers never pruned; None = the model's default")
    width: float = _neutral(1.0, gt=0, description="width multiplier (conv nets)")
    bn_init: Literal["uniform", "default"] = _neutral("uniform", description="BatchNorm gamma ~ U(0,1)")

    @field_validator("hidden", mode="wrap")
    @classmethod
    def _hidden_widths(cls, hidden: Any, handler: Any) -> tuple[int, ...]:
        """One width alone is one layer; every width positive, at most MAX_HIDDEN_LAYERS of them."""
        hidden = (hidden,) if isinstance(hidden, int) and not isinstance(hidden, bool) else hidden
        if not isinstance(hidden, (list, tuple)):
            raise ValueError(f"a list of positive integers, at most {MAX_HIDDEN_LAYERS} of them, e.g. 256,256 or [128]")
        widths = handler(hidden)
        if any(width <= 0 for width in widths) or len(widths) > MAX_HIDDEN_LAYERS:
            raise ValueError(f"positive integers, at most {MAX_HIDDEN_LAYERS} of them (hidden layers)")
        return widths


class TrainingConfig(_Section):
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = Field(128, gt=0)
    duration: DurationField = Duration(150, "ep")
    schedule: Literal["constant", "multistep", "cosine"] = "constant"
    milestones: tuple[DurationField, ...] = ()
    gamma: float = Field(0.1, gt=0)
    warmup: DurationField = Duration(0, "it")
    precision: Literal["fp32", "bf16"] = _neutral("fp32", description="bf16: autocast forward passes (any device)")
    distill_weight: float = _neutral(0.0, ge=0.0, le=1.0, description="weight of distillation from the teacher "
                                     "that distill_teacher names; 0 = off")
    distill_temperature: float = _neutral(4.0, gt=0.0, description="softmax temperature of that distillation")
    distill_teacher: Literal["dense", "sparse"] = _neutral(
        "dense", description="dense: the run's own trained dense network, at levels >= 1; sparse: the level "
        "distill_rule keeps from this config's run without distillation (run first), at every level")
    distill_rule: str = _neutral("holdout-smoothed", description="the noisy-label selection rule "
                                 "(sddlab.selection.RULES) that picks the sparse teacher's level")
    early_stop: Literal["none", "entropy"] = _neutral(
        "none", description="entropy: end a level's training once the entropy of the hidden units' on/off "
        "states stops changing (the rest of the schedule is skipped)")
    early_stop_patience: int = _neutral(5, gt=0, description="epochs the entropy must stay within the tolerance")
    early_stop_tolerance: float = _neutral(0.01, gt=0.0, lt=1.0, description="relative change counted as no change")

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, duration: Duration) -> Duration:
        if duration.count <= 0:
            raise ValueError("a positive duration like '150ep' or '1000it'")
        return duration

    @field_validator("distill_rule")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        if rule not in RULES:
            raise ValueError(f"one of {', '.join(RULES)}")
        return rule

    @model_validator(mode="after")
    def _sparse_teacher_distils(self) -> TrainingConfig:
        if self.distill_teacher == "sparse" and self.distill_weight == 0:
            raise ConfigError("distill_teacher", self.distill_teacher, "dense unless distill_weight > 0")
        return self


class PruningConfig(_Section):
    score: Literal["magnitude", "gradient", "random"] = "magnitude"
    scope: Literal["global", "layerwise"] = "global"
    fraction: float = Field(0.2, gt=0, lt=1, description="share of the remaining prunable weights removed per level")
    strategy: Literal["iterative", "oneshot"] = _neutral(
        "iterative", description="oneshot: level L prunes the dense model's weights straight to 1 - (1-fraction)^L"
    )
    count: Literal["prunable", "official"] = _neutral(
        "prunable", description="official: the paper's code's count, ceil(fraction x (remaining + ignored)) + 1")

    @model_validator(mode="after")
    def _official_is_global(self) -> PruningConfig:
        if self.count == "official" and self.scope != "global":
            raise ConfigError("count", self.count, "prunable with scope layerwise (official is global only)")
        return self


class RetrainingConfig(_Section):
    mode: Literal["rewind", "finetune", "lr-rewind", "scratch"] = "rewind"
    rewind_point: DurationField = Duration(0, "it")
    finetune_lr: float | None = Field(None, gt=0, description="constant LR of finetune mode; None = training.lr")
    finetune_duration: DurationField | None = Field(
        None, description="length of finetune mode; None = training.duration")


class ExperimentConfig(_Section):
    levels: int = Field(30, ge=0, description="pruning levels after the dense level 0")
    seed: int = Field(0, ge=0)
    measure_on: Literal["clean", "augmented"] = _neutral(
        "clean", description="train accuracy, memorisation and gradient scores on un-augmented images, or on "
        "the augmented training stream in eval mode (the paper's code)")


class Config(_Section):
    """One sparse-double-descent experiment; its hash names the run directory."""

    name: str = Field("custom", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    data: DataConfig = DataConfig()
    noise: NoiseConfig = NoiseConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    pruning: PruningConfig = PruningConfig()
    retraining: RetrainingConfig = RetrainingConfig()
    experiment: ExperimentConfig = ExperimentConfig()

    @model_validator(mode="after")
    def _teacher_rule_has_its_columns(self) -> Config:
        rule = RULES[self.training.distill_rule]
        if self.training.distill_teacher == "sparse" and "holdout_acc_noisy" in rule.needs and self.data.holdout == 0:
            allowed = [name for name, other in RULES.items() if "holdout_acc_noisy" not in other.needs]
            raise ConfigError("training.distill_rule", rule.name, f"one of {', '.join(allowed)} without a held-out "
                              "split, or data.holdout > 0")
        return self

    # -- identity -------------------------------------------------------------------------------
    def hash_payload(self) -> dict[str, Any]:
        """Everything that changes results; neutral fields at their default are left out."""
        payload: dict[str, Any] = {}
        for section_name in _SECTIONS:
            section = getattr(self, section_name)
            values = section.model_dump(mode="json")
            for field_name, info in type(section).model_fields.items():
                extra = info.json_schema_extra or {}
                if isinstance(extra, dict) and extra.get("neutral") and getattr(section, field_name) == info.default:
                    values.pop(field_name)
            payload[section_name] = values
        return payload

    def short_hash(self) -> str:
        """A 10-hex-digit hash of the result-changing fields (name and description excluded)."""
        text = json.dumps(self.hash_payload(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def run_name(self) -> str:
        return f"{self.name}-{self.short_hash()}"

    # -- (de)serialisation ----------------------------------------------------------------------
    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls(**json.loads(text))

    def flat(self) -> dict[str, Any]:
        """Dotted field names to values (tuples as strings), for tables and indexes."""
        flat: dict[str, Any] = {"name": self.name}
        for section_name in _SECTIONS:
            for key, value in getattr(self, section_name).model_dump(mode="json").items():
                flat[f"{section_name}.{key}"] = json.dumps(value) if isinstance(value, list) else value
        return flat

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        """A copy with dotted-path overrides such as {'noise.rate': 0.2}, validated again."""
        if not isinstance(overrides, dict) or not all(isinstance(key, str) for key in overrides):
            raise ConfigError("overrides", overrides, "a dict of 'section.field': value, e.g. {'noise.rate': 0.2}")
        data = self.model_dump(mode="json")
        for path, value in overrides.items():
            parts = path.split(".")
            if len(parts) == 1 and parts[0] in ("name", "description"):
                data[parts[0]] = value
                continue
            if len(parts) != 2 or parts[0] not in _SECTIONS:
                raise ConfigError(path, value, f"section.field with section one of {', '.join(_SECTIONS)}")
            section, field = parts
            if field not in _SECTION_TYPES[section].model_fields:
                allowed = ", ".join(_SECTION_TYPES[section].model_fields)
                raise ConfigError(path, value, f"a field of {section}: {allowed}")
            data[section][field] = value
        return Config(**data)


_SECTION_TYPES: dict[str, type[_Section]] = {
    "data": DataConfig,
    "noise": NoiseConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "pruning": PruningConfig,
    "retraining": RetrainingConfig,
    "experiment": ExperimentConfig,
}
_SECTIONS = tuple(_SECTION_TYPES)


def choices(path: str) -> tuple[Any, ...]:
    """The allowed values of a dotted field with a fixed set of them, e.g. choices('pruning.score')."""
    section, field = path.split(".")
    if path == "data.name":
        return tuple(sorted(DATASETS))
    if path == "model.name":
        return tuple(sorted(MODELS))
    annotation = _SECTION_TYPES[section].model_fields[field].annotation
    values = get_args(annotation)
    if not values or not all(isinstance(value, (str, int, float, bool)) for value in values):
        raise ConfigError("field", path, "a field with a fixed set of values (a Literal or a registry name)")
    return values
