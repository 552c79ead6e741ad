"""The executed notebook as HTML cells: nbconvert renders each cell, ``safety.clean``
cleans it; the page puts each cell's status and the rubric's notes beside it."""

from __future__ import annotations

import base64
import copy
import re
from functools import lru_cache
from pathlib import Path

import nbformat

from grader.html.safety import clean

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter  # heavy import: only when a page is made

    exporter = HTMLExporter(template_name="notebook", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_anchor_links = True
    return exporter


def _prepare(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """SVG outputs become pictures (an inline SVG could carry script, an <img> of one
    cannot); JavaScript and widget outputs are dropped."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            for kind in [k for k in data if "javascript" in k or "widget" in k]:
                del data[kind]
            svg = data.pop("image/svg+xml", None)
            if svg is not None and "image/png" not in data:
                text = svg if isinstance(svg, str) else "".join(svg)
                encoded = base64.b64encode(text.encode()).decode()
                data["text/html"] = f'<img src="data:image/svg+xml;base64,{encoded}" alt="figure">'
    return nb


def render_cells(nb: nbformat.NotebookNode) -> dict[int, str]:
    """Each cell's clean HTML, by 1-based position. Cells are rendered one at a time:
    nbconvert re-parses what it rendered, and HTML in one cell (an unclosed ``<script>``
    in prose, a ``<div class="``) must not swallow the cells after it."""
    exporter = _exporter()
    prepared = _prepare(nb)
    cells: dict[int, str] = {}
    for position, cell in enumerate(prepared.cells, start=1):
        single = nbformat.v4.new_notebook(metadata=prepared.metadata, cells=[cell])
        body, _ = exporter.from_notebook_node(single)
        cells[position] = clean(body)
    return cells


def model_cell(nb: nbformat.NotebookNode, model_class: str | None) -> int | None:
    """The cell that defines the model's class (where the architecture notes go)."""
    if not model_class:
        return None
    pattern = re.compile(rf"^\s*class\s+{re.escape(model_class)}\b", re.MULTILINE)
    found = [i for i, c in enumerate(nb.cells, start=1)
             if c.cell_type == "code" and pattern.search(c.source)]
    return found[-1] if found else None
