"""Bad input: one clear one-line error naming the field, and no run directory left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import sddlab
from sddlab.assignments import parse_assignment
from sddlab.data import DATASETS, DatasetSpec, RawData
from sddlab.errors import SHOWN_CHARS, ConfigError, SddError
from sddlab.store import RunStore


def entries(results: Path) -> list[Path]:
    """Everything in a results folder (run directories and staging folders alike); [] when absent."""
    return sorted(results.iterdir()) if results.exists() else []


def attempt(results: Path, run_config, small_config, overrides: dict, preset: str = "tiny") -> SddError:
    """Build the config and run it; the error it fails with, after checking that no run was left."""
    with pytest.raises(SddError) as info:
        run_config(small_config(overrides, preset=preset), results)
    assert entries(results) == []
    message = str(info.value)
    assert message and "\n" not in message
    return info.value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data.name", "imagenet-21k"),
        ("model.name", "transformer"),
        ("pruning.score", "hessian"),
        ("pruning.scope", "blockwise"),
        ("pruning.strategy", "greedy"),
        ("retraining.mode", "rewire"),
        ("noise.type", "uniform"),
        ("noise.rate", -0.1),
        ("noise.rate", 1.0),
        ("pruning.fraction", 0),
        ("pruning.fraction", 1),
        ("experiment.levels", -1),
        ("training.batch_size", 0),
        ("training.duration", "0ep"),
        ("training.duration", "abc"),
        ("training.duration", "10"),
        ("retraining.rewind_point", "1000"),
        ("training.optimizer", "lbfgs"),
        ("model.hidden", [16, -1]),
    ],
)
def test_bad_config_values(tmp_path, run_config, small_config, field, value):
    error = attempt(tmp_path / "results", run_config, small_config, {field: value})
    assert isinstance(error, ConfigError)
    assert error.field == field
    assert str(error).startswith(f"{field}={value!r} is not allowed: ")


def test_bad_value_in_a_list_names_its_position(tmp_path, run_config, small_config):
    error = attempt(tmp_path / "results", run_config, small_config, {"training.milestones": ["1ep", "soon"]})
    assert error.field == "training.milestones.1"


def test_unknown_preset():
    with pytest.raises(ConfigError) as info:
        sddlab.get_preset("digitz")
    assert info.value.field == "preset"
    assert "digits" in str(info.value) and "tiny" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model.ignored": ["nope"]}, "model.ignored"),
        ({"model.ignored": ["hidden.0", "hidden.1", "out"]}, "model.ignored"),
        ({"retraining.rewind_point": "2ep"}, "retraining.rewind_point"),  # training lasts 2 epochs
        ({"retraining.rewind_point": "100it"}, "retraining.rewind_point"),
    ],
)
def test_errors_found_while_planning_leave_no_run(tmp_path, run_config, small_config, overrides, field):
    error = attempt(tmp_path / "results", run_config, small_config, overrides)
    assert isinstance(error, ConfigError) and error.field == field


def test_asymmetric_noise_on_a_data_set_without_a_map(tmp_path, run_config, small_config, monkeypatch):
    generator = torch.Generator().manual_seed(0)

    def load(data_dir: Path) -> RawData:
        return RawData(torch.randn(100, 8, generator=generator), torch.arange(100) % 4,
                       torch.randn(20, 8, generator=generator), torch.arange(20) % 4, num_classes=4)

    monkeypatch.setitem(DATASETS, "no-map-test", DatasetSpec("no-map-test", "test data", load, 4, (8,)))
    overrides = {"data.name": "no-map-test", "data.subset": None, "noise.type": "asymmetric", "noise.rate": 0.2}
    error = attempt(tmp_path / "results", run_config, small_config, overrides)
    assert isinstance(error, ConfigError) and error.field == "noise.type"
    # the same data set takes the other noise types, and digits has a map
    run_config(small_config({**overrides, "noise.type": "pairflip", "experiment.levels": 0}), tmp_path / "ok")
    run_config(small_config({"noise.type": "asymmetric", "experiment.levels": 0}), tmp_path / "ok")
    assert len(entries(tmp_path / "ok")) == 2


def test_results_under_a_regular_file(tmp_path, run_config, small_config):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as info:
        run_config(small_config(), blocker / "sub")
    assert info.value.field == "results"
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_results_that_is_a_file(tmp_path, run_config, small_config):
    blocker = tmp_path / "results"
    blocker.write_text("")
    with pytest.raises(ConfigError) as info:
        run_config(small_config(), blocker)
    assert info.value.field == "results"


def test_config_must_be_a_config(tmp_path, run_config):
    with pytest.raises(ConfigError) as info:
        run_config({"noise": {"rate": 0.2}}, tmp_path / "results")
    assert info.value.field == "config"
    assert entries(tmp_path / "results") == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(tmp_path, run_config, small_config):
    with pytest.raises(ConfigError) as info:
        run_config(small_config(), tmp_path / "results", device="cuda")
    assert info.value.field == "device"
    assert entries(tmp_path / "results") == []


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("noise.rate", "--set"),
        ("noise.rate 0.2", "--set"),
        ("foo=1", "foo"),
        ("noise.nope=1", "noise.nope"),
        ("nope.rate=1", "nope.rate"),
        ("noise.rate=high", "noise.rate"),
    ],
)
def test_malformed_set(text, field):
    with pytest.raises(ConfigError) as info:
        key, value = parse_assignment(text)
        sddlab.get_preset("tiny").with_overrides({key: value})
    assert info.value.field == field
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("noise", "rate", "limit"), [("symmetric", 0.9, "0.9"), ("symmetric", 0.95, "0.9"),
                                                      ("pairflip", 0.5, "0.5"), ("asymmetric", 0.6, "0.5")])
def test_noise_rates_past_the_true_class_are_refused_on_the_command_line(cli, tmp_path, noise, rate, limit):
    """The explorer's rule holds for every entry point: at (C - 1)/C symmetric (1/2 pairflip, asymmetric) the true
    class is no longer the likeliest training label, so the run would measure nothing; refused before any work."""
    code, _, err = cli("run", "--preset", "tiny", "--set", f"noise.type={noise}", "--set", f"noise.rate={rate}",
                       "--results", tmp_path / "r")
    assert code == 2
    assert f"noise.rate={rate} is not allowed: below {limit} for {noise} noise" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_noise_rate_just_below_the_limit_is_accepted(tmp_path, run_config, small_config):
    run_dir = run_config(small_config({"noise.rate": 0.85, "experiment.levels": 0}), tmp_path)
    assert RunStore(run_dir).records()[0]["level"] == 0


def test_a_huge_bad_value_is_shown_cut_with_its_size():
    seeds = list(range(20_001))
    message = str(ConfigError("seeds", seeds, "at most 1,000 seeds"))
    assert len(message) < SHOWN_CHARS + 60 and "(20001 items)" in message and message.startswith("seeds=[0, 1, 2")
    assert str(ConfigError("noise.rate", 0.9, "below 0.9")) == "noise.rate=0.9 is not allowed: below 0.9"


@pytest.mark.parametrize("assignment", ["training.lr=" + "9" * 5000, "training.duration=" + "9" * 5000 + "ep",
                                        "x" * 20_000 + "=1"])
def test_giant_set_values_are_one_bounded_line(assignment):
    with pytest.raises(ConfigError) as error:
        sddlab.get_preset("tiny").with_overrides(dict([parse_assignment(assignment)]))
    assert len(str(error.value)) < 400 and "\n" not in str(error.value)
