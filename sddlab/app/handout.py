"""An executed notebook as one self-contained HTML page: a handout a student without a machine can read.

nbconvert's `lab` template renders the notebook; its script tags that fetch require.js, MathJax, mermaid and
the widget manager from the network are left out. Plotly figures (stored as plotly's JSON) become inline
plotly HTML, with plotly.js embedded once; images are embedded; live widgets (progress bars) are dropped,
since a static page cannot drive them. Opening the page makes no network request.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from sddlab.io import atomic_write_text

PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def static_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with plotly outputs as inline HTML (plotly.js in the first only) and widget views removed."""
    import plotly.io as pio

    first = True
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET in data:
                continue
            if PLOTLY in data:
                spec = dict(data[PLOTLY])
                config = spec.pop("config", {})
                figure = pio.from_json(json.dumps(spec), skip_invalid=True)
                html = pio.to_html(figure, include_plotlyjs=first, full_html=False,
                                   config={**config, "responsive": True})
                output = nbformat.v4.new_output("display_data", data={"text/html": html})
                first = False
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    return notebook


def write_handout(executed: str | Path, target: str | Path | None = None) -> Path:
    """Write `executed` (a .ipynb with outputs) as self-contained HTML; returns the path (default: .html beside)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    executed = Path(executed)
    target = Path(target) if target else executed.with_suffix(".html")
    notebook = static_outputs(nbformat.read(executed, as_version=4))
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"handout.html.j2": TEMPLATE})],
                            template_file="handout.html.j2", embed_images=True)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": executed.stem}})
    return atomic_write_text(target, body)
