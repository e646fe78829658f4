"""The runs behind a results page: run directories, folders of them or a sweep's report folder, read into one
level table and split into groups that differ only in their seed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sddlab.collect import find_runs, index
from sddlab.config import Config
from sddlab.datasize import with_train_examples
from sddlab.divergence import diverged_note, is_diverged
from sddlab.errors import ConfigError
from sddlab.figures.axis import paper_axis
from sddlab.store import CONFIG_FILE, RunStore

SWEEP_FILE = "sweep.json"
SEED = "experiment.seed"
IGNORED_FIELDS = {SEED, "description"}


@dataclass
class RunGroup:
    """Runs of one config over seeds: its label, the fields that set it apart, its level table and metas."""

    label: str
    fields: dict[str, Any]
    config: Config  # the group's config at seed 0
    table: pd.DataFrame  # on the paper's sparsity axis when the runs use the official pruning count
    metas: dict[str, dict[str, Any]]  # run name -> meta.json

    @property
    def seeds(self) -> list[int]:
        return sorted(int(seed) for seed in self.table[SEED].unique())

    @property
    def runs(self) -> list[str]:
        return sorted(self.metas)

    @property
    def official(self) -> bool:
        return self.config.pruning.count == "official"


@dataclass
class ReportRuns:
    """Every group of runs found in the inputs; `sweep` names the sweep folder given, `missing` its points
    that have no run directory yet, `diverged` each run with a diverged level -> 'level L: why' (a run with no
    measured level is in no group)."""

    groups: list[RunGroup]
    sweep: str | None = None
    missing: list[str] = field(default_factory=list)
    diverged: dict[str, str] = field(default_factory=dict)

    def diverged_lines(self) -> list[str]:
        """One 'diverged: RUN (level L: why)' line per run that diverged, by run name."""
        return [f"diverged: {run} ({note})" for run, note in sorted(self.diverged.items())]


def _sweep_points(folder: Path) -> tuple[list[Path], list[str]]:
    """A sweep folder's points (run directories under <results>, two levels up) and those not there yet."""
    try:
        points = json.loads((folder / SWEEP_FILE).read_text())["points"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError("report input", str(folder), f"a readable {SWEEP_FILE} with its points ({error})") from None
    results = folder.parent.parent
    present = [results / name for name in points if (results / name / CONFIG_FILE).exists()]
    return present, [name for name in points if not (results / name / CONFIG_FILE).exists()]


def resolve(inputs: list[Path]) -> tuple[list[Path], str | None, list[str]]:
    """Run directories named by the inputs (each a run directory, a sweep folder or a folder of run directories),
    the sweep's name when one was given, and its missing points; a one-line error for any other input."""
    if not inputs:
        raise ConfigError("report inputs", "[]", "one or more run directories, sweep folders or folders of runs")
    runs: list[Path] = []
    sweep, missing = None, []
    for path in inputs:
        if (path / CONFIG_FILE).is_file():
            runs.append(path)
        elif (path / SWEEP_FILE).is_file():
            present, absent = _sweep_points(path)
            runs += present
            sweep, missing = sweep or path.name, missing + absent
        elif path.is_dir() and (found := find_runs(path)):
            runs += [run for run in found if not run.name.startswith(".")]
        else:
            found = ("it does not exist" if not path.exists() else "it is a file" if not path.is_dir()
                     else "this folder holds none of them")
            raise ConfigError("report input", str(path), "a run directory, a sweep folder (results/sweeps/NAME, "
                              f"with sweep.json) or a folder holding run directories; {found}")
    unique = sorted({run.resolve(): run for run in runs}.values(), key=lambda run: run.name)
    return unique, sweep, missing


def _key(config: Config) -> str:
    return f"{config.name}-{config.with_overrides({SEED: 0}).short_hash()}"


def _differing(configs: list[Config]) -> list[str]:
    """The config fields (seed and description aside) whose values differ between the groups."""
    flats = [config.flat() for config in configs]
    return [key for key in flats[0] if key not in IGNORED_FIELDS and len({json.dumps(f[key]) for f in flats}) > 1]


def _sort_key(fields: dict[str, Any]) -> tuple:
    return tuple((value is None, value if value is not None else 0) for value in fields.values())


def split_diverged(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows of the runs with a measured level (a diverged level after them stays, shown as a gap), and
    each run with a diverged level -> 'level L: why'; a run that diverged before any measurement has no rows."""
    if "diverged" not in table:
        return table, {}
    failed = table["diverged"].map(lambda reason: is_diverged({"diverged": reason})).astype(bool)
    notes = {row["run"]: diverged_note(row.to_dict()) for _, row in table[failed].iterrows()}
    measured = set(table.loc[~failed, "run"])
    return table[table["run"].isin(measured)].reset_index(drop=True), notes


def load_groups(inputs: list[Path]) -> ReportRuns:
    """Read every run the inputs name into groups of seeds, sorted by the fields that set the groups apart."""
    runs, sweep, missing = resolve(inputs)
    stores = [RunStore(run) for run in runs]
    by_key: dict[str, list[RunStore]] = {}
    for store in stores:
        by_key.setdefault(_key(store.config()), []).append(store)
    configs = {key: members[0].config().with_overrides({SEED: 0}) for key, members in by_key.items()}
    apart = _differing(list(configs.values())) if len(configs) > 1 else []
    groups, diverged = [], {}
    for key, members in by_key.items():
        table, notes = split_diverged(index([store.dir for store in members]))
        diverged.update(notes)
        if table.empty:
            continue
        kept = set(table["run"])
        metas = {store.dir.name: store.meta() for store in members if store.dir.name in kept}
        table = with_train_examples(table)
        fields = {name: configs[key].flat()[name] for name in apart}
        label = ", ".join(f"{name}={value}" for name, value in fields.items()) or configs[key].name
        groups.append(RunGroup(label, fields, configs[key], paper_axis(table), metas))
    groups.sort(key=lambda group: (_sort_key(group.fields), group.label))
    return ReportRuns(groups, sweep, missing, diverged)


def slug(text: str) -> str:
    """A file-name-safe form of a group label (letters, digits, '.', '_' and '-')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "curve"
