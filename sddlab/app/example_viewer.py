"""A linked view for notebooks: hover a noisy example in the scatter, see its image and both labels."""

from __future__ import annotations

import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


class ExampleViewer:
    """The examples figure as a live `FigureWidget` beside the hovered example's image and labels."""

    def __init__(self, figure: go.Figure, examples: pd.DataFrame, images: np.ndarray):
        """`images[i]` is training example i's image (`sddlab.analyses.examples.images_of`)."""
        self.examples, self.images = examples.set_index("example"), images
        self.figure = go.FigureWidget(figure)
        self.image = go.FigureWidget(px.imshow(images[0], color_continuous_scale="gray_r"))
        self.image.update_layout(width=260, height=260, margin={"l": 0, "r": 0, "t": 30, "b": 0},
                                 coloraxis_showscale=False)
        self.image.update_xaxes(visible=False)
        self.image.update_yaxes(visible=False)
        self.caption = w.HTML()
        self.figure.data[0].on_hover(self._hovered)
        self.widget = w.HBox([self.figure, w.VBox([self.image, self.caption])])

    def _hovered(self, trace: go.Scatter, points: object, state: object) -> None:
        indices = getattr(points, "point_inds", [])
        if indices:
            self.show(int(trace.customdata[indices[0]][0]))

    def show(self, example: int) -> None:
        """Show training example `example`: its image, true and noisy label, and until when it was fitted."""
        row = self.examples.loc[example]
        self.image.data[0].z = self.images[example]
        self.image.layout.title = f"example {example}"
        until = ("still fitted at the last level" if np.isnan(row["stops_fitted_sparsity"])
                 else f"never fitted again from {100 * row['stops_fitted_sparsity']:.2f}% sparsity")
        self.caption.value = (f"<b>true label {int(row['true_label'])}</b>, trained with label "
                              f"<b>{int(row['label'])}</b>{' (noisy)' if row['noisy'] else ''}<br>"
                              f"its training label fitted at {int(row['levels_fitted'])} levels; {until}")
