"""grader.self_check() from inside a notebook: Jupyter, VS Code, a Colab stand-in, an
unsaved notebook, and no notebook at all. Each notebook is run the way the editor
would run it (nbclient, a real kernel), then compared with `grader grade`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grader.api import grade, grade_one
from tests.fixtures.notebooks import HEAD, net, train

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parent.parent
TOTAL = re.compile(r"01-very-basics: ([\d.]+)/300")


def run_in_editor(nb: nbformat.NotebookNode, folder: Path) -> list[dict]:
    """Execute as an editor's kernel would; every output of every cell, in order."""
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def text_of(outputs: list[dict]) -> str:
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        for key in ("text/html", "text/plain"):
            if key in out.get("data", {}):
                parts.append(out["data"][key])
        if out.get("output_type") == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "\n".join(parts)


def small_notebook(*extra: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"grader": {"assignment": "01-very-basics"}})
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (HEAD, net(), train(epochs=50), *extra)]
    return nb


def test_in_jupyter_the_template_grades_as_grader_grade_does(tmp_path, grading, monkeypatch):
    folder = tmp_path / "repo"
    shutil.copytree(ROOT / "student_template", folder)
    path = folder / "XOR.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))  # what Jupyter sets in a notebook's kernel
    nb = nbformat.read(path, as_version=4)
    assert "grader.self_check()" in nb.cells[-1].source  # the template's last cell
    shown = text_of(run_in_editor(nb, folder))
    assert "<table class='grader-self-check'>" in shown and "Exactly 44 trainable parameters" in shown
    assert "warning:" not in shown  # run as saved
    in_notebook = float(TOTAL.search(shown).group(1))
    assert in_notebook == grade(paths=[folder], grading=grading)["repo"].score


def test_in_vs_code_the_notebook_file_comes_from_its_variable(tmp_path, grading, monkeypatch):
    """And through the magic: %load_ext grader, then %grader_check."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    path = tmp_path / "vscode.ipynb"
    nb = small_notebook(f"__vsc_ipynb_file__ = {str(path)!r}  # VS Code sets this",
                        "%load_ext grader\nr = %grader_check\nprint('SCORE', r.score, r.max_score)")
    nbformat.write(nb, path)
    shown = text_of(run_in_editor(nb, tmp_path))
    assert "(VS Code)" in shown and "<table class='grader-self-check'>" in shown
    score = float(re.search(r"SCORE ([\d.]+) 300", shown).group(1))
    assert score == grade_one(path=path, grading=grading).score


COLAB = """import json, sys, types
google, colab, message = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab._message"))
def blocking_request(kind, request="", timeout_sec=0):  # Colab's frontend hands over the notebook
    assert kind == "get_ipynb"
    return {{"ipynb": json.load(open({path!r}))}}
message.blocking_request, colab._message, google.colab = blocking_request, message, colab
sys.modules.update({{"google": google, "google.colab": colab, "google.colab._message": message}})"""


def test_in_colab_the_notebook_comes_from_colabs_api(tmp_path, grading, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    path = tmp_path / "drive" / "colab.ipynb"  # stands for the notebook kept in Drive
    path.parent.mkdir()
    nb = small_notebook(COLAB.format(path=str(path)),
                        "import grader\nr = grader.self_check()\nprint('SCORE', r.score)")
    nbformat.write(nb, path)
    shown = text_of(run_in_editor(nb, tmp_path))
    assert "(Colab)" in shown and "warning:" not in shown
    assert float(re.search(r"SCORE ([\d.]+)", shown).group(1)) == grade_one(path=path, grading=grading).score


def test_cells_run_but_not_saved_are_warned_about(tmp_path, monkeypatch):
    path = tmp_path / "edited.ipynb"
    saved = small_notebook("import grader\nr = grader.self_check(display=False)")
    nbformat.write(saved, path)
    running = nbformat.from_dict(saved)
    running.cells[2].source = train(epochs=2001)  # edited and run, never saved
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    shown = text_of(run_in_editor(running, tmp_path))
    assert "warning: 1 cell(s) you ran are not in the saved edited.ipynb (or were changed since): " \
           "save the notebook first" in shown


def test_outside_a_notebook_it_says_what_to_do_instead(tmp_path, monkeypatch):
    done = subprocess.run([sys.executable, "-c", "import grader; grader.self_check()"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert ("NotInNotebook: self_check() grades the notebook it is called from, and this is not a "
            "notebook (no Jupyter kernel): in a terminal, run `grader check XOR.ipynb` instead") in done.stderr
    # a kernel, but nothing says which notebook it runs
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import grader\ntry:\n    grader.self_check()\nexcept Exception as exc:\n"
        "    print(type(exc).__name__, exc)")]
    shown = text_of(run_in_editor(nb, tmp_path))
    assert "NotInNotebook self_check() could not tell which notebook this kernel belongs to" in shown
