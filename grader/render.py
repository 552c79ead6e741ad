"""Batch and terminal views: the gradebook CSV and the rich tables of `grader check`,
`grade` and `validate`. One report's file formats live in ``grader.formats``."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from grader.duplicates import DuplicatePair
from grader.formats import points_text
from grader.report import Report
from grader.rubric import Rubric

_MARK = {"pass": "✓", "fail": "✗", "error": "!", "skipped": "-"}  # terminal marks (Markdown: formats)
_STYLE = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "dim"}


def gradebook_csv(
    reports: Mapping[str, Report], *, rubric: Rubric, duplicates: Sequence[DuplicatePair] = ()
) -> str:
    """One row per submission (with the student and their LMS id when the file names
    told), one column per rubric item, then total, status, the items a TA should read
    (needs_review), overridden items and possible duplicates."""
    buf = io.StringIO()
    ids = [item.id for item in rubric.items]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["submission", "student", "student_id", "notebook", "status", *ids, "score",
                     "max_score", "needs_review", "overridden", "possible_duplicate", "error"])
    twins: dict[str, set[str]] = {}
    for pair in duplicates:
        twins.setdefault(pair.a, set()).add(pair.b)
        twins.setdefault(pair.b, set()).add(pair.a)
    for name, rep in reports.items():
        by_id = {c.id: c.score for c in rep.checks}
        review = [c.id for c in rep.checks if c.evidence.get("needs_review")]
        if rep.execution.tamper_signals:
            review.append("tamper_signals")
        overridden = [c.id for c in rep.checks if c.override is not None]
        writer.writerow([
            name, rep.submission.student or "", rep.submission.student_id or "",
            rep.submission.notebook or "", rep.status,
            *[by_id.get(i, "") for i in ids], rep.score, rep.max_score,
            " ".join(review), " ".join(overridden), " ".join(sorted(twins.get(name, ()))),
            rep.error or "",
        ])
    return buf.getvalue()


def check_table(report: Report, *, title: str | None = None) -> Table:
    """The student view: one row per rubric item with ✓/✗, points, what was measured."""
    table = Table(title=title or f"{report.assignment}: {report.submission.notebook or report.submission.path}",
                  show_lines=True, expand=True)
    table.add_column("", width=1)
    table.add_column("item", ratio=2)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("result", ratio=5)
    for c in report.checks:
        body = Text(c.message)
        if c.override is not None:
            body.append(f"\nset to {points_text(c.override.points)} by {c.override.by}: {c.override.comment}",
                        style="bold")
        if c.hint:
            body.append(f"\nhint: {c.hint}", style="italic")
        table.add_row(Text(_MARK[c.status], style=_STYLE[c.status]), c.title,
                      f"{points_text(c.score)}/{points_text(c.max_score)}", body)
    return table


def print_check(report: Report, *, console: Console) -> None:
    if report.status == "error":
        console.print(f"[bold red]Could not grade:[/] {escape(report.error or '')}")
    console.print(check_table(report))
    ex = report.execution
    for warning in ex.warnings:
        console.print(f"[yellow]note:[/] {escape(warning)}")
    if ex.evidence_error and report.status != "error":
        console.print(f"[yellow]note:[/] {escape(ex.evidence_error)}")
    console.print(f"[bold]Total: {points_text(report.score)}/{points_text(report.max_score)}[/]")


def batch_table(reports: Mapping[str, Report], *, rubric: Rubric, width: int = 200) -> Table:
    """One row per submission: a column per rubric item when ``width`` allows, otherwise
    (a narrow terminal would cut every header) the items that lost points."""
    name_width = max((len(n) for n in reports), default=10)
    full = name_width + 22 + sum(max(len(item.id), 3) + 3 for item in rubric.items) <= width
    table = Table(title="gradebook")
    table.add_column("submission", no_wrap=True)
    if full:
        for item in rubric.items:
            table.add_column(item.id, justify="right")
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if not full:
        table.add_column("points lost")
    for name, rep in reports.items():
        by_id = {c.id: c for c in rep.checks}
        score = f"{points_text(rep.score)}/{points_text(rep.max_score)}"
        status = Text(rep.status, style="green" if rep.status == "graded" else "red")
        if full:
            cells = []
            for item in rubric.items:
                c = by_id.get(item.id)
                cells.append(Text(points_text(c.score), style=_STYLE[c.status]) if c else Text("-"))
            table.add_row(name, *cells, score, status)
        else:
            lost = [f"{c.id} {points_text(c.score)}/{points_text(c.max_score)}" for c in rep.checks if c.score < c.max_score]
            table.add_row(name, score, status, Text(", ".join(lost) or "—", style="red" if lost else "green"))
    return table
