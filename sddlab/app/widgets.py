"""The interactive explorer: ipywidgets pick an experiment, a background thread runs it, figures update live."""

from __future__ import annotations

import html
import threading
from pathlib import Path

import ipywidgets as w
import pandas as pd

from sddlab.app.tables import format_table
from sddlab.config import Config, choices
from sddlab.duration import Duration
from sddlab.errors import SddError
from sddlab.events import Event, LevelFinished, LevelStarted, RunFinished
from sddlab.experiment import StopRequested
from sddlab.figures.live import LiveFigures
from sddlab.presets import list_presets
from sddlab.runs import run, run_dir_of
from sddlab.store import RunStore

_STYLE = {"description_width": "130px"}


class Explorer:
    """Pick data set + architecture (a preset), noise, schedule, retraining; Run / Stop / Resume.

    The experiment runs in a background thread so the notebook stays responsive; Stop takes effect at
    the next epoch boundary and keeps every finished level; Resume continues from the store.
    """

    def __init__(self, results: str | Path = "results", data_dir: str | Path = "data", preset: str = "digits"):
        self.results, self.data_dir = Path(results), Path(data_dir)
        self.presets = list_presets()
        base = self.presets[preset]
        self.preset = w.Dropdown(options=list(self.presets), value=preset, description="preset", style=_STYLE)
        self.noise_type = w.Dropdown(options=choices("noise.type"),
                                     value=base.noise.type, description="noise type", style=_STYLE)
        self.noise_rate = w.FloatSlider(value=base.noise.rate, min=0.0, max=0.95, step=0.05,
                                        description="noise rate", style=_STYLE)
        self.fraction = w.FloatSlider(value=base.pruning.fraction, min=0.05, max=0.9, step=0.05,
                                      description="prune / level", style=_STYLE)
        self.levels = w.IntSlider(value=base.experiment.levels, min=0, max=40, description="levels", style=_STYLE)
        self.score = w.Dropdown(options=choices("pruning.score"), value=base.pruning.score,
                                description="criterion", style=_STYLE)
        self.scope = w.Dropdown(options=choices("pruning.scope"), value=base.pruning.scope, description="scope",
                                style=_STYLE)
        self.mode = w.Dropdown(options=choices("retraining.mode"), value=base.retraining.mode,
                               description="retraining", style=_STYLE)
        self.epochs = w.IntText(value=_epochs(base), description="epochs / level", style=_STYLE)
        self.seed = w.IntText(value=base.experiment.seed, description="seed", style=_STYLE)
        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.resume_button = w.Button(description="Resume", icon="forward", disabled=True)
        self.status = w.HTML(value="ready")
        self.table = w.HTML()
        self.figures = LiveFigures()
        self.run_button.on_click(lambda _: self.start())
        self.resume_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.preset.observe(self._preset_changed, "value")
        self._syncing = False
        for control in self._controls()[1:]:
            control.observe(lambda _: None if self._syncing else self.show_stored(), "value")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.show_stored()

    # -- the configuration the widgets describe ---------------------------------------------------
    def _controls(self) -> list[w.ValueWidget]:
        return [self.preset, self.noise_type, self.noise_rate, self.fraction, self.levels, self.score, self.scope,
                self.mode, self.epochs, self.seed]

    def config(self) -> Config:
        """The chosen configuration (raises a one-line SddError for an invalid choice)."""
        return self.presets[self.preset.value].with_overrides({
            "noise.type": self.noise_type.value,
            "noise.rate": round(self.noise_rate.value, 4),
            "pruning.fraction": round(self.fraction.value, 4),
            "pruning.score": self.score.value,
            "pruning.scope": self.scope.value,
            "retraining.mode": self.mode.value,
            "training.duration": str(Duration.epochs(self.epochs.value)),
            "experiment.levels": self.levels.value,
            "experiment.seed": self.seed.value,
        })

    def _preset_changed(self, change) -> None:
        base = self.presets[change["new"]]
        self._syncing = True
        try:
            self.noise_type.value, self.noise_rate.value = base.noise.type, base.noise.rate
            self.fraction.value, self.levels.value = base.pruning.fraction, base.experiment.levels
            self.score.value, self.scope.value = base.pruning.score, base.pruning.scope
            self.mode.value, self.epochs.value = base.retraining.mode, _epochs(base)
            self.seed.value = base.experiment.seed
        finally:
            self._syncing = False
        self.show_stored()

    # -- actions ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _valid_config(self) -> Config | None:
        """The chosen configuration, or None with the error shown in the widget."""
        try:
            config = self.config()
        except SddError as error:
            self._show_error(error)
            return None
        return config

    def show_stored(self) -> None:
        """Show what the store holds for the chosen configuration (nothing when it never ran)."""
        if self.running or (config := self._valid_config()) is None:
            return
        run_dir = run_dir_of(config, self.results)
        records = RunStore(run_dir).records() if (run_dir / "config.json").exists() else []
        self.figures.show_records(records)
        self._render_table(records)
        done = len(records) == config.experiment.levels + 1
        self.resume_button.disabled = not records or done
        self._set_status("finished (from the store)" if done else
                         f"{len(records)} level(s) stored: Resume continues" if records else "ready")

    def start(self) -> None:
        """Run (or resume) the chosen configuration in a background thread."""
        if self.running or (config := self._valid_config()) is None:
            return
        self._stop.clear()
        self.run_button.disabled = self.resume_button.disabled = True
        self.stop_button.disabled = False
        self._set_status(f"running {config.run_name()} ...")
        self._thread = threading.Thread(target=self._work, args=(config,), daemon=True, name="sddlab-explorer")
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to stop at the next epoch boundary; finished levels are kept."""
        self._stop.set()
        self._set_status("stopping at the end of this epoch ...")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background run ends (for scripts and tests); True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _work(self, config: Config) -> None:
        try:
            run_dir = run(config, self.results, data_dir=self.data_dir, progress=False, listener=self._on_event,
                                 should_stop=self._stop.is_set, epoch_metrics=True)
            self._set_status(f"finished: {html.escape(str(run_dir))}")
        except StopRequested:
            self._set_status("stopped; finished levels are kept, Resume continues")
        except SddError as error:
            self._show_error(error)
        except Exception as error:  # shown in the widget instead of a dead thread
            self._show_error(f"{type(error).__name__}: {error}")
        finally:
            self.run_button.disabled = False
            self.stop_button.disabled = True
            records = self.figures.records
            self.resume_button.disabled = not records or len(records) == config.experiment.levels + 1

    def _on_event(self, event: Event) -> None:
        self.figures(event)
        if isinstance(event, LevelStarted):
            self._set_status(f"level {event.level}: sparsity {event.sparsity:.2%}, {event.remaining} weights left")
        elif isinstance(event, (LevelFinished, RunFinished)):
            self._render_table(self.figures.records)

    # -- display ----------------------------------------------------------------------------------
    def _set_status(self, text: str) -> None:
        self.status.value = text

    def _show_error(self, error: object) -> None:
        self.status.value = f"<span style='color:#c00'><b>error:</b> {html.escape(str(error))}</span>"

    def _render_table(self, records: list[dict]) -> None:
        self.table.value = f"<pre>{html.escape(format_table(pd.DataFrame(records)))}</pre>"

    @property
    def widget(self) -> w.Widget:
        controls = w.VBox([*self._controls()])
        buttons = w.HBox([self.run_button, self.stop_button, self.resume_button])
        figures = w.VBox([w.HBox([self.figures.levels, self.figures.distance]), self.figures.epochs])
        return w.VBox([controls, buttons, self.status, figures, self.table])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _epochs(config: Config) -> int:
    """The epochs-per-level control's value for a config (an iteration count shown as whole hundreds)."""
    duration = config.training.duration
    return duration.count if duration.unit == "ep" else max(1, duration.count // 100)
