"""Live plotly figures fed by a run's events: the level curves (accuracy over learning distance on one
shared sparsity axis, phases shaded once they can be located) and the current level's per-epoch curves.

Neither figure has a fixed width: shown through `mimebundle` (plotly's own JupyterLab renderer, responsive)
each fills the notebook column it is placed in. `on_change(name)` tells a front end which figure to redraw.
Several seeds (`start_seeds` / `seed_event` / `show_seeds`) add a thin test-accuracy line per seed and the
mean ± std band over the seeds that finished each level; the usual lines then show the seeds' means.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sddlab.errors import SddError
from sddlab.events import EpochEnded, Event, LevelFinished, LevelStarted, RunStarted
from sddlab.figures.axis import remaining_fraction, shade_phases, sparsity_axis
from sddlab.figures.curve import ACCURACY_SERIES, DISTANCE_SERIES
from sddlab.figures.theme import SERIES, SMALL_SIZE, TEMPLATE, rgba, seed_colour
from sddlab.phases import detect_phases

MIN_LEVELS_FOR_PHASES = 4  # fewer levels cannot show a dip and a recovery
EMPTY_X = (0.0, -2.0)  # log10 range of remaining weights shown before any level (reversed: 0 % ... 99 %)
LEVELS_TITLE = "accuracy and learning distance per level"
EPOCHS_TITLE = "current level, per epoch"
_LEGEND = {"orientation": "h", "y": -0.16, "yanchor": "top", "x": 0.0, "font": {"size": SMALL_SIZE}}
BAND_FILL = rgba(SERIES["test_acc"].colour, 0.18)  # the test-accuracy colour, see-through
BAND_NAME = "test accuracy: mean ± std over seeds"


def level_means(by_seed: dict[int, list[dict]]) -> list[dict]:
    """One record per level that some seed finished: numbers averaged over those seeds (values all seeds share
    kept exactly), with `seeds` (how many) and `test_acc_std`: the sample std (ddof=1, as the static curves'
    bands in `figures.curve`) of their test accuracies, 0 while only one seed has finished the level.
    A diverged seed's level has no measurements: the mean is over the others (a gap when every seed diverged)."""
    means = []
    for level in sorted({r["level"] for records in by_seed.values() for r in records}):
        finished = [r for records in by_seed.values() for r in records if r["level"] == level]
        rows = [r for r in finished if not r.get("diverged")] or finished[:1]
        mean = dict(rows[0])
        for key in mean:
            values = [r.get(key) for r in rows]
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if numbers and len(set(numbers)) > 1 and all(v is None or v in numbers for v in values):
                mean[key] = float(np.mean(numbers))
        accs = np.array([r["test_acc"] for r in rows if r.get("test_acc") is not None], dtype=float)
        mean.update(seeds=len(rows), test_acc_std=float(np.std(accs, ddof=1)) if accs.size > 1 else 0.0)
        means.append(mean)
    return means


def level_figure(height: int = 450) -> go.Figure:
    """Accuracies and memorisation (top) over learning distance (bottom), sparsity axis shared."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.64, 0.36], vertical_spacing=0.05)
    for row, series in ((1, ACCURACY_SERIES), (2, DISTANCE_SERIES)):
        for column, label, color in series:
            style = SERIES[column]
            fig.add_scatter(x=[], y=[], mode="lines+markers", name=label, line={"color": color, "dash": style.dash},
                            marker={"symbol": style.symbol}, meta=column, row=row, col=1)
    sparsity_axis(fig, title=False, row=1)
    sparsity_axis(fig, row=2)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="distance", row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=height, autosize=True,
                      margin={"t": 60, "b": 92, "l": 64, "r": 16},
                      title={"text": LEVELS_TITLE, "y": 0.985, "yanchor": "top"},
                      legend=_LEGEND, hovermode="x unified")
    _empty_level_axes(fig)
    return fig


def epoch_figure(height: int = 230) -> go.Figure:
    """Noisy-train and test accuracy, and train loss on a second axis, of the level being trained."""
    fig = go.Figure()
    colours = {column: colour for column, _, colour in ACCURACY_SERIES}  # the level figure's colours
    for meta, name, extra in (("train_acc", "train accuracy (noisy labels)",
                               {"line": {"color": colours["train_acc_noisy"], "dash": "dash"}}),
                              ("test_acc", "test accuracy", {"line": {"color": colours["test_acc"]}}),
                              ("train_loss", "train loss", {"yaxis": "y2", "line": {"dash": "dot", "color": "#777"}})):
        fig.add_scatter(x=[], y=[], mode="lines+markers", marker={"size": 5}, name=name, meta=meta, **extra)
    fig.update_layout(
        template=TEMPLATE, height=height, autosize=True, margin={"t": 56, "b": 36, "l": 64, "r": 56},
        title={"text": EPOCHS_TITLE, "y": 0.98, "yanchor": "top", "font": {"size": SMALL_SIZE + 1}}, legend=_LEGEND,
        xaxis={"range": [0.5, 1.5], "dtick": 1}, yaxis={"title": "accuracy", "range": [0, 1.02]},
        yaxis2={"title": "loss", "overlaying": "y", "side": "right", "rangemode": "tozero", "range": [0, 1]},
    )
    return fig


def _empty_level_axes(fig: go.Figure) -> None:
    """Fixed, meaningful ranges while no level is drawn (instead of plotly's leftovers from the last data)."""
    fig.update_xaxes(autorange=False, range=list(EMPTY_X))
    fig.update_yaxes(autorange=False, range=[0, 1], row=2, col=1)


class LiveFigures:
    """The level figure and the epoch figure, updated as events arrive (thread-safe); a run listener.

    `on_change(name)` is called with 'levels' or 'epochs' after that figure changed (outside the lock).
    """

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self._lock = threading.RLock()
        self.on_change = on_change
        self.levels = level_figure()
        self.epochs = epoch_figure()
        self.records: list[dict] = []  # what the lines show: the run's levels, or the seeds' `level_means`
        self.by_seed: dict[int, list[dict]] = {}  # each seed's finished levels, with several seeds only
        self.phases: str = ""  # the located phases' one-line summary, once there are enough levels
        self._base = len(self.levels.data)  # the one-run traces; seed lines and the band follow them
        self._following: int | None = None  # the seed whose epochs the epoch plot shows

    # -- public -----------------------------------------------------------------------------------
    def reset(self, title: str = LEVELS_TITLE) -> None:
        """Clear both figures (data, phases, titles, ranges)."""
        with self._lock:
            self._reset(title)
        self._notify("levels", "epochs")

    def show_records(self, records: list[dict], title: str = LEVELS_TITLE) -> None:
        """Draw finished levels at once (e.g. a configuration read back from the store)."""
        with self._lock:
            self._reset(title)
            for record in records:
                self._add_record(record)
        self._notify("levels", "epochs")

    def start_seeds(self, seeds: list[int]) -> None:
        """Clear for a run of several seeds; their stored levels (Resume) come back as the run replays them."""
        with self._lock:
            self._reset(self.levels.layout.title.text or LEVELS_TITLE)
            self._add_seed_traces(seeds)
        self._notify("levels", "epochs")

    def show_seeds(self, by_seed: dict[int, list[dict]], title: str = LEVELS_TITLE) -> None:
        """Draw several seeds' finished levels at once (read back from the store); seeds without any are kept."""
        with self._lock:
            self._reset(title)
            self._add_seed_traces(list(by_seed))
            self.by_seed = {seed: sorted(records, key=lambda r: r["level"]) for seed, records in by_seed.items()}
            if any(self.by_seed.values()):
                self._draw_seeds()
        self._notify("levels", "epochs")

    def seed_event(self, seed: int, event: Event) -> None:
        """A `run_seeds` listener: a finished level redraws its seed's line, the band and the mean lines; the
        epoch plot follows the seed that started a level last; one seed's RunStarted never clears the others."""
        if isinstance(event, LevelFinished):
            with self._lock:
                self._add_seed_record(seed, event.record)
            self._notify("levels")
        elif isinstance(event, LevelStarted) or (isinstance(event, EpochEnded) and seed == self._following):
            self._following = seed
            self(event)

    def mimebundle(self, name: str) -> dict[str, Any]:
        """Figure `name` ('levels' or 'epochs') as a display_data bundle for plotly's responsive renderer."""
        with self._lock:
            spec = json.loads(getattr(self, name).to_json())
        spec["config"] = {"responsive": True, "displaylogo": False}
        return {"application/vnd.plotly.v1+json": spec, "text/plain": f"<{name} figure>"}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted) and event.finished == 0:
            self.reset(self.levels.layout.title.text or LEVELS_TITLE)
        elif isinstance(event, LevelStarted):
            with self._lock:
                self._clear_epochs(f"level {event.level} (sparsity {event.sparsity:.1%}): first epoch running")
            self._notify("epochs")
        elif isinstance(event, EpochEnded) and event.level >= 0:
            with self._lock:
                self._add_epoch(event)
            self._notify("epochs")
        elif isinstance(event, LevelFinished):
            with self._lock:
                self._add_record(event.record)
            self._notify("levels")

    # -- internals (called holding the lock) ------------------------------------------------------
    def _notify(self, *names: str) -> None:
        if self.on_change is not None:
            for name in names:
                self.on_change(name)

    def _reset(self, title: str) -> None:
        self.records, self.phases, self.by_seed, self._following = [], "", {}, None
        self.levels.data = self.levels.data[: self._base]
        for trace in self.levels.data:
            trace.x, trace.y = [], []
        self.levels.layout.shapes, self.levels.layout.annotations = (), ()
        self.levels.layout.title.text = title
        _empty_level_axes(self.levels)
        self._clear_epochs(EPOCHS_TITLE)

    def _add_record(self, record: dict) -> None:
        if any(r["level"] == record["level"] for r in self.records):
            return
        self.records.append(record)
        self.records.sort(key=lambda r: r["level"])
        self._draw_lines(self.records)

    def _draw_lines(self, located: list[dict]) -> list[float]:
        """The one-run lines from `self.records`, axes fitted, phases located on `located`; returns x."""
        x = [float(v) for v in remaining_fraction([r["sparsity"] for r in self.records])]
        for trace in self.levels.data[: self._base]:
            trace.x = x
            trace.y = [r.get(trace.meta) for r in self.records]
        self._fit_axes(x)
        self._shade(located)
        return x

    def _add_seed_traces(self, seeds: list[int]) -> None:
        """The band (lower edge, then the upper edge filled down to it) and one thin line per seed, in row 1."""
        self.by_seed = {seed: [] for seed in seeds}
        self.levels.add_scatter(x=[], y=[], mode="lines", line={"width": 0}, hoverinfo="skip", showlegend=False,
                                meta="band:lower", legendgroup="band", row=1, col=1)
        self.levels.add_scatter(x=[], y=[], mode="lines", line={"width": 0}, hoverinfo="skip", fill="tonexty",
                                fillcolor=BAND_FILL, name=BAND_NAME, meta="band:upper", legendgroup="band",
                                row=1, col=1)
        for index, seed in enumerate(seeds):  # each seed its own palette colour, named on hover
            self.levels.add_scatter(x=[], y=[], mode="lines", line={"color": seed_colour(index + 1), "width": 1.2},
                                    opacity=0.7, name=f"seed {seed}",
                                    meta=f"seed:{seed}", showlegend=False, legendgroup="seeds", row=1, col=1)

    def _add_seed_record(self, seed: int, record: dict) -> None:
        """A seed's finished level (once; replays of stored levels are ignored), then everything redrawn."""
        records = self.by_seed.setdefault(seed, [])
        if any(r["level"] == record["level"] for r in records):
            return
        records.append(record)
        records.sort(key=lambda r: r["level"])
        self._draw_seeds()

    def _draw_seeds(self) -> None:
        """Mean lines, the mean ± std band of test accuracy and each seed's test accuracy; phases from all seeds."""
        self.records = level_means(self.by_seed)
        x = self._draw_lines([r for records in self.by_seed.values() for r in records])
        lower, upper, *lines = self.levels.data[self._base:]
        lower.x = upper.x = x
        lower.y = [None if r.get("test_acc") is None else r["test_acc"] - r["test_acc_std"] for r in self.records]
        upper.y = [None if r.get("test_acc") is None else r["test_acc"] + r["test_acc_std"] for r in self.records]
        for trace, records in zip(lines, self.by_seed.values(), strict=True):
            trace.x = [float(v) for v in remaining_fraction([r["sparsity"] for r in records])]
            trace.y = [r.get("test_acc") for r in records]

    def _fit_axes(self, x: list[float]) -> None:
        """x: from the densest to the sparsest level with room on both sides; distance from 0 to its max."""
        logs = np.log10(x)
        self.levels.update_xaxes(range=[logs.max() + 0.08, logs.min() - 0.12])
        distances = [r.get("learning_distance") for r in self.records if r.get("learning_distance") is not None]
        top = max(distances, default=1.0) * 1.08 or 1.0
        self.levels.update_yaxes(range=[0, top], row=2, col=1)

    def _shade(self, located: list[dict]) -> None:
        """Shade the phases once there are enough levels to locate them on `located` (the run's records, or all
        seeds' records: `detect_phases` averages over seeds); re-located after every level."""
        self.levels.layout.shapes, self.levels.layout.annotations = (), ()
        self.phases = ""
        self.levels.data[0].marker.update(symbol=SERIES["test_acc"].symbol, size=None)  # phase markers go with shading
        if len(self.records) < MIN_LEVELS_FOR_PHASES:
            return
        try:
            report = detect_phases(pd.DataFrame(located))
        except (SddError, ValueError, KeyError):  # too few usable levels yet: shade later
            return
        shade_phases(self.levels, report, rows=(1, 2))
        self.phases = report.summary

    def _clear_epochs(self, title: str) -> None:
        for trace in self.epochs.data:
            trace.x, trace.y = [], []
        self.epochs.layout.title.text = title
        self.epochs.update_xaxes(range=[0.5, 1.5], dtick=1)
        self.epochs.update_layout(yaxis2={"range": [0, 1]})

    def _add_epoch(self, event: EpochEnded) -> None:
        stats = event.stats
        self.epochs.layout.title.text = f"level {event.level}, epoch {stats.epoch}/{stats.last_epoch}"
        for trace in self.epochs.data:
            value = getattr(stats, trace.meta)
            if value is not None:
                trace.x = (*trace.x, stats.epoch)
                trace.y = (*trace.y, value)
        first = min((min(t.x) for t in self.epochs.data if t.x), default=stats.epoch)
        self.epochs.update_xaxes(range=[first - 0.5, stats.last_epoch + 0.5],
                                 dtick=None if stats.last_epoch - first > 12 else 1)
        losses = self.epochs.data[2].y or (1.0,)
        self.epochs.update_layout(yaxis2={"range": [0, max(losses) * 1.1 or 1.0]})
