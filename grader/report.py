"""The one ``Report`` per submission. Every output format is rendered from it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from grader.models import Strict

REPORT_SCHEMA_VERSION = 1

CheckStatus = Literal["pass", "fail", "error", "skipped"]



class Override(Strict):
    points: float = Field(ge=0, description="Points set by the TA.")
    by: str
    comment: str = ""


class CheckResult(Strict):
    id: str = Field(description="Rubric item id (stable across runs).")
    check: str = Field(description="Registered check that produced the result.")
    title: str
    status: CheckStatus
    score: float = Field(ge=0)
    max_score: float = Field(ge=0)
    message: str = Field(description="What was measured, in words a student can act on.")
    hint: str = Field("", description="Rubric hint, shown when the item does not pass.")
    evidence: dict[str, Any] = Field(default_factory=dict, description="Measured values.")
    auto_score: float | None = Field(
        None, description="The grader's own score when a TA override changed `score`."
    )
    override: Override | None = None


class CellError(Strict):
    cell: int = Field(description="Position of the cell in the notebook, 1-based.")
    error: str = Field(description="Exception name, or 'Timeout'.")
    message: str
    traceback: str | None = None


class ExecutionSummary(Strict):
    status: Literal["ok", "errors", "timeout", "kernel_died", "not_started", "not_run"]
    reason: str | None = None
    cells_total: int = 0
    cells_run: int = 0
    cell_errors: list[CellError] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="Things the grader adjusted, e.g. CUDA calls run on CPU."
    )
    output_truncated_cells: list[int] = Field(default_factory=list)
    evidence_error: str | None = Field(
        None, description="Why the kernel-side evidence is missing, if it is."
    )
    peak_memory_mb: float | None = Field(None, description="Peak resident memory of the kernel group.")
    tamper_signals: list[str] = Field(
        default_factory=list, description="Code that reaches for the grader's records in the "
        "kernel, by cell: for a TA to read, never a deduction.")
    isolation: str = Field(
        "none", description="The OS sandbox the kernel ran in (the mechanism), or 'none (why)'.")


class Submission(Strict):
    path: str = Field(description="What was passed to the grader.")
    notebook: str | None = Field(None, description="The notebook graded, relative to `path`.")
    sha256: str | None = Field(None, description="sha256 of the notebook file graded.")
    student: str | None = Field(
        None, description="The student, read from an LMS export's file name (Canvas, Moodle) "
        "or the spec's name_pattern.")
    student_id: str | None = Field(
        None, description="The LMS's id for the student (Canvas user id, Moodle participant id).")


class Versions(Strict):
    grader: str
    torch: str | None = None
    python: str


class Report(Strict):
    schema_version: int = REPORT_SCHEMA_VERSION
    assignment: str
    submission: Submission
    status: Literal["graded", "error"] = Field(
        description="'error' if the submission could not be graded at all (see `error`)."
    )
    error: str | None = None
    score: float = Field(ge=0)
    max_score: float = Field(ge=0)
    checks: list[CheckResult]
    execution: ExecutionSummary
    versions: Versions
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    graded_at: str = Field(description="UTC time the report was made (ISO 8601).")

    @property
    def passed_all(self) -> bool:
        return self.status == "graded" and all(c.status == "pass" for c in self.checks)
