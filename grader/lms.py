"""Learning-management-system exports: who a file belongs to, and grade import files.

Pure functions, no kernel. Instructors download a class's submissions as one flat
folder whose file names carry the student: Canvas writes
``lastfirst_[LATE_]<user id>_<attachment id>_<file name>`` (``doe_jane_12345_67890_XOR.ipynb``),
Moodle ``<Full Name>_<participant id>_assignsubmission_file_<file name>``
(``Jane Doe_12345_assignsubmission_file_XOR.ipynb``). From those names the student and
their id are read back, so the gradebook can be imported into the same LMS: Canvas by
its user id (the gradebook's ``ID`` column), Moodle by its participant id (the
offline grading worksheet's ``Identifier``, "Participant 12345").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass

from grader.report import Report

# Canvas appends "-1", "-2" to a file name resubmitted under the same name.
CANVAS = re.compile(r"^(?P<student>[^_]+(?:_[^_\d][^_]*)*?)_(?:late_)?(?P<student_id>\d+)_"
                    r"(?P<attachment>\d+)_(?P<original>.+)$", re.IGNORECASE)
MOODLE = re.compile(r"^(?P<student>.+?)_(?P<student_id>\d+)_assignsubmission_"
                    r"(?:file|onlinetext)_(?P<original>.*)$")


@dataclass(frozen=True)
class Owner:
    """The student a file of an LMS export belongs to, and the file's own name."""

    student: str
    student_id: str | None
    original: str  # the name the student gave the file ("" for a Moodle folder)
    lms: str  # "canvas", "moodle" or "pattern"

    @property
    def key(self) -> str:
        """What groups one student's files: the id when there is one."""
        return self.student_id or self.student


def owner_of(name: str, *, pattern: str | None = None) -> Owner | None:
    """Read the student from a file or folder name; None when it carries none.

    ``pattern`` is the instructor's regex (spec ``name_pattern`` or ``--name-pattern``)
    with a named group ``student`` and optionally ``student_id`` and ``original``; it is
    tried first and must match the whole name.
    """
    if pattern:
        found = re.fullmatch(pattern, name)
        if found and found.groupdict().get("student"):
            groups = found.groupdict()
            return Owner(groups["student"], groups.get("student_id"),
                         groups.get("original") or name, "pattern")
    found = MOODLE.match(name)
    if found:
        return Owner(found["student"], found["student_id"], _undo_resubmission(found["original"]),
                     "moodle")
    found = CANVAS.match(name)
    if found:
        return Owner(found["student"], found["student_id"], _undo_resubmission(found["original"]),
                     "canvas")
    return None


def _undo_resubmission(name: str) -> str:
    """``XOR-1.ipynb`` -> ``XOR.ipynb``: the LMS renamed a file handed in again."""
    return re.sub(r"-\d+(\.[A-Za-z0-9]+)$", r"\1", name)


def check_pattern(pattern: str) -> str | None:
    """Why an instructor's name pattern cannot be used, or None."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"not a regular expression ({exc})"
    if "student" not in compiled.groupindex:
        return "it needs a named group (?P<student>...)"
    return None


# -- grade import files ----------------------------------------------------------------
def canvas_csv(reports: Mapping[str, Report], *, assignment: str, points: float) -> str:
    """Canvas' gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then
    one column per assignment ("Name (assignment id)" matches an existing one), and a
    "Points Possible" row. Canvas matches rows by ID, its user id."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
    writer.writerow(["Points Possible", "", "", "", "", _points(points)])
    for name, rep in reports.items():
        student = rep.submission.student or name
        writer.writerow([_canvas_name(student), rep.submission.student_id or "", "", "", "",
                         _points(rep.score)])
    return buf.getvalue()


def _canvas_name(student: str) -> str:
    """Canvas file names carry "doe_jane" (last, first): the gradebook shows "Doe, Jane"."""
    parts = [p for p in student.split("_") if p]
    if len(parts) >= 2:
        return f"{parts[0].title()}, {' '.join(p.title() for p in parts[1:])}"
    return student


MOODLE_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
                  "Feedback comments"]


def moodle_csv(reports: Mapping[str, Report], *, points: float) -> str:
    """Moodle's offline grading worksheet, as "Download grading worksheet" writes it and
    "Upload grading worksheet" reads it back: rows are matched by Identifier
    ("Participant <id>"); Grade and Feedback comments are imported."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MOODLE_COLUMNS)
    for name, rep in reports.items():
        ident = f"Participant {rep.submission.student_id}" if rep.submission.student_id else ""
        lost = [f"{c.title}: {c.score:g}/{c.max_score:g}" for c in rep.checks if c.score < c.max_score]
        feedback = f"{rep.score:g}/{rep.max_score:g}" + (f" (lost: {'; '.join(lost)})" if lost else "")
        writer.writerow([ident, rep.submission.student or name, "", "", _points(rep.score),
                         _points(points), "Yes", "", "", feedback])
    return buf.getvalue()


def _points(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
