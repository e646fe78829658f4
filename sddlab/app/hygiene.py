"""Notebooks stay output-free on disk: one `strip` used by JupyterLab's pre-save hook (scripts/jupyter.sh,
`sddlab jupyter`) and mirrored by the nbstripout git filter that scripts/setup.sh configures.

Stripped: cell outputs and execution counts, and saved widget state (`metadata.widgets`), whose views
would otherwise show "Error displaying widget: model not found" when the notebook is reopened.
"""

from __future__ import annotations

from typing import Any

VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def strip(notebook: dict[str, Any]) -> dict[str, Any]:
    """Remove outputs, execution counts, saved widget state and volatile cell metadata, in place."""
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook.get("cells", []):
        for key in VOLATILE_CELL_METADATA:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return notebook


def pre_save_hook(model: dict[str, Any], **_: Any) -> None:
    """Jupyter's ContentsManager.pre_save_hook: strip every notebook before it is written."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        strip(model["content"])
