"""Config: validation on construction, JSON round trip, overrides, --set parsing, durations, stable hashes."""

from __future__ import annotations

import json

import pydantic
import pytest

import sddlab
from sddlab.assignments import parse_assignment
from sddlab.config import MAX_HIDDEN_LAYERS, Config, choices
from sddlab.duration import Duration
from sddlab.errors import ConfigError


def test_default_config_is_valid_and_frozen():
    config = Config()
    assert config.noise.rate == 0.0 and config.experiment.levels == 30
    with pytest.raises(pydantic.ValidationError):
        config.noise.rate = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"noise": {"rate": 1.5}}, "noise.rate"),
        ({"noise": {"type": "uniform"}}, "noise.type"),
        ({"training": {"lr": 0}}, "training.lr"),
        ({"training": {"duration": "10 epochs"}}, "training.duration"),
        ({"training": {"warmup": "5"}}, "training.warmup"),
        ({"model": {"hidden": [64, 0]}}, "model.hidden"),
        ({"model": {"hidden": [8] * 65}}, "model.hidden"),
        ({"noise": {"rate": True}}, "noise.rate"),
        ({"experiment": {"levels": False}}, "experiment.levels"),
        ({"pruning": {"fraction": 1.0}}, "pruning.fraction"),
        ({"experiment": {"seed": -1}}, "experiment.seed"),
        ({"training": {"epochs": 3}}, "training.epochs"),
        ({"nope": 1}, "nope"),
        ({"name": "has space"}, "name"),
    ],
)
def test_validation_on_construction_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as info:
        Config(**kwargs)
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"{field}=") and "\n" not in message


def test_one_hidden_width_is_one_layer_and_other_scalars_are_refused_with_the_form_named():
    assert Config(model={"hidden": 128}).model.hidden == (128,) == Config(model={"hidden": [128]}).model.hidden
    assert Config(model={"hidden": 128}).run_name() == Config(model={"hidden": [128]}).run_name()
    for bad in (True, "", 1.5):
        with pytest.raises(ConfigError, match=r"a list of positive integers, .* e\.g\. 256,256 or \[128\]"):
            Config(model={"hidden": bad})


def test_hidden_layers_are_capped_with_the_cap_named():
    assert len(Config(model={"hidden": [8] * MAX_HIDDEN_LAYERS}).model.hidden) == MAX_HIDDEN_LAYERS
    with pytest.raises(ConfigError, match=f"at most {MAX_HIDDEN_LAYERS} of them") as info:
        Config(model={"hidden": [8] * (MAX_HIDDEN_LAYERS + 1)})
    assert f"({MAX_HIDDEN_LAYERS + 1} items)" in str(info.value)


def test_unknown_field_says_so():
    with pytest.raises(ConfigError, match="unknown field"):
        Config(training={"epochs": 3})


@pytest.mark.parametrize("name", sorted(sddlab.list_presets()))
def test_json_round_trip_of_every_preset(name):
    config = sddlab.get_preset(name)
    again = Config.from_json(config.to_json())
    assert again == config
    assert again.short_hash() == config.short_hash()
    assert again.to_json() == config.to_json()


def test_json_round_trip_keeps_tuples_and_optionals():
    config = Config(
        model={"name": "lenet-300-100", "ignored": ["fc3"], "width": 0.5},
        training={"milestones": ["80ep", "120ep"], "betas": [0.8, 0.9], "warmup": "100it"},
        retraining={"mode": "finetune", "finetune_lr": 1e-3, "finetune_duration": "5ep"},
        data={"subset": 500},
    )
    again = Config.from_json(config.to_json())
    assert again == config and again.short_hash() == config.short_hash()
    assert tuple(map(str, again.training.milestones)) == ("80ep", "120ep")
    assert again.model.ignored == ("fc3",)


def test_with_overrides_returns_a_validated_copy():
    base = sddlab.get_preset("digits")
    changed = base.with_overrides({"noise.rate": 0.2, "model.hidden": [64, 32], "name": "mine"})
    assert changed.noise.rate == 0.2 and changed.model.hidden == (64, 32) and changed.name == "mine"
    assert base.noise.rate == 0.4 and base.model.hidden == (256, 256)  # the preset is untouched
    assert changed.training == base.training
    with pytest.raises(ConfigError) as info:
        base.with_overrides({"noise.rate": 2.0})
    assert info.value.field == "noise.rate"


@pytest.mark.parametrize(
    ("path", "field"),
    [("noise.nope", "noise.nope"), ("nope.rate", "nope.rate"), ("rate", "rate"), ("noise.rate.x", "noise.rate.x")],
)
def test_with_overrides_rejects_unknown_paths(path, field):
    with pytest.raises(ConfigError) as info:
        Config().with_overrides({path: 1})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("noise.rate=0.2", ("noise.rate", 0.2)),
        ("experiment.levels=5", ("experiment.levels", 5)),
        ("training.nesterov=true", ("training.nesterov", True)),
        ("retraining.finetune_lr=null", ("retraining.finetune_lr", None)),
        ("training.duration=150ep", ("training.duration", "150ep")),
        ("noise.type=pairflip", ("noise.type", "pairflip")),
        ("model.hidden=128,64", ("model.hidden", [128, 64])),
        ("model.hidden=[128, 64]", ("model.hidden", [128, 64])),
        ("training.milestones=80ep,120ep", ("training.milestones", ["80ep", "120ep"])),
        ("model.ignored=fc3,", ("model.ignored", ["fc3"])),
        ('name="my-run"', ("name", "my-run")),
        (" noise.rate = 0.4 ", ("noise.rate", 0.4)),
    ],
)
def test_parse_assignment(text, expected):
    assert parse_assignment(text) == expected


def test_parsed_assignments_apply_as_overrides():
    texts = ["model.hidden=128,64", "training.milestones=80ep,120ep", "noise.rate=0.2", "training.duration=10ep"]
    config = Config().with_overrides(dict(parse_assignment(text) for text in texts))
    assert config.model.hidden == (128, 64)
    assert tuple(map(str, config.training.milestones)) == ("80ep", "120ep")
    assert config.noise.rate == 0.2 and str(config.training.duration) == "10ep"


@pytest.mark.parametrize("text", ["noise.rate", "=0.2", "Noise.Rate=0.2", "noise..rate=1", "a.b.c=1"])
def test_parse_assignment_rejects_malformed(text):
    with pytest.raises(ConfigError) as info:
        parse_assignment(text)
    assert info.value.field == "--set"


@pytest.mark.parametrize(
    ("duration", "per_epoch", "iterations"),
    [("150ep", 10, 1500), ("1000it", 10, 1000), ("1ep", 19, 19), ("0it", 7, 0), ("3ep", 1, 3)],
)
def test_durations(duration, per_epoch, iterations):
    parsed = Duration.parse(duration)
    assert parsed.iterations(per_epoch) == iterations
    assert str(parsed) == duration and Duration.parse(str(parsed)) == parsed


@pytest.mark.parametrize("text", ["150", "ep", "1.5ep", "-3ep", "10 epochs", "", "10EP"])
def test_malformed_durations_name_the_expected_form(text):
    with pytest.raises(ValueError, match="'150ep'"):
        Duration.parse(text)


def test_durations_are_stored_as_text_so_hashes_and_files_are_plain_strings():
    config = Config(training={"duration": "12ep", "milestones": ["3ep", "40it"]})
    assert config.training.duration == Duration(12, "ep")
    dumped = json.loads(config.to_json())["training"]
    assert dumped["duration"] == "12ep" and dumped["milestones"] == ["3ep", "40it"]


def test_choices_are_the_validated_values():
    for path in ("noise.type", "pruning.score", "pruning.scope", "retraining.mode", "training.schedule"):
        allowed = choices(path)
        assert len(allowed) >= 2
        section, field = path.split(".")
        for value in allowed:  # every offered value is accepted ...
            assert getattr(getattr(Config().with_overrides({path: value}), section), field) == value
        with pytest.raises(ConfigError):  # ... and nothing else is
            Config().with_overrides({path: "no-such-value"})
    assert "digits" in choices("data.name") and "mlp" in choices("model.name")
    with pytest.raises(ConfigError):
        choices("training.lr")


# Pinned run names. These tests exist so that adding a config field with a neutral default (or any
# refactoring) never renames the run directories of old results; values computed once with the code of
# this commit. Change a pin only when a change of results is intended.
PINNED_HASHES = {
    "digits": "db3b9795b8",
    "tiny": "2975acd020",
    "digits-noise20": "9cff1c46b3",
}


@pytest.mark.parametrize(("preset", "expected"), sorted(PINNED_HASHES.items()))
def test_pinned_preset_hashes(preset, expected):
    config = sddlab.get_preset(preset)
    assert config.short_hash() == expected
    assert config.run_name() == f"{preset}-{expected}"


def test_hash_ignores_name_and_description():
    config = sddlab.get_preset("tiny")
    renamed = config.with_overrides({"name": "other", "description": "something else"})
    assert renamed.short_hash() == config.short_hash()
    assert renamed.run_name() != config.run_name()


@pytest.mark.parametrize(
    ("path", "default", "other"),
    [
        ("model.width", 1.0, 0.5),
        ("data.subset", None, 200),
        ("model.bn_init", "uniform", "default"),
        ("pruning.strategy", "iterative", "oneshot"),
    ],
)
def test_neutral_field_at_default_leaves_hash_unchanged(path, default, other):
    section, field = path.split(".")
    base = sddlab.get_preset("tiny")
    assert field not in base.hash_payload()[section]
    explicit = base.with_overrides({path: default})
    assert explicit.short_hash() == base.short_hash() == PINNED_HASHES["tiny"]
    changed = base.with_overrides({path: other})
    assert changed.hash_payload()[section][field] == other
    assert changed.short_hash() != base.short_hash()


@pytest.mark.parametrize(
    "overrides",
    [
        {"noise.rate": 0.2}, {"noise.type": "random"}, {"experiment.seed": 1}, {"training.lr": 0.01},
        {"pruning.scope": "layerwise"}, {"retraining.mode": "scratch"}, {"model.hidden": [32, 33]},
        {"training.milestones": ["1ep"]}, {"model.ignored": []},
    ],
)
def test_result_changing_fields_change_the_hash(overrides):
    base = sddlab.get_preset("tiny")
    assert base.with_overrides(overrides).short_hash() != base.short_hash()


def test_flat_uses_dotted_names_and_strings_for_sequences():
    flat = sddlab.get_preset("tiny").flat()
    assert flat["name"] == "tiny"
    assert flat["noise.rate"] == 0.4 and flat["experiment.levels"] == 4
    assert json.loads(flat["model.hidden"]) == [32, 32]
    assert flat["model.ignored"] is None
