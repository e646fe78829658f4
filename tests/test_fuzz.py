"""Fuzzed input (hypothesis): `--set` strings, config JSON files and notebook parameters either run or end
with one line `sddlab: error: ...` (field, value, what is allowed), exit code 2, no traceback and no run
directory left. Example counts stay modest so the suite stays fast; valid inputs train a few steps."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sddlab
from sddlab.app.cli import main
from sddlab.app.notebooks import NOTEBOOK_DIR, parse_value
from sddlab.config import _SECTION_TYPES
from sddlab.errors import SddError
from sddlab.sweeps import make_sweep

FIELDS = [f"{section}.{name}" for section, kind in _SECTION_TYPES.items() for name in kind.model_fields]
HEAVY = {"data.name", "model.name", "model.width", "training.batch_size"}  # downloads or slow models
SLOW_DEFAULTS = {"duration", "levels", "subset"}  # never dropped: their defaults train for minutes
CHEAP = ["experiment.levels=1", "training.duration=1ep", "data.subset=96", "model.hidden=[8]"]
TRIED: dict[str, int] = {}  # outcome counts per fuzz test, printed at the end (run with -s)
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 6) | st.floats(allow_subnormal=False)
    | st.text(max_size=8) | st.sampled_from(["1ep", "0it", "7it", "2ep", "cosine", "sgd", "random", "-1ep"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=4,
)

plausible = (st.integers(0, 3) | st.floats(0.0, 0.95, allow_subnormal=False) | st.booleans()
             | st.sampled_from(["1ep", "3it", "cosine", "sgd", "adam", "random", "pairflip", "layerwise", "finetune",
                                "scratch", "gradient", "oneshot", "[8]", "[8, 8]", "0.001", "[0.9, 0.99]"]))
set_values = plausible.map(lambda v: v if isinstance(v, str) else json.dumps(v)) | json_values.map(json.dumps) \
    | st.text(max_size=12)


def invoke(args: list[str], results: Path, data_dir: Path) -> tuple[int, str]:
    """`sddlab ARGS` in this process; returns (exit code, stderr). An escaping exception fails the test."""
    argv = ["sddlab", *args, "--results", str(results), "--data", str(data_dir), "--device", "cpu", "--quiet",
            "--no-figure"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        old, sys.argv = sys.argv, argv
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.argv = old
    return code, err.getvalue()


def count(kind: str, outcome: str) -> None:
    TRIED[f"{kind} {outcome}"] = TRIED.get(f"{kind} {outcome}", 0) + 1


def check_outcome(code: int, err: str, results: Path) -> str:
    """Either a finished run, or one error line with exit code 2 and no run directory."""
    runs = [p for p in results.iterdir()] if results.exists() else []
    if code == 0 or (code == 2 and " diverged at epoch " in err):  # a valid input ran (it may diverge)
        assert len(runs) == 1 and (runs[0] / "levels" / "level_00.json").exists()
        assert err.count("\n") <= 1 and "Traceback" not in err, err
    else:
        assert code == 2, err
        assert err.startswith("sddlab: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert runs == [], runs
    return "ran" if code == 0 else "one-line error"


def one_line_or_valid(build) -> str:
    try:
        built = build()
    except SddError as error:
        assert "\n" not in str(error) and str(error)
        return "one-line error"
    assert built and all(isinstance(config, sddlab.Config) for config in built)
    return "built"


@given(key=st.sampled_from([f for f in FIELDS if f not in HEAVY]) | st.text(max_size=12),
       value=set_values, sep=st.sampled_from(["=", "=", "=", " = ", ":"]))
@FUZZ
def test_fuzzed_set_strings_run_or_fail_in_one_line(key, value, sep, data_dir):
    results = Path(tempfile.mkdtemp()) / "results"
    try:
        cheap = [arg for pair in CHEAP for arg in ("--set", pair)]
        args = ["run", "--preset", "tiny", *cheap, "--set", key + sep + value]
        count("--set", check_outcome(*invoke(args, results, data_dir), results))
    finally:
        shutil.rmtree(results.parent)


def mutated_configs() -> st.SearchStrategy:
    base = json.loads(sddlab.get_preset("tiny").with_overrides(
        dict(item.split("=", 1) for item in CHEAP[:2]) | {"data.subset": 96, "model.hidden": [8]}).to_json())
    sections = [s for s in base if isinstance(base[s], dict)]

    @st.composite
    def mutate(draw):
        config = json.loads(json.dumps(base))
        section = draw(st.sampled_from(sections))
        fields = [f for f in config[section] if f"{section}.{f}" not in HEAVY]
        action = draw(st.sampled_from(["value", "drop", "extra", "section", "whole"]))
        if action == "value" and fields:
            config[section][draw(st.sampled_from(fields))] = draw(json_values)
        elif action == "drop" and set(fields) - SLOW_DEFAULTS:
            del config[section][draw(st.sampled_from(sorted(set(fields) - SLOW_DEFAULTS)))]
        elif action == "extra":
            config[section][draw(st.text(max_size=6))] = draw(json_values)
        elif action == "section" and section not in ("data", "training", "experiment"):
            config[section] = draw(json_values)
        elif action == "whole":
            return json.dumps(draw(json_values)).encode()
        return json.dumps(config).encode()

    return mutate() | st.sampled_from([b"", b"\x80", b"\xff\xfe{", b"{\"training\": {\"lr\": 1e999}}", b"\x00" * 8])


@given(payload=mutated_configs())
@settings(FUZZ, max_examples=40)  # some valid configs train for seconds: fewer examples here
def test_fuzzed_config_files_run_or_fail_in_one_line(payload, data_dir):
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "config.json").write_bytes(payload)
        results = folder / "results"
        count("config file", check_outcome(*invoke(["run", "--config", str(folder / "config.json")], results,
                                                    data_dir), results))
    finally:
        shutil.rmtree(folder)


NOTEBOOK_LINE = "make_sweep(f\\\"01_curve-{preset}\\\", preset=preset, overrides=overrides, seeds=seeds"


@given(preset=st.sampled_from(['"tiny"', "digits", "tiny", '"nope"', "3", "[1]", "null"]) | st.text(max_size=8),
       seeds=st.sampled_from(["[0,1]", "[0]", "[-1]", "[1.5]", '"01"', "7", "[]", "[true]", '["a"]', "{}"])
       | st.lists(st.integers(-1, 5), max_size=3).map(json.dumps) | st.text(max_size=6),
       overrides=json_values.map(json.dumps) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6),
                                                               plausible | json_values, max_size=3).map(json.dumps))
@FUZZ
def test_fuzzed_notebook_parameters_build_configs_or_fail_in_one_line(preset, seeds, overrides):
    source = (NOTEBOOK_DIR / "01_curve.ipynb").read_text()
    assert NOTEBOOK_LINE in source  # the notebook builds its configs exactly so
    preset, seeds, overrides = parse_value(preset), parse_value(seeds), parse_value(overrides)

    def build():
        sweep = make_sweep(f"01_curve-{preset}", preset=preset, overrides=overrides, seeds=seeds)
        return [config for group in sweep.groups() for config in group]

    count("notebook", one_line_or_valid(build))


@pytest.fixture(scope="module", autouse=True)
def _print_counts():
    """Prints how many inputs each fuzz test tried (run with -s)."""
    yield
    print(f"\nfuzzed inputs: {TRIED}")
