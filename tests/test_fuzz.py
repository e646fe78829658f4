"""Fuzzed input (hypothesis): `--set` strings, config JSON files and notebook parameters either run or end
with one line `sddlab: error: ...` (field, value, what is allowed), exit code 2, no traceback and no run
directory left, through the command line with its defaults (the progress bar on). Example counts stay
modest so the suite stays fast; valid inputs train a few steps.

The examples are derandomized, so each test knows how many of its inputs ran, diverged and were refused:
the counts are asserted, and a change in what the command line accepts shows up as a changed count (look
at which inputs moved before pinning the new numbers)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

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
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
EXPECTED = {  # how many of each test's derandomized inputs ran, diverged, were built or refused
    "--set": Counter(ran=4, refused=76),
    "config file": Counter(ran=8, refused=32),
    "notebook": Counter(built=5, refused=75),
}

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
    """`sddlab ARGS` in this process with the progress bar on; returns (exit code, stderr). An escaping
    exception fails the test."""
    argv = ["sddlab", *args, "--results", str(results), "--data", str(data_dir), "--device", "cpu", "--no-figure"]
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


def check_outcome(code: int, err: str, results: Path) -> str:
    """'ran' (a finished run), 'diverged' (a run whose training diverged, its last line saying so) or
    'refused' (one error line, exit code 2, no run directory); anything else fails the test."""
    runs = [p for p in results.iterdir()] if results.exists() else []
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in err, err
    if code == 0 or (code == 2 and " diverged at epoch " in lines[-1]):  # a valid input ran (it may diverge)
        assert len(runs) == 1 and (runs[0] / "levels" / "level_00.json").exists()
        assert not any(line.startswith("sddlab: error: ") for line in lines[:-1]), err
        return "ran" if code == 0 else "diverged"
    assert code == 2, err
    assert err.startswith("sddlab: error: ") and err.count("\n") == 1, err
    assert runs == [], runs
    return "refused"


def one_line_or_valid(build) -> str:
    try:
        built = build()
    except SddError as error:
        assert "\n" not in str(error) and str(error)
        return "refused"
    assert built and all(isinstance(config, sddlab.Config) for config in built)
    return "built"


def test_fuzzed_set_strings_run_or_fail_in_one_line(data_dir):
    outcomes: Counter[str] = Counter()

    @given(key=st.sampled_from([f for f in FIELDS if f not in HEAVY]) | st.text(max_size=12),
           value=set_values, sep=st.sampled_from(["=", "=", "=", " = ", ":"]))
    @FUZZ
    def one(key, value, sep):
        results = Path(tempfile.mkdtemp()) / "results"
        try:
            cheap = [arg for pair in CHEAP for arg in ("--set", pair)]
            args = ["run", "--preset", "tiny", *cheap, "--set", key + sep + value]
            outcomes[check_outcome(*invoke(args, results, data_dir), results)] += 1
        finally:
            shutil.rmtree(results.parent)

    one()
    assert outcomes == EXPECTED["--set"], outcomes


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
        elif action == "whole":  # never `{}`: every default, the full digits experiment (hours of training)
            return json.dumps(draw(json_values.filter(lambda value: value != {}))).encode()
        return json.dumps(config).encode()

    return mutate() | st.sampled_from([b"", b"\x80", b"\xff\xfe{", b"{\"training\": {\"lr\": 1e999}}", b"\x00" * 8])


def test_fuzzed_config_files_run_or_fail_in_one_line(data_dir):
    outcomes: Counter[str] = Counter()

    @given(payload=mutated_configs())
    @settings(FUZZ, max_examples=40)  # some valid configs train for seconds: fewer examples here
    def one(payload):
        folder = Path(tempfile.mkdtemp())
        try:
            (folder / "config.json").write_bytes(payload)
            results = folder / "results"
            args = ["run", "--config", str(folder / "config.json")]
            outcomes[check_outcome(*invoke(args, results, data_dir), results)] += 1
        finally:
            shutil.rmtree(folder)

    one()
    assert outcomes == EXPECTED["config file"], outcomes


NOTEBOOK_LINE = "make_sweep(f\\\"01_curve-{preset}\\\", preset=preset, overrides=overrides, seeds=seeds"


def test_fuzzed_notebook_parameters_build_configs_or_fail_in_one_line():
    source = (NOTEBOOK_DIR / "01_curve.ipynb").read_text()
    assert NOTEBOOK_LINE in source  # the notebook builds its configs exactly so
    outcomes: Counter[str] = Counter()

    @given(preset=st.sampled_from(['"tiny"', "digits", "tiny", '"nope"', "3", "[1]", "null"]) | st.text(max_size=8),
           seeds=st.sampled_from(["[0,1]", "[0]", "[-1]", "[1.5]", '"01"', "7", "[]", "[true]", '["a"]', "{}"])
           | st.lists(st.integers(-1, 5), max_size=3).map(json.dumps) | st.text(max_size=6),
           overrides=json_values.map(json.dumps) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6),
                                                                   plausible | json_values, max_size=3).map(json.dumps))
    @FUZZ
    def one(preset, seeds, overrides):
        preset, seeds, overrides = parse_value(preset), parse_value(seeds), parse_value(overrides)

        def build():
            sweep = make_sweep(f"01_curve-{preset}", preset=preset, overrides=overrides, seeds=seeds)
            return [config for group in sweep.groups() for config in group]

        outcomes[one_line_or_valid(build)] += 1

    one()
    assert outcomes == EXPECTED["notebook"], outcomes
