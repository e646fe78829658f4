"""Notebooks stay output-free on disk: JupyterLab's pre-save hook strips exactly what nbstripout strips."""

from __future__ import annotations

import json


def test_hygiene_strips_like_nbstripout(tmp_path):
    import subprocess
    import sys

    from sddlab.app.hygiene import pre_save_hook
    from sddlab.app.notebooks import NOTEBOOK_DIR

    dirty = json.loads((NOTEBOOK_DIR / "explore.ipynb").read_text())
    dirty["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {}}}}
    code = next(cell for cell in dirty["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "display_data", "metadata": {},
                        "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "m"}}}]
    code["execution_count"], code["metadata"]["execution"] = 7, {"iopub.status.busy": "now"}
    text = json.dumps(dirty)
    by_tool = subprocess.run([sys.executable, "-m", "nbstripout", "--keep-id", "-t"], input=text, text=True,
                             capture_output=True, check=True).stdout
    model = {"type": "notebook", "content": json.loads(text)}
    pre_save_hook(model, path="explore.ipynb")
    assert model["content"] == json.loads(by_tool)
    assert model["content"] == json.loads((NOTEBOOK_DIR / "explore.ipynb").read_text()), "stored output-free"
