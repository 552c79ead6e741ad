"""`grader validate`: prove a rubric before release.

The reference solution must get full marks, the untouched template must fail what the
spec says, and each mutant must fail exactly its own items and pass all the others, so
every item is shown to flip on its own.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader.api import Grading, grade_one
from grader.report import Report


@dataclass
class Case:
    name: str
    notebook: Path
    must_fail: set[str]
    readme: Path | None = None
    full_marks: bool = False
    report: Report | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report is not None and not self.problems


def cases_for(grading: Grading) -> list[Case]:
    a = grading.assignment
    v = a.spec.validation
    known = {item.id for item in grading.rubric.items}
    readme = a.path(v.readme) if v.readme else None
    solution = a.path(a.spec.solution)
    cases = [Case("solution", solution, set(), readme, full_marks=True)]
    if v.template:
        template_readme = a.path(v.template_readme) if v.template_readme else None
        cases.append(Case("template", a.path(v.template), set(v.template_fails), template_readme))
    cases += [
        Case(f"mutant: {m.name}", a.path(m.notebook) if m.notebook else solution, set(m.fails),
             a.path(m.readme) if m.readme else readme)
        for m in v.mutants
    ]
    for case in cases:
        unknown = case.must_fail - known
        if unknown:
            case.problems.append(f"names unknown rubric items: {', '.join(sorted(unknown))}")
    return cases


def judge(case: Case, report: Report) -> list[str]:
    problems = []
    if report.status != "graded":
        return [f"could not be graded: {report.error}"]
    for c in report.checks:
        expected_fail = c.id in case.must_fail
        if expected_fail and c.status == "pass":
            problems.append(f"{c.id} passed but should fail")
        if not expected_fail and c.status != "pass":
            problems.append(f"{c.id} is {c.status} but should pass ({c.message})")
    if case.full_marks and report.score != report.max_score:
        problems.append(f"scored {report.score:g}/{report.max_score:g}, not full marks")
    return problems


def as_submission(case: Case, folder: Path) -> Path:
    """A student-repository-like folder: the case's notebook, and its README if any."""
    folder.mkdir()
    shutil.copyfile(case.notebook, folder / case.notebook.name)
    if case.readme is not None:
        shutil.copyfile(case.readme, folder / "README.md")
    return folder


def validate(*, grading: Grading, on_case: Callable[[Case], None] | None = None) -> list[Case]:
    cases = cases_for(grading)
    with tempfile.TemporaryDirectory(prefix="grader-validate-") as tmp:
        for n, case in enumerate(cases):
            missing = [p for p in (case.notebook, case.readme) if p is not None and not p.is_file()]
            if missing:
                case.problems += [f"{p}: file not found" for p in missing]
            elif not case.problems:
                folder = as_submission(case, Path(tmp) / f"case-{n}")
                case.report = grade_one(path=folder, grading=grading)
                case.problems = judge(case, case.report)
            if on_case:
                on_case(case)
    return cases
