"""What a notebook leaves next to its results: self-contained HTML figures and a small JSON of values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from sddlab.plots import write_html
from sddlab.store import atomic_write_text


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN to None."""
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Report:
    """A folder of figures (`NAME.html`) and one `values.json` that tests and readers can check."""

    def __init__(self, output_dir: str | Path):
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.values: dict[str, Any] = {}

    def figure(self, name: str, fig: go.Figure) -> Path:
        return write_html(fig, self.dir / f"{name}.html")

    def record(self, **values: Any) -> dict[str, Any]:
        """Add values and rewrite values.json atomically."""
        self.values.update(_plain(values))
        atomic_write_text(self.dir / "values.json", json.dumps(self.values, indent=2, sort_keys=True) + "\n")
        return self.values
