"""``grader.self_check()``: a student grades the notebook they are editing, from a cell.

It finds the notebook file behind the running kernel (JupyterLab and Notebook, VS Code,
Colab), warns when cells were run that are not in the saved file (the instructor grades
what is saved), grades it exactly as ``grader check`` does — in a fresh kernel, in a
process of its own, never in the student's live kernel — and shows the result as a
table in the notebook. Returns the ``Report``.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.report import Report

DEFAULT_ASSIGNMENT = "01-very-basics"


class NotInNotebook(RuntimeError):
    """self_check() was called where no notebook file can be found."""


@dataclass(frozen=True)
class Located:
    path: Path  # the notebook file to grade (the saved one, or Colab's, written out)
    how: str  # which editor told us
    saved: bool  # a file the student saves (False: Colab's live copy)


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _from_server_sessions() -> Path | None:
    """Jupyter's own answer: the session whose kernel is this one (servers on this machine)."""
    try:
        from ipykernel import get_connection_file
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    import urllib.request

    try:
        kernel_id = Path(get_connection_file()).stem.removeprefix("kernel-")
    except (RuntimeError, AttributeError):
        return None
    for server in list_running_servers():
        url = f"{server['url'].rstrip('/')}/api/sessions?token={server.get('token', '')}"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                sessions = json.load(reply)
        except (OSError, ValueError):
            continue
        for session in sessions:
            if session.get("kernel", {}).get("id") == kernel_id:
                root = Path(server.get("root_dir") or server.get("notebook_dir") or ".")
                return root / session.get("path", session.get("notebook", {}).get("path", ""))
    return None


def locate_notebook() -> Located:
    """The notebook behind this kernel, or ``NotInNotebook`` saying where it looked."""
    ip = _ipython()
    if ip is None or not getattr(ip, "kernel", None):
        raise NotInNotebook(
            "self_check() grades the notebook it is called from, and this is not a notebook "
            "(no Jupyter kernel): in a terminal, run `grader check XOR.ipynb` instead")
    vscode = ip.user_ns.get("__vsc_ipynb_file__")
    if vscode and Path(vscode).is_file():
        return Located(Path(vscode), "VS Code", True)
    if "google.colab" in sys.modules:
        return _colab()
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        for candidate in (Path(session), Path.cwd() / session, Path.cwd() / Path(session).name):
            if candidate.suffix == ".ipynb" and candidate.is_file():
                return Located(candidate.resolve(), "Jupyter", True)
    found = _from_server_sessions()
    if found is not None and found.is_file():
        return Located(found.resolve(), "Jupyter (server sessions)", True)
    raise NotInNotebook(
        "self_check() could not tell which notebook this kernel belongs to (no "
        "JPY_SESSION_NAME, no VS Code or Colab, no Jupyter server that knows this kernel): "
        "run `grader check YOUR_NOTEBOOK.ipynb` in a terminal instead")


def _colab() -> Located:
    """Colab keeps the notebook in Drive, not on disk: ask Colab's frontend for it."""
    from google.colab import _message  # type: ignore[import-not-found]

    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
    nb = reply.get("ipynb") if isinstance(reply, dict) else None
    if not nb:
        raise NotInNotebook("Colab did not hand over the notebook; save it to Drive and try again")
    folder = Path(tempfile.mkdtemp(prefix="grader-colab-"))
    path = folder / "notebook.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return Located(path, "Colab", False)


def unsaved_cells(path: Path, executed: list[str]) -> int:
    """How many of the cells run in this kernel are not, as run, in the saved file."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    norm = lambda text: "\n".join(line.rstrip() for line in text.strip().splitlines())  # noqa: E731
    saved = {norm("".join(c.get("source", ""))) for c in nb.get("cells", []) if c.get("cell_type") == "code"}
    return sum(1 for src in executed if norm(src) and norm(src) not in saved)


def assignment_of(path: Path) -> str:
    """The assignment the notebook says it belongs to (the template carries it)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        meta = {}
    return str((meta.get("grader") or {}).get("assignment") or DEFAULT_ASSIGNMENT)


def grade_file(path: Path, *, assignment: str) -> Report:
    """``grader check PATH --json`` in a process of its own: the same report, the same
    score, and nothing of the grader's machinery in the student's kernel."""
    target = path.parent if path.parent.name and _is_submission_folder(path) else path
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(target), "-a", assignment, "--json"],
        capture_output=True, text=True,
    )
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"grader check failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return Report.model_validate_json(done.stdout)


def _is_submission_folder(path: Path) -> bool:
    """A student repository (the notebook beside its README): grade the folder, so the
    README's answers count too, as they will for the instructor."""
    return any((path.parent / name).is_file() for name in ("README.md", "Readme.md", "readme.md"))


def html_table(report: Report) -> str:
    """The summary as an HTML table (escaped: nothing in it runs)."""
    rows = []
    for c in report.checks:
        mark = "✓" if c.status == "pass" else "✗"
        color = "#1a7f37" if c.status == "pass" else "#cf222e"
        hint = f"<br><i>hint: {html.escape(c.hint)}</i>" if c.hint else ""
        rows.append(
            f"<tr><td style='color:{color};font-weight:bold'>{mark}</td>"
            f"<td>{html.escape(c.title)}</td><td style='white-space:nowrap'>{c.score:g}/{c.max_score:g}</td>"
            f"<td style='text-align:left'>{html.escape(c.message)}{hint}</td></tr>")
    head = (f"<p><b>{html.escape(report.assignment)}: {report.score:g}/{report.max_score:g}</b>"
            + (f" — {html.escape(report.error)}" if report.error else "") + "</p>")
    return (head + "<table class='grader-self-check'><thead><tr><th></th><th>item</th>"
            "<th>points</th><th style='text-align:left'>what was measured</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def self_check(*, assignment: str | None = None, display: bool = True) -> Report | None:
    """Grade the notebook this is called from, as saved; show the table; return the report."""
    if "_grader_kernel" in sys.modules:  # the grader is running this notebook: no recursion
        print("self_check(): skipped, this notebook is being graded")
        return None
    where = locate_notebook()
    ip = _ipython()
    if where.saved:
        executed = list(ip.history_manager.input_hist_raw[1:-1])  # not the calling cell
        if n := unsaved_cells(where.path, executed):
            print(f"warning: {n} cell(s) you ran are not in the saved {where.path.name} (or were "
                  "changed since): save the notebook first; this grades the saved file, as your "
                  "instructor will")
    name = assignment or assignment_of(where.path)
    print(f"grading {where.path.name} ({where.how}) for {name} in a fresh kernel…")
    try:
        report = grade_file(where.path, assignment=name)
    except RuntimeError as exc:  # said plainly in the notebook, not as a traceback
        print(f"self_check(): {exc}")
        return None
    if display:
        from IPython.display import HTML
        from IPython.display import display as show

        show(HTML(html_table(report)))
    return report


def register_magic(ipython: Any) -> None:
    """``%load_ext grader`` gives ``%grader_check [ASSIGNMENT]``."""

    def grader_check(line: str) -> Report | None:
        return self_check(assignment=line.strip() or None)

    ipython.register_magic_function(grader_check, "line", "grader_check")
