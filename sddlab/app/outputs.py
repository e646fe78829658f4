"""What a notebook leaves next to its results: self-contained HTML figures and a small JSON of values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from sddlab import paths
from sddlab.io import json_safe, write_html, write_json


class NotebookOutputs:
    """A folder of figures (`NAME.html`) and one `values.json` that tests and readers can check."""

    def __init__(self, output_dir: str | Path | None, name: str = "notebook", results: str | Path | None = None):
        """`output_dir` None: `<results>/notebooks/<name>/`, results following `sddlab.paths`."""
        self.dir = Path(output_dir) if output_dir else paths.results_dir(results) / "notebooks" / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.values: dict[str, Any] = {}

    def figure(self, name: str, fig: go.Figure) -> Path:
        return write_html(fig, self.dir / f"{name}.html")

    def record(self, **values: Any) -> dict[str, Any]:
        """Add values (made JSON-safe: NaN as null) and rewrite values.json atomically."""
        self.values.update(json_safe(values))
        write_json(self.dir / "values.json", self.values)
        return self.values
