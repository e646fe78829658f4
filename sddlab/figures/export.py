"""A run's figure, the same wherever the run was started (command line, explorer, notebooks), and figure
export to self-contained HTML or to PNG / SVG / PDF for slides and papers.

Static export uses plotly's kaleido with a Chromium browser (`scripts/setup.sh` installs Debian's
`chromium`); without one, `export_figure` says so in one line and the HTML's camera button saves a PNG.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import plotly.graph_objects as go

from sddlab.collect import load
from sddlab.config import Config
from sddlab.errors import SddError
from sddlab.figures.axis import paper_axis
from sddlab.figures.curve import curve_figure
from sddlab.io import atomic_write_bytes, write_html
from sddlab.phases import detect_phases
from sddlab.store import RunStore

FORMATS = ("html", "png", "svg", "pdf")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
BROWSER_ENV = "BROWSER_PATH"  # where kaleido looks for a browser first


def config_subtitle(config: Config) -> str:
    """One line describing what the run actually did, built from its config (not the preset's text)."""
    model = config.model.name + (f" {'-'.join(map(str, config.model.hidden))}" if config.model.name == "mlp" else "")
    if config.model.width != 1.0:
        model += f" ×{config.model.width:g} width"
    p = config.pruning
    noise = f"{config.noise.rate:.0%} {config.noise.type} noise" if config.noise.rate > 0 else "clean labels"
    schedule = (f"{config.experiment.levels} one-shot levels to {1 - (1 - p.fraction) ** config.experiment.levels:.2%}"
                if p.strategy == "oneshot" else f"{config.experiment.levels} levels × {p.fraction:.0%}")
    data = config.data.name + (f"[{config.data.subset}]" if config.data.subset else "")
    return (f"{data} · {model} · {noise} · {schedule} {p.score} {p.scope} · {config.retraining.mode} · "
            f"{config.training.duration} per level · seed {config.experiment.seed}")


def run_figure(run_dir: str | Path) -> go.Figure:
    """The curve of a (finished or partial) run directory, phases shaded, subtitled from its config."""
    config, table = RunStore(Path(run_dir)).config(), paper_axis(load(run_dir))  # official count: paper's axis
    measured = table[table["diverged"].isna()] if "diverged" in table else table  # a diverged level has no numbers
    phases = detect_phases(table) if len(measured) else None
    return curve_figure(table, title=f"{config.name}: sparse double descent", phases=phases,
                        subtitle=config_subtitle(config))


def write_run_figure(run_dir: str | Path) -> Path:
    """Write `run_dir/figure.html` (self-contained, opens offline); the same file the command line writes."""
    return write_html(run_figure(run_dir), Path(run_dir) / "figure.html")


def find_browser() -> str | None:
    """A Chromium-family browser kaleido can drive: $BROWSER_PATH, else the first on PATH."""
    if os.environ.get(BROWSER_ENV):
        return os.environ[BROWSER_ENV]
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def export_figure(fig: go.Figure, path: str | Path, width: int = 1100, height: int = 700, scale: float = 2.0) -> Path:
    """Write `fig` as .html (self-contained) or .png / .svg / .pdf (static, via kaleido and Chromium)."""
    path = Path(path)
    kind = path.suffix.lstrip(".").lower()
    if kind not in FORMATS:
        raise SddError(f"figure file {str(path)!r} is not allowed: a name ending in .{', .'.join(FORMATS)}")
    if kind == "html":
        return write_html(fig, path)
    browser = find_browser()
    try:
        import kaleido  # noqa: F401  (the figures extra)
    except ImportError:
        browser = None
    if browser is None:
        raise SddError(f"exporting {path.name} needs kaleido and Chromium (bash scripts/setup.sh installs both); "
                       "meanwhile save the .html and use its camera button for a PNG")
    os.environ.setdefault(BROWSER_ENV, browser)
    payload = fig.to_image(format=kind, width=width, height=height, scale=1.0 if kind != "png" else scale)
    return atomic_write_bytes(path, payload)
