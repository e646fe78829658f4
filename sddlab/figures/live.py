"""Live plotly FigureWidgets fed by a run's events: level curves, learning distance, per-epoch curves."""

from __future__ import annotations

import threading

import plotly.graph_objects as go

from sddlab.events import EpochEnded, Event, LevelFinished, LevelStarted, RunStarted
from sddlab.figures.axis import remaining_fraction, sparsity_axis
from sddlab.figures.curve import ACCURACY_SERIES, DISTANCE_SERIES


def _axis(fig: go.FigureWidget, title: str) -> None:
    sparsity_axis(fig)
    fig.update_layout(title=title, template="plotly_white", height=360, margin={"t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.3})


class LiveFigures:
    """Three FigureWidgets updated as events arrive (thread-safe); usable as a run listener."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.levels = go.FigureWidget()
        for column, label, color in ACCURACY_SERIES:
            self.levels.add_scatter(x=[], y=[], mode="lines+markers", name=label, line={"color": color}, meta=column)
        _axis(self.levels, "accuracy and memorisation per level")
        self.levels.update_yaxes(range=[0, 1.02], title_text="accuracy / fraction")
        self.distance = go.FigureWidget()
        for column, label, color in DISTANCE_SERIES:
            self.distance.add_scatter(x=[], y=[], mode="lines+markers", name=label, line={"color": color}, meta=column)
        _axis(self.distance, "learning distance per level")
        self.epochs = go.FigureWidget()
        self.epochs.add_scatter(x=[], y=[], mode="lines", name="train accuracy (noisy labels)", meta="train_acc")
        self.epochs.add_scatter(x=[], y=[], mode="lines", name="test accuracy", meta="test_acc")
        self.epochs.add_scatter(x=[], y=[], mode="lines", name="train loss", meta="train_loss", yaxis="y2")
        self.epochs.update_layout(
            title="current level, per epoch", template="plotly_white", height=320, margin={"t": 50, "b": 40},
            xaxis={"title": "epoch"}, yaxis={"title": "accuracy", "range": [0, 1.02]},
            yaxis2={"title": "loss", "overlaying": "y", "side": "right"}, legend={"orientation": "h", "y": -0.35},
        )
        self.records: list[dict] = []

    # -- public -----------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.records = []
            for fig in (self.levels, self.distance, self.epochs):
                with fig.batch_update():
                    for trace in fig.data:
                        trace.x, trace.y = [], []

    def show_records(self, records: list[dict]) -> None:
        """Draw finished levels at once (e.g. a configuration read back from the store)."""
        self.reset()
        for record in records:
            self._add_record(record)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted) and event.finished == 0:
            self.reset()
        elif isinstance(event, LevelStarted):
            self._clear_epochs()
        elif isinstance(event, EpochEnded) and event.level >= 0:
            self._add_epoch(event)
        elif isinstance(event, LevelFinished):
            self._add_record(event.record)

    # -- internals --------------------------------------------------------------------------------
    def _add_record(self, record: dict) -> None:
        with self._lock:
            if any(r["level"] == record["level"] for r in self.records):
                return
            self.records.append(record)
            self.records.sort(key=lambda r: r["level"])
            x = [float(v) for v in remaining_fraction([r["sparsity"] for r in self.records])]
            for fig in (self.levels, self.distance):
                with fig.batch_update():
                    for trace in fig.data:
                        trace.x = x
                        trace.y = [r.get(trace.meta) for r in self.records]

    def _clear_epochs(self) -> None:
        with self._lock, self.epochs.batch_update():
            for trace in self.epochs.data:
                trace.x, trace.y = [], []

    def _add_epoch(self, event: EpochEnded) -> None:
        stats = event.stats
        with self._lock, self.epochs.batch_update():
            self.epochs.layout.title.text = f"level {event.level}, epoch {stats.epoch}/{stats.last_epoch}"
            for trace in self.epochs.data:
                value = getattr(stats, trace.meta)
                if value is None:
                    continue
                trace.x = (*trace.x, stats.epoch)
                trace.y = (*trace.y, value)
