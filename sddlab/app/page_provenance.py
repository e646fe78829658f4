"""What made a results page's numbers, in its own words: the commands, the commit, versions, machine, data and
wall time, all read from the run directories (their config.json and meta.json)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from sddlab.app.report_inputs import SEED, RunGroup
from sddlab.config import Config
from sddlab.errors import SddError
from sddlab.figures.export import config_subtitle
from sddlab.presets import get_preset
from sddlab.provenance import machine, source_commit


def _raw_fields(config: Config) -> dict[str, Any]:
    """Dotted field names to their plain JSON values (lists kept as lists), seed and texts aside."""
    dump = config.model_dump(mode="json")
    return {f"{section}.{key}": value for section, values in dump.items() if isinstance(values, dict)
            for key, value in values.items() if f"{section}.{key}" != SEED}


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value  # a plain string the command line reads back as itself
    return json.dumps(value, separators=(",", ":"))


def sweep_command(groups: list[RunGroup], name: str) -> str | None:
    """`sddlab sweep --preset P --set ... --grid ... --seeds ... --name NAME` that remakes the runs; None when
    they did not start from a preset."""
    configs = [group.config for group in groups]
    try:
        preset = get_preset(configs[0].name)
    except SddError:
        return None
    base, fields = _raw_fields(preset), [_raw_fields(config) for config in configs]
    if any(set(f) != set(base) for f in fields) or len({config.name for config in configs}) > 1:
        return None
    words = ["sddlab", "sweep", "--preset", preset.name]
    for key in base:
        values = [f[key] for f in fields]
        distinct = list(dict.fromkeys(json.dumps(value) for value in values))
        if len(distinct) == 1 and values[0] != base[key]:
            words += ["--set", f"{key}={_value_text(values[0])}"]
        elif len(distinct) > 1:
            words += ["--grid", f"{key}=" + ",".join(_value_text(json.loads(value)) for value in distinct)]
    seeds = sorted({seed for group in groups for seed in group.seeds})
    words += ["--seeds", *map(str, seeds), "--name", name]
    return shlex.join(words)


def _machine_text(info: dict[str, Any]) -> str:
    threads = info.get("threads")
    device = info.get("device_name") or info.get("device", "?")
    return (f"{info.get('cpu', '?')}, {info.get('cores', '?')} cores"
            + (f", {threads} torch thread{'s' if threads != 1 else ''}" if threads else "") + f", device {device}")


def _distinct(values: list[Any]) -> str:
    return ", ".join(dict.fromkeys(str(value) for value in values))


def _recorded(metas: list[dict[str, Any]]) -> tuple[str, str]:
    """The commit and machine lines: as the runs recorded them, else this process's, labelled as such."""
    commits = [meta["commit"] for meta in metas if meta.get("commit")]
    machines = [_machine_text(meta["machine"]) for meta in metas if meta.get("machine")]
    here = f"not recorded in the run directories; this page was generated at {source_commit() or 'no git checkout'}"
    commit = f"`{_distinct(commits)}`" if len(commits) == len(metas) else here
    device = metas[0].get("device", "cpu") if metas else "cpu"
    where = (_distinct(machines) if len(machines) == len(metas) else
             f"not recorded in the run directories; this page was generated on {_machine_text(machine(device))}")
    return commit, where


def wall_time(group: RunGroup) -> str:
    """Each seed's sum of its levels' recorded seconds, and their total."""
    seconds = group.table.groupby(SEED)["seconds"].sum()
    parts = ", ".join(f"seed {int(seed)} {value:,.1f} s" for seed, value in seconds.items())
    return f"{parts} (total {seconds.sum():,.1f} s)" if len(seconds) > 1 else parts


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def data_text(group: RunGroup) -> str:
    """Training and test examples and the share of wrong training labels (mean over the seeds' draws)."""
    noise = [meta.get("noise", {}) for meta in group.metas.values()]
    train = _distinct([_count(n.get("train_examples")) for n in noise])
    test = _distinct([_count(n.get("test_examples")) for n in noise])
    rates = [n["effective_rate"] for n in noise if n.get("effective_rate") is not None]
    flipped = f" ({100 * sum(rates) / len(rates):.2f} % of their labels wrong, mean over seeds)" if rates else ""
    return f"{train} training examples{flipped}, {test} test examples"


def _runs_text(group: RunGroup) -> str:
    seed_of = group.table.drop_duplicates("run").set_index("run")[SEED].sort_values()
    return ", ".join(f"`{name}` (seed {int(seed)})" for name, seed in seed_of.items())


def setup_text(group: RunGroup) -> str:
    """What the group's runs did, in one line (the run figure's subtitle without the seed)."""
    return config_subtitle(group.config).rsplit(" · seed ", 1)[0]


def provenance_lines(groups: list[RunGroup]) -> list[str]:
    """Markdown: runs, setup, data and wall time (a bullet each, or a table row per group), then seeds, commit,
    versions, machine and the sparsity axis."""
    metas = [group.metas[name] for group in groups for name in group.runs]
    commit, where = _recorded(metas)
    seeds = sorted({seed for group in groups for seed in group.seeds})
    timing = "wall time (sum of the levels' recorded seconds)"
    if len(groups) == 1:
        group = groups[0]
        lines = [f"- runs: {_runs_text(group)}", f"- setup: {setup_text(group)}", f"- data: {data_text(group)}",
                 f"- {timing}: {wall_time(group)}"]
    else:
        lines = [f"| group | setup | data | {timing} | runs |", "|---|---|---|---|---|"]
        lines += [f"| {group.label} | {setup_text(group)} | {data_text(group)} | {wall_time(group)} | "
                  f"{_runs_text(group)} |" for group in groups]
        lines.append("")
    lines += [f"- seeds: {', '.join(map(str, seeds))}",
              f"- commit: {commit}",
              f"- versions: sddlab {_distinct([m.get('sddlab_version') for m in metas])}, "
              f"torch {_distinct([m.get('torch_version') for m in metas])}",
              f"- machine: {where}"]
    if any(group.official for group in groups):
        lines.append("- sparsity and remaining weights count every weight layer, as the paper's figures do "
                     "(the official pruning count)")
    else:
        lines.append("- sparsity and remaining weights count the prunable weights")
    if len(seeds) > 1:
        lines.append("- seeds trained in lockstep share one clock: each seed's sum is then the time of the whole group")
    return lines
