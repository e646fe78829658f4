"""A results page in the repository (docs/results/NAME/) from run directories: per level mean ± std over
seeds, the phases with the sweet-minus-dense margin and its spread, the CSVs, the curve as a PNG with its
seed band, and what made it. Built only from the run directories, so the same runs give the same page."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sddlab.app.page_provenance import data_text, provenance_lines, setup_text, sweep_command
from sddlab.app.report_inputs import SEED, ReportRuns, RunGroup, load_groups, slug
from sddlab.config import Config
from sddlab.errors import ConfigError, SddError
from sddlab.figures.curve import curve_figure
from sddlab.figures.export import config_subtitle, export_figure, find_browser
from sddlab.io import atomic_write_text
from sddlab.paths import check_writable
from sddlab.phases import PhaseReport, detect_phases
from sddlab.phases.over_seeds import landmark_row, per_seed
from sddlab.presets import get_preset
from sddlab.sweep_report import summarize

LANDMARK_NAMES = (("dense", None), ("critical minimum", "critical"), ("sweet peak", "sweet"),
                  ("collapse", "collapse"))
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


@dataclass
class Page:
    """What was written: the page's folder, its files, each group's phase report and a line per diverged run."""

    folder: Path
    files: list[Path]
    reports: dict[str, PhaseReport]
    diverged: list[str] = field(default_factory=list)


def level_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per level over seeds: sparsity, remaining weights, seeds, and mean and std of test and noisy-train accuracy."""
    summary = summarize(table, [])
    summary.insert(2, "remaining", summary["level"].map(table.groupby("level")["remaining"].mean()))
    keep = ["level", "sparsity", "remaining", "seeds", "test_acc_mean", "test_acc_std", "train_acc_noisy_mean",
            "train_acc_noisy_std"]
    return summary[keep]


def _acc(mean: float, std: float) -> str:
    return "diverged" if math.isnan(mean) else f"{mean:.4f} ± {std:.4f}"


def _sparsity(value: float) -> str:
    return f"{100 * value:.2f} %"


def levels_markdown(summary: pd.DataFrame) -> str:
    """The per-level table in Markdown: level, sparsity, remaining weights, seeds, test and noisy-train accuracy."""
    lines = ["| level | sparsity | remaining weights | seeds | test accuracy | train accuracy (noisy labels) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for row in summary.itertuples(index=False):
        lines.append(f"| {row.level} | {_sparsity(row.sparsity)} | {row.remaining:,.0f} | {row.seeds} | "
                     f"{_acc(row.test_acc_mean, row.test_acc_std)} | "
                     f"{_acc(row.train_acc_noisy_mean, row.train_acc_noisy_std)} |")
    return "\n".join(lines)


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def phases_markdown(summary: pd.DataFrame, row: dict[str, Any], report: PhaseReport) -> str:
    """The landmarks (level, sparsity, remaining weights, test accuracy mean ± std) and the sweet-minus-dense margin."""
    at = summary.set_index("level")
    lines = [report.summary, "", "| landmark | level | sparsity | remaining weights | test accuracy |",
             "|---|---:|---:|---:|---:|"]
    for title, key in LANDMARK_NAMES:
        level = 0 if key is None else row[f"{key}_level"]
        if level is None or (isinstance(level, float) and math.isnan(level)):
            lines.append(f"| {title} | — | — | — | — |")
            continue
        level = int(level)
        accuracy = _acc(at.loc[level, "test_acc_mean"], at.loc[level, "test_acc_std"])
        lines.append(f"| {title} | {level} | {_sparsity(at.loc[level, 'sparsity'])} | "
                     f"{at.loc[level, 'remaining']:,.0f} | {accuracy} |")
    lines.append("")
    if math.isnan(row["margin"]):
        lines.append("Sweet peak minus dense: no sweet peak (no double descent detected).")
    else:
        seeds = f"{report.n_seeds} seed{'s' if report.n_seeds != 1 else ''}"
        lines.append(f"Sweet peak minus dense: **{_signed(row['margin'])} ± {row['margin_std']:.4f}** (the mean "
                     f"curve's sweet peak at level {int(row['sweet_level'])} minus its dense accuracy; ± the standard "
                     f"deviation over {seeds} of each seed's accuracy at that level minus its own dense accuracy, "
                     f"which ranges from {_signed(row['margin_min'])} to {_signed(row['margin_max'])}).")
    return "\n".join(lines)


def _at(prefix: str, row: pd.Series) -> str:
    level = row[f"{prefix}_level"]
    if level is None or (isinstance(level, float) and math.isnan(level)):
        return "—"
    return f"{row[f'{prefix}_acc']:.4f} at {_sparsity(row[f'{prefix}_sparsity'])} (level {int(level)})"


def seeds_markdown(seeds: pd.DataFrame) -> str:
    """Each seed's own phases (detected on that seed alone)."""
    lines = ["| seed | dense | critical minimum | sweet peak | sweet − dense | collapse |",
             "|---:|---:|---|---|---:|---|"]
    for _, row in seeds.iterrows():
        margin = "—" if math.isnan(row["margin"]) else _signed(row["margin"])
        lines.append(f"| {int(row[SEED])} | {row['dense_acc']:.4f} | {_at('critical', row)} | {_at('sweet', row)} | "
                     f"{margin} | {_at('collapse', row)} |")
    return "\n".join(lines)


def _figure_name(group: RunGroup, several: bool) -> str:
    return f"curve-{slug(group.label)}.png" if several else "curve.png"


def group_section(group: RunGroup, several: bool, png: bool) -> tuple[str, PhaseReport, dict[str, Any]]:
    """One group's Markdown (figure, phases, per-seed phases, level table), its phase report and landmark row."""
    report = detect_phases(group.table)
    row = landmark_row(group.table, report)
    summary = level_summary(group.table)
    heading = "##" if not several else "###"
    figure = f"![{group.label}: accuracies, mean ± std over seeds]({_figure_name(group, several)})"
    text = [*([figure, ""] if png else []), f"{heading} Phases", "", phases_markdown(summary, row, report), "",
            f"{heading} Each seed's phases", "", seeds_markdown(per_seed(group.table)), "",
            f"{heading} Per level (mean ± std over seeds)", "", levels_markdown(summary)]
    return "\n".join(text), report, row


def _phases_frame(rows: list[dict[str, Any]], groups: list[RunGroup]) -> pd.DataFrame:
    """The landmark rows as a table: group fields as given (None stays empty), landmark levels as integers."""
    frame = pd.DataFrame(rows)
    for key in groups[0].fields:
        frame[key] = pd.Series([row[key] for row in rows], dtype=object)
    for column in [c for c in frame if c.endswith("_level")]:
        frame[column] = frame[column].astype("Int64")
    return frame


def _subtitle(config: Config) -> str:
    """What the runs did, from their config; the preset's own description only when no field was overridden
    (a description written for the preset would misdescribe changed runs)."""
    try:
        unchanged = get_preset(config.name).with_overrides({SEED: config.experiment.seed}) == config
    except SddError:  # not a preset's name (a config file's own)
        unchanged = False
    return f"{config.description} ({config_subtitle(config)})" if unchanged and config.description \
        else config_subtitle(config)


def render(runs: ReportRuns, name: str,
           png: bool = True) -> tuple[str, dict[str, pd.DataFrame], dict[str, PhaseReport]]:
    """The README text, the CSV tables (levels, phases, records) and each group's phase report."""
    groups, several = runs.groups, len(runs.groups) > 1
    seeds = sorted({seed for group in groups for seed in group.seeds})
    first = groups[0].config
    lines = [f"# {name}: sparse double descent over {len(seeds)} seed{'s' if len(seeds) != 1 else ''}", "",
             f"*{_subtitle(first)}*", "",
             "Generated by `sddlab report` from the run directories listed below; the files here: "
             "[levels.csv](levels.csv) (the tables below), [phases.csv](phases.csv) (the landmarks), "
             "[records.csv](records.csv) (every seed's level records).", ""]
    if runs.missing:
        lines += [f"**Partial:** {len(runs.missing)} sweep point(s) have no run directory yet.", ""]
    if runs.diverged:
        lines += [f"**Diverged:** {len(runs.diverged)} run(s) diverged; their diverged levels have no "
                  "measurements (a run that diverged at its first level is left out):", "",
                  *[f"- {line}" for line in runs.diverged_lines()], ""]
    unfinished = sorted(run for group in groups for run, meta in group.metas.items()
                        if not meta.get("finished") and run not in runs.diverged)
    if unfinished:
        lines += [f"**Partial:** {len(unfinished)} run(s) still unfinished: {', '.join(unfinished)}.", ""]
    levels, landmarks, records, reports = [], [], [], {}
    for group in groups:
        section, reports[group.label], row = group_section(group, several, png)
        if several:
            lines += [f"## {group.label} ({data_text(group)})", ""]
        lines += [section, ""]
        levels.append(level_summary(group.table).assign(**group.fields) if several else level_summary(group.table))
        landmarks.append({**group.fields, **row})
        columns = ["run", SEED, "level", "sparsity", "remaining", "test_acc", "train_acc_noisy", "memorized",
                   "seconds"]
        records.append(group.table[[c for c in columns if c in group.table]].assign(**group.fields))
    command = sweep_command(groups, name)
    lines += ["## How it was made", ""]
    if command:
        lines += ["```", command, f"sddlab report results/sweeps/{name} --name {name}", "```", ""]
    lines += provenance_lines(groups)
    frames = {"levels": pd.concat(levels, ignore_index=True), "phases": _phases_frame(landmarks, groups),
              "records": pd.concat(records, ignore_index=True).sort_values([*groups[0].fields, SEED, "level"])}
    return "\n".join(lines).rstrip() + "\n", frames, reports


def check_request(name: str | None, out: Path, png: bool) -> None:
    """One-line errors before any work: a file-name-safe name, a writable folder, a browser for the PNG."""
    if name is not None and not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError("--name", name, "letters, digits, '.', '_' and '-' (a folder name)")
    check_writable(out, "--out")
    if png and find_browser() is None:
        raise SddError("--png needs kaleido and Chromium (bash scripts/setup.sh installs both); or pass --no-png")


def write_page(inputs: list[Path], name: str | None = None, out: Path = Path("docs/results"), png: bool = True) -> Page:
    """Write docs/results/NAME/ (README.md, levels.csv, phases.csv, records.csv, curve PNGs) from run directories."""
    check_request(name, out, png)
    runs = load_groups(inputs)
    if not runs.groups and runs.diverged:
        raise SddError("nothing to report: every run diverged before its first measured level: "
                       + "; ".join(line.removeprefix("diverged: ") for line in runs.diverged_lines()))
    if not runs.groups:
        raise ConfigError("report inputs", " ".join(map(str, inputs)), "runs with at least one finished level")
    name = name or runs.sweep or runs.groups[0].config.name
    check_request(name, out, False)
    folder = out / name
    text, frames, reports = render(runs, name, png)
    files = [atomic_write_text(folder / "README.md", text)]
    files += [atomic_write_text(folder / f"{key}.csv", frame.to_csv(index=False)) for key, frame in frames.items()]
    if png:
        several = len(runs.groups) > 1
        for group in runs.groups:
            fig = curve_figure(group.table, title=f"{name}: {group.label}" if several else name,
                               phases=reports[group.label],
                               subtitle=f"{setup_text(group)} · mean ± std over seeds "
                                        f"{', '.join(map(str, group.seeds))}")
            files.append(export_figure(fig, folder / _figure_name(group, several), width=1100, height=700, scale=1.0))
    for path in files:
        path.chmod(0o644)  # a page is for everyone to read (temporary files are created private)
    for stale in folder.glob("curve*.png"):
        if stale not in files:
            stale.unlink()
    return Page(folder, files, reports, runs.diverged_lines())
