"""The look of every figure and of the explorer: type large enough for a projector, and the Okabe–Ito
palette, which stays distinct under the common colour-vision deficiencies.

Colour is never the only cue: the level figure's series also differ by dash, phases by their label and
by the marker of the test-accuracy points in them (● light, ▼ critical, ★ sweet, ✕ collapsed), seeds by
their label on hover. Figures name the plotly template `TEMPLATE`; the explorer's text uses `UI_PX`.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008), "Color Universal Design": eight colours told apart by protan, deutan and tritan viewers.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}
# Runs, seeds and groups in this order (yellow last: it is faint on white).
PALETTE = tuple(OKABE_ITO[name] for name in ("blue", "vermillion", "bluish green", "reddish purple", "orange",
                                              "sky blue", "black", "yellow"))
TEMPLATE = "sddlab"
FONT_SIZE, TITLE_SIZE, SMALL_SIZE = 15, 18, 13  # plotly's own default is 12 everywhere
FONT_FAMILY = "DejaVu Sans, Verdana, Arial, sans-serif"  # wide, clear glyphs; has ● ▼ ★ ✕
UI_PX = {"text": 14, "small": 13, "table": 12}  # the explorer's status lines, notes and level table


@dataclass(frozen=True)
class Series:
    """How one measured column is drawn: its label, colour, dash and marker."""

    label: str
    colour: str
    dash: str = "solid"
    symbol: str = "circle"


SERIES = {
    "test_acc": Series("test accuracy", OKABE_ITO["blue"]),
    "train_acc_noisy": Series("train accuracy (noisy labels)", OKABE_ITO["orange"], "dash", "square"),
    "memorized": Series("memorised noisy labels", OKABE_ITO["reddish purple"], "dot", "diamond"),
    "learning_distance": Series("learning distance ‖w₀ − w⊙m‖", OKABE_ITO["bluish green"], "solid", "circle"),
}


@dataclass(frozen=True)
class PhaseStyle:
    """A phase's shading (an Okabe–Ito colour, see-through), the marker of its points and its label glyph."""

    fill: str
    symbol: str
    glyph: str

    def label(self, phase: str) -> str:
        return f"{phase} {self.glyph}"


def rgba(colour: str, alpha: float) -> str:
    """'#RRGGBB' as a CSS rgba() string with the given opacity."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


PHASES = {
    "light": PhaseStyle(rgba(OKABE_ITO["sky blue"], 0.14), "circle", "●"),
    "critical": PhaseStyle(rgba(OKABE_ITO["vermillion"], 0.16), "triangle-down", "▼"),
    "sweet": PhaseStyle(rgba(OKABE_ITO["bluish green"], 0.18), "star", "★"),
    "collapsed": PhaseStyle(rgba(OKABE_ITO["black"], 0.16), "x", "✕"),
}


def seed_colour(index: int) -> str:
    """The colour of the `index`-th seed or run (the palette repeats after eight)."""
    return PALETTE[index % len(PALETTE)]


def _template() -> go.layout.Template:
    base = go.layout.Template(pio.templates["plotly_white"])
    base.layout.update(
        colorway=list(PALETTE), font={"size": FONT_SIZE, "family": FONT_FAMILY, "color": "#222"},
        title={"font": {"size": TITLE_SIZE}}, legend={"font": {"size": SMALL_SIZE}},
        hoverlabel={"font": {"size": SMALL_SIZE}},
    )
    base.layout.xaxis.update(title={"font": {"size": FONT_SIZE}}, tickfont={"size": SMALL_SIZE})
    base.layout.yaxis.update(title={"font": {"size": FONT_SIZE}}, tickfont={"size": SMALL_SIZE})
    base.data.scatter = [go.Scatter(marker={"size": 8}, line={"width": 2.5})]
    return base


pio.templates[TEMPLATE] = _template()
