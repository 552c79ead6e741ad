"""`grader validate`: prove a rubric before release.

The reference solution must get full marks, the untouched template must fail what the
spec says, and each mutant must fail exactly its own items and pass all the others, so
every item is shown to flip on its own.
"""

from __future__ import annotations

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
    cases = [Case("solution", a.path(a.spec.solution), set(), full_marks=True)]
    if v.template:
        cases.append(Case("template", a.path(v.template), set(v.template_fails)))
    cases += [Case(f"mutant: {m.name}", a.path(m.notebook), set(m.fails)) for m in v.mutants]
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


def validate(*, grading: Grading, on_case: Callable[[Case], None] | None = None) -> list[Case]:
    cases = cases_for(grading)
    for case in cases:
        if not case.notebook.is_file():
            case.problems.append(f"{case.notebook}: file not found")
        elif not case.problems:
            case.report = grade_one(path=case.notebook, grading=grading)
            case.problems = judge(case, case.report)
        if on_case:
            on_case(case)
    return cases
