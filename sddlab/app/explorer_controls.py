"""The explorer's controls: a compact two-column grid for a 1366×768 laptop, read as `Choices`.

Option lists come from `sddlab.config.choices` and the registries; numbers are plain text boxes (never
sliders, which clamp silently), checked by `explorer_choices.check` with one wording per rule.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from sddlab.app.explorer_choices import (
    LABELS,
    MAX_SEEDS,
    SCHEDULES,
    Choices,
    choices_of,
    fitting_models,
    has_hidden,
    has_width,
    oneshot_fraction,
    oneshot_targets,
    parse_hidden,
    prunable_weights,
    reached_sparsity,
)
from sddlab.config import Config, choices

_STYLE = {"description_width": "96px"}


def _labelled(kind: type, label: str, **kwargs) -> w.ValueWidget:
    return kind(description=label, style=_STYLE, layout=w.Layout(width="auto", min_width="0"), **kwargs)


class Controls:
    """Every choice the explorer offers, as widgets; `choices()` reads them, `fill(config)` writes them."""

    def __init__(self, presets: dict[str, Config], preset: str):
        base, self._presets = presets[preset], presets
        self.preset = _labelled(w.Dropdown, "preset", options=list(presets), value=preset)
        self.data = _labelled(w.Dropdown, LABELS["data_set"], options=choices("data.name"), value=base.data.name)
        self.model = _labelled(w.Dropdown, LABELS["model"], options=fitting_models(base.data.name),
                               value=base.model.name)
        self.hidden = _labelled(w.Text, LABELS["hidden"], value=",".join(map(str, base.model.hidden)))
        self.width = _labelled(w.FloatText, LABELS["width"], value=base.model.width, step=0.25)
        self.noise_type = _labelled(w.Dropdown, LABELS["noise_type"], options=choices("noise.type"),
                                    value=base.noise.type)
        self.noise_rate = _labelled(w.FloatText, LABELS["noise_rate"], value=base.noise.rate, step=0.05)
        self.schedule = w.ToggleButtons(options=[(value.replace("oneshot", "one-shot"), value) for value in SCHEDULES],
                                        value=base.pruning.strategy, style={"button_width": "84px"})
        self.fraction = _labelled(w.FloatText, LABELS["fraction"], value=base.pruning.fraction, step=0.05)
        self.levels = _labelled(w.IntText, LABELS["levels"], value=base.experiment.levels)
        self.final_sparsity = _labelled(w.FloatText, LABELS["final_sparsity"], step=0.01,
                                        value=round(reached_sparsity(base.pruning.fraction, base.experiment.levels), 6))
        self.score = _labelled(w.Dropdown, LABELS["score"], options=choices("pruning.score"), value=base.pruning.score)
        self.scope = _labelled(w.Dropdown, LABELS["scope"], options=choices("pruning.scope"), value=base.pruning.scope)
        self.mode = _labelled(w.Dropdown, LABELS["mode"], options=choices("retraining.mode"),
                              value=base.retraining.mode)
        self.epochs = _labelled(w.IntText, LABELS["epochs"], value=choices_of(base).epochs)
        self.seed = _labelled(w.IntText, LABELS["seed"], value=base.experiment.seed)
        self.seeds = _labelled(w.IntText, LABELS["seeds"], value=1,  # a count, not in any config: `fill` keeps it
                               tooltip=f"runs seed, seed + 1, ... (1 to {MAX_SEEDS}); the level figure shows each "
                               "seed's test accuracy and their mean ± std")
        self.reach = w.HTML(layout=w.Layout(grid_area="reach"))
        self._syncing = False
        self.data.observe(self._data_changed, "value")
        self.model.observe(lambda _: self._show_relevant(), "value")
        self.schedule.observe(lambda _: self._show_relevant(), "value")
        self._show_relevant()

    def values(self) -> list[w.ValueWidget]:
        """Every control whose change changes the configuration or the runs shown (the preset included)."""
        return [self.preset, self.data, self.model, self.hidden, self.width, self.noise_type, self.noise_rate,
                self.schedule, self.fraction, self.levels, self.final_sparsity, self.score, self.scope, self.mode,
                self.epochs, self.seed, self.seeds]

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` after any control changes, once per user edit (not while `fill` writes them)."""
        for control in self.values()[1:]:
            control.observe(lambda _: None if self._syncing else callback(), "value")

    def choices(self) -> Choices:
        """What the controls hold (raises ChoiceError for a malformed hidden-sizes text)."""
        return Choices(
            data_set=self.data.value, model=self.model.value, hidden=parse_hidden(self.hidden.value),
            width=self.width.value, noise_type=self.noise_type.value, noise_rate=self.noise_rate.value,
            schedule=self.schedule.value, fraction=self.fraction.value, levels=self.levels.value,
            final_sparsity=self.final_sparsity.value, score=self.score.value, scope=self.scope.value,
            mode=self.mode.value, epochs=self.epochs.value, seed=self.seed.value, seeds=self.seeds.value,
        )

    def fill(self, config: Config) -> None:
        """Write a config's values (a preset's) into the controls without triggering a change per control.

        The seeds count is no part of a config and stays as it is."""
        own = choices_of(config)
        self._syncing = True
        try:
            self.data.value = own.data_set
            self.model.options = fitting_models(own.data_set)
            self.model.value, self.hidden.value, self.width.value = own.model, ",".join(map(str, own.hidden)), own.width
            self.noise_type.value, self.noise_rate.value = own.noise_type, own.noise_rate
            self.schedule.value, self.fraction.value, self.levels.value = own.schedule, own.fraction, own.levels
            self.final_sparsity.value = own.final_sparsity
            self.score.value, self.scope.value, self.mode.value = own.score, own.scope, own.mode
            self.epochs.value, self.seed.value = own.epochs, own.seed
        finally:
            self._syncing = False
        self._show_relevant()

    def show_reach(self, chosen: Choices) -> None:
        """The sparsity the schedule reaches and the weights left (one-shot: the list of targets)."""
        weights = prunable_weights(chosen.data_set, chosen.model, tuple(chosen.hidden), float(chosen.width))
        if chosen.schedule == "iterative":
            final = reached_sparsity(chosen.fraction, chosen.levels)
            text = f"reaches {final:.2%} sparsity, ≈{round(weights * (1 - final)):,} of {weights:,} weights left"
        else:
            targets = oneshot_targets(oneshot_fraction(chosen.final_sparsity, chosen.levels), chosen.levels)
            shown = ", ".join(f"{t:.1%}" for t in targets[:6]) + (", …" if len(targets) > 6 else "")
            text = (f"targets {shown}; last ≈{round(weights * (1 - targets[-1])):,} of {weights:,} weights left")
        self.reach.value = f"<div style='font-size:12px;line-height:1.35'>{text}</div>"

    def clear_reach(self) -> None:
        self.reach.value = ""

    # -- layout -----------------------------------------------------------------------------------
    def _data_changed(self, change) -> None:
        if self._syncing:
            return
        fit = fitting_models(change["new"])
        current = self.model.value
        self._syncing = True
        preset_model = self._presets[self.preset.value].model.name
        try:  # keep the architecture when it still fits, else the preset's, else the first that fits
            self.model.options = fit
            self.model.value = current if current in fit else preset_model if preset_model in fit else fit[0]
        finally:
            self._syncing = False
        self._show_relevant()

    def _show_relevant(self) -> None:
        """Hide what the chosen architecture and schedule do not read (hidden sizes, width, fraction...)."""
        shown = {
            self.hidden: has_hidden(self.model.value), self.width: has_width(self.model.value),
            self.fraction: self.schedule.value == "iterative", self.final_sparsity: self.schedule.value == "oneshot",
        }
        for control, visible in shown.items():
            control.layout.display = None if visible else "none"

    @property
    def widget(self) -> w.Widget:
        """Two columns: what is trained (left) and how it is pruned and repeated (right, seeds last); the
        schedule spans both."""
        left = w.VBox([self.preset, self.data, self.model, self.hidden, self.width, self.noise_type, self.noise_rate,
                       self.seed], layout=w.Layout(min_width="0"))
        right = w.VBox([self.levels, self.fraction, self.final_sparsity, self.score, self.scope, self.mode,
                        self.epochs, self.seeds], layout=w.Layout(min_width="0"))
        grid = w.GridBox([left, right], layout=w.Layout(grid_template_columns="1fr 1fr", grid_gap="0 8px"))
        label = w.HTML(f"<div style='text-align:right;width:92px;padding-right:4px'>{LABELS['schedule']}</div>")
        return w.VBox([grid, w.HBox([label, self.schedule]), self.reach])
