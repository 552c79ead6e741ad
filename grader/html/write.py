"""Write a folder's pages: one per report, and the dashboard (``index.html``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from grader.duplicates import find_duplicates
from grader.html.dashboard import render_dashboard
from grader.html.page import read_executed, render_page_safely
from grader.report import Report

DASHBOARD = "index.html"


def write_pages(*, out_dir: Path, reports: Mapping[str, Report], title: str,
                dashboard: Mapping[str, Report] | None = None, score_step: float = 0.5,
                write: Callable[[Path, str], None],
                on_warning: Callable[[str], None] | None = None,
                scale: float | None = None) -> list[Path]:
    """``OUT/<name>.html`` for each of ``reports`` (with ``OUT/executed/<name>.ipynb``
    where the batch kept it), and ``OUT/index.html`` over ``dashboard`` (every report in
    the folder) when given. ``write`` writes a file whole or not at all."""
    from grader.api import executed_path

    written = []
    for name, report in reports.items():
        nb = read_executed(executed_path(out_dir, name))
        path = out_dir / f"{name}.html"
        try:
            page, warning = render_page_safely(report, name=name, notebook=nb, score_step=score_step,
                                               scale=scale)
        except Exception as exc:  # a grader bug must cost one page, not the others
            warning, page = f"{name}: no feedback page ({type(exc).__name__}: {exc})", None
        if warning and on_warning:
            on_warning(warning)
        if page is not None:
            write(path, page)
            written.append(path)
    if dashboard is not None:
        path = out_dir / DASHBOARD
        write(path, render_dashboard(dashboard, title=title, duplicates=find_duplicates(dashboard)))
        written.append(path)
    return written


def write_folder(*, out_dir: Path, names: list[str] | None = None, assignment: str | None = None,
                 title: str | None = None, score_step: float = 0.5,
                 on_warning: Callable[[str], None] | None = None,
                 scale: float | None = None) -> list[Path]:
    """The pages of a folder `grader grade` wrote: ``names`` (default: every report
    there) and the dashboard over every report of ``assignment`` (default: the one most
    reports there are of)."""
    from collections import Counter

    from grader.api import read_reports, write_atomic

    every = read_reports(out_dir, assignment=None)  # each report read once
    if assignment is None and every:
        assignment = Counter(r.assignment for r in every.values()).most_common(1)[0][0]
    book = {n: r for n, r in every.items() if r.assignment == assignment}
    if not book:
        return []
    chosen = {n: book[n] for n in (names if names is not None else book) if n in book}
    return write_pages(out_dir=out_dir, reports=chosen, title=title or assignment,
                       dashboard=book, score_step=score_step, write=write_atomic,
                       on_warning=on_warning, scale=scale)

