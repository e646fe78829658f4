"""The interactive explorer: controls pick an experiment, a background thread runs it, figures update live.

Layout for a 1366×768 laptop: a side panel (controls, Run / Stop / Resume, status, the per-epoch plot) next
to the level figure, wrapping into one column when the notebook is narrow; the level table below.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path

import ipywidgets as w
import pandas as pd
from IPython.display import display

from sddlab import paths
from sddlab.app import explorer_seeds as seeds
from sddlab.app.explorer_choices import ChoiceError, differences, offered_presets, to_config
from sddlab.app.explorer_controls import Controls
from sddlab.app.failed_download import download_hint, folders_under, remove_new_empty
from sddlab.app.tables import format_table
from sddlab.config import Config
from sddlab.divergence import Diverged, SeedsDiverged
from sddlab.epoch_end import StopRequested
from sddlab.errors import DatasetMissing, SddError
from sddlab.events import Event, LevelFinished, LevelStarted, RunFinished
from sddlab.figures.export import write_run_figure
from sddlab.figures.live import LiveFigures
from sddlab.figures.theme import UI_PX
from sddlab.pace import Pace
from sddlab.runs import run, run_dir_of
from sddlab.selection import describe_pick

PANEL_WIDTH = "430px"
REDRAW_EVERY = 0.3  # seconds: at most ~3 redraws of a figure per second, the last change always drawn
NO_CURVES = "no curves: fix the choice named in red"


class Explorer:
    """Pick a data set, an architecture, noise, a sparsity schedule and retraining; Run / Stop / Resume.

    A preset fills the controls; any change says whether the configuration still equals the preset and
    which run directory it writes. The experiment runs in a background thread so the notebook stays
    responsive; Stop takes effect at the next epoch boundary and keeps every finished level; Resume
    continues from the store. Every run (finished or stopped) writes the run directory's `figure.html`.
    Runs start in `_launch` only; seeds > 1 runs seed, seed + 1, ... through `explorer_seeds` (lockstep
    where the model stacks) and draws each seed's test accuracy and their mean ± std band.
    """

    def __init__(self, results: str | Path | None = None, data_dir: str | Path | None = None,
                 preset: str = "digits", device: str = "auto"):
        """`results` and `data_dir` None follow `sddlab.paths` (SDDLAB_RESULTS / SDDLAB_DATA, else ./)."""
        self.results, self.data_dir = paths.results_dir(results), paths.data_dir(data_dir)
        self.device = device
        self.presets = offered_presets(self.data_dir, keep=preset)  # Fashion-MNIST's only when installed
        self.controls = Controls(self.presets, preset)
        self.run_button = w.Button(description="Run", button_style="success", icon="play",
                                   layout=w.Layout(width="96px"))
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                    layout=w.Layout(width="96px"))
        self.resume_button = w.Button(description="Resume", icon="forward", disabled=True,
                                      layout=w.Layout(width="96px"))
        self.status = w.HTML(value="ready")
        self.note = w.HTML()
        self.table = w.HTML()
        self.views = {"levels": w.Output(layout=w.Layout(width="100%")),
                      "epochs": w.Output(layout=w.Layout(width="100%"))}
        self._drawn: dict[str, float] = {}
        self._pending: set[str] = set()
        self._draw_lock = threading.Lock()
        self.figures = LiveFigures(on_change=self._figure_changed)
        self.run_button.on_click(lambda _: self.start())
        self.resume_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.controls.preset.observe(self._preset_changed, "value")
        self.controls.on_change(self.show_stored)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status_text = "ready"
        self.pace = Pace(on_note=lambda _: self._set_status(self._status_text))  # a slow run says why
        self.show_stored()

    # -- the configuration the controls describe --------------------------------------------------
    @property
    def base(self) -> Config:
        """The chosen preset (the starting point the controls change)."""
        return self.presets[self.controls.preset.value]

    def config(self) -> Config:
        """The chosen configuration (raises ChoiceError naming the control for an invalid choice)."""
        return to_config(self.base, self.controls.choices())

    def choose(self, config: Config, seeds: int | None = None) -> None:
        """Fill the controls from `config` (e.g. built from the notebook's parameters) and show its state;
        `seeds` None keeps the seeds control as it is."""
        self.controls.fill(config)
        if seeds is not None:
            self.controls.seeds.value = seeds
        self.show_stored()

    def _preset_changed(self, change) -> None:
        self.controls.fill(self.presets[change["new"]])
        self.show_stored()

    # -- actions ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _valid_config(self) -> Config | None:
        """The chosen configuration, or None with the error shown in place of the curves."""
        try:
            config = self.config()
        except ChoiceError as error:
            self._show_error(error)
            return None
        self.controls.show_reach(self.controls.choices())
        changed = differences(self.base, config)
        count = self.controls.seeds.value
        where = html.escape(str(run_dir_of(config, self.results)) + (
            f" and {count - 1} more: {seeds.describe(config, count)}" if count > 1 else ""))
        head = f"<div style='font-size:{UI_PX['small']}px;line-height:1.35'>preset <b>{html.escape(self.base.name)}</b>"
        self.note.value = (f"{head} unchanged → {where}</div>" if not changed else
                           f"{head} changed: {html.escape('; '.join(changed))} → {where}</div>")
        return config

    def show_stored(self) -> None:
        """Show what the store holds for the chosen configuration (nothing when it never ran)."""
        if self.running or (config := self._valid_config()) is None:
            return
        count = self.controls.seeds.value
        seeds.show_stored(self.figures, config, count, self.results)
        self._render_table(self.figures.records)
        stored, done = self._stored(config)
        self.resume_button.disabled = not stored or done
        self.run_button.disabled = False
        over = f" over {count} seeds" if count > 1 else ""
        self._set_status("finished (from the store)" if done else
                         f"{stored} level(s) stored{over}: Resume continues" if stored else "ready")

    def _stored(self, config: Config) -> tuple[int, bool]:
        """How many levels the figure holds over the runs it shows, and whether every one of them is complete."""
        runs = list(self.figures.by_seed.values()) or [self.figures.records]
        return sum(map(len, runs)), all(len(records) == config.experiment.levels + 1 for records in runs)

    def start(self) -> None:
        """Run (or resume) the chosen configuration in a background thread."""
        if self.running or (config := self._valid_config()) is None:
            return
        self._stop.clear()
        self.run_button.disabled = self.resume_button.disabled = True
        self.stop_button.disabled = False
        count = self.controls.seeds.value
        self._set_status(f"running {config.run_name()} ..." if count == 1 else
                         f"running {html.escape(seeds.describe(config, count))}: {config.run_name()} and more ...")
        self._launch(config, count)

    def _launch(self, config: Config, count: int = 1) -> None:
        self._thread = threading.Thread(target=self._work, args=(config, count), daemon=True, name="sddlab-explorer")
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

    def _work(self, config: Config, count: int = 1) -> None:
        before = folders_under(self.data_dir)
        try:
            if count > 1:
                self.figures.start_seeds(seeds.seed_values(config, count))
                seeds.run_all(config, count, self.results, data_dir=self.data_dir, listener=self._on_seed_event,
                              should_stop=self._stop.is_set, device=self.device, epoch_metrics=True)
                where = f"{count} run directories in {self.results}"
            else:
                if self.figures.by_seed:  # the figure still shows several seeds: the replayed levels redraw it
                    self.figures.reset()
                run_dir = run(config, self.results, data_dir=self.data_dir, progress=False, listener=self._on_event,
                              should_stop=self._stop.is_set, epoch_metrics=True, device=self.device)
                write_run_figure(run_dir)
                where = str(run_dir)
            self._outcome(f"finished: {html.escape(where)} (figure.html written)")
        except StopRequested:
            seeds.write_partial_figures(config, count, self.results)
            self._outcome("stopped; finished levels are kept, Resume continues")
        except (Diverged, SeedsDiverged) as error:  # the curves stay: a gap at the level, the other seeds go on
            seeds.write_partial_figures(config, count, self.results)
            self._outcome(f"<span style='color:#c00'><b>diverged:</b> {html.escape(str(error))}</span>")
        except DatasetMissing as error:
            remove_new_empty(self.data_dir, before)
            self._show_error(ChoiceError("data set", f"{config.data.name} is not on disk and could not be downloaded "
                                         f"here: {download_hint(str(error))} (see data/README.md)"))
        except SddError as error:
            self._show_error(error)
        except Exception as error:  # shown in the widget instead of a dead thread
            self._show_error(f"{type(error).__name__}: {error}")
        finally:
            self.run_button.disabled = False
            self.stop_button.disabled = True
            stored, done = self._stored(config)
            self.resume_button.disabled = not stored or done

    def _on_event(self, event: Event) -> None:
        self.figures(event)
        self.pace(event)
        self._report(event)

    def _on_seed_event(self, seed: int, event: Event) -> None:
        """The `run_seeds` listener: each seed's levels go into the lines and the band."""
        self.figures.seed_event(seed, event)
        self.pace(event)  # seeds in lockstep share their epochs' time
        self._report(event, f"seed {seed}, ")

    def _report(self, event: Event, prefix: str = "") -> None:
        """The level being trained in the status line; the table after every finished level."""
        if isinstance(event, LevelStarted):
            self._set_status(f"{prefix}level {event.level}: sparsity {event.sparsity:.2%}, "
                             f"{event.remaining:,} weights left")
        elif isinstance(event, (LevelFinished, RunFinished)):
            self._render_table(self.figures.records)

    # -- display ----------------------------------------------------------------------------------
    def _figure_changed(self, name: str) -> None:
        """Redraw figure `name` now, or once REDRAW_EVERY after its last redraw (changes in between merge)."""
        with self._draw_lock:
            wait = self._drawn.get(name, 0.0) + REDRAW_EVERY - time.monotonic()
            if wait <= 0:
                self._drawn[name] = time.monotonic()
            elif name in self._pending:
                return
            else:
                self._pending.add(name)
                timer = threading.Timer(wait, self._draw_pending, args=(name,))
                timer.daemon = True
                timer.start()
                return
        self._draw(name)

    def _draw_pending(self, name: str) -> None:
        with self._draw_lock:
            self._pending.discard(name)
            self._drawn[name] = time.monotonic()
        self._draw(name)

    def _draw(self, name: str) -> None:
        """Plotly's own renderer draws the figure at the width of its container (responsive)."""
        bundle = self.figures.mimebundle(name)
        self.views[name].outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    def _set_status(self, text: str) -> None:
        self._status_text = text
        small = f"font-size:{UI_PX['small']}px;line-height:1.3"
        phases = (f"<div style='{small}'>phases: {html.escape(self.figures.phases)}</div>"
                  if self.figures.phases else "")
        note = self.pace.note
        slow = f"<div style='{small};color:#a34500'><b>⚠ {html.escape(note)}</b></div>" if note else ""
        self.status.value = f"<div style='font-size:{UI_PX['text']}px;line-height:1.35'>{text}</div>{slow}{phases}"

    def _outcome(self, text: str) -> None:
        """How the run ended, in the status line; a slow-run note belongs to the run and goes with it."""
        self.pace.reset()
        self._set_status(text)

    def _show_error(self, error: object) -> None:
        """The error in red, in place of the curves and the table of another configuration."""
        self.figures.show_records([], title=NO_CURVES)
        self.table.value = ""
        self.controls.clear_reach()
        self.status.value = f"<span style='color:#c00'><b>error:</b> {html.escape(str(error))}</span>"

    def _render_table(self, records: list[dict]) -> None:
        table = format_table(pd.DataFrame(records)) if records else ""
        if table and self.figures.by_seed:
            table = f"mean over the seeds that finished each level (of {len(self.figures.by_seed)} seeds)\n{table}"
        if table:  # the noise rate typed in the controls: the noise-floor rule's estimate
            rate = self.controls.choices().noise_rate
            table = f"{table}\n{describe_pick(records, rate if isinstance(rate, float) else None)}"
        self.table.value = f"<pre style='font-size:{UI_PX['table']}px;line-height:1.25'>{html.escape(table)}</pre>"

    @property
    def widget(self) -> w.Widget:
        buttons = w.HBox([self.run_button, self.stop_button, self.resume_button])
        panel = w.VBox([self.controls.widget, buttons, self.status, self.note, self.views["epochs"]],
                       layout=w.Layout(width=PANEL_WIDTH, flex="0 0 auto"))
        levels = w.Box([self.views["levels"]], layout=w.Layout(flex="1 1 460px", min_width="380px"))
        top = w.Box([panel, levels], layout=w.Layout(display="flex", flex_flow="row wrap", align_items="flex-start",
                                                     grid_gap="8px", width="100%"))
        return w.VBox([top, self.table], layout=w.Layout(width="100%"))

    def _ipython_display_(self) -> None:
        display(self.widget)

