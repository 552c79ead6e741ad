"""Flat LMS exports: whose file is whose, what each kernel sees, and grade import files."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from grader.api import export_gradebook, grade
from grader.lms import MOODLE_COLUMNS, canvas_csv, moodle_csv, owner_of
from grader.locate import plan_submissions
from grader.report import Report, Submission
from tests.fixtures.notebooks import HEAD, ALL, Fixture, code_score, net, train

ROOT = Path(__file__).resolve().parent.parent
READMES = Path(__file__).parent / "readmes"


@pytest.mark.parametrize("name, student, student_id, original", [
    ("doe_jane_12345_67890_XOR.ipynb", "doe_jane", "12345", "XOR.ipynb"),
    ("doejane_LATE_12345_67890_XOR-1.ipynb", "doejane", "12345", "XOR.ipynb"),
    ("Jane Doe_12345_assignsubmission_file_XOR.ipynb", "Jane Doe", "12345", "XOR.ipynb"),
    ("Jane Doe_12345_assignsubmission_file_README.md", "Jane Doe", "12345", "README.md"),
    ("Jane Doe_12345_assignsubmission_file_", "Jane Doe", "12345", ""),  # Moodle's folder per student
])
def test_canvas_and_moodle_names(name, student, student_id, original):
    owner = owner_of(name)
    assert (owner.student, owner.student_id, owner.original) == (student, student_id, original)


@pytest.mark.parametrize("name", ["XOR.ipynb", "alice.ipynb", "README.md", "week_1_notes.md"])
def test_plain_names_have_no_owner(name):
    assert owner_of(name) is None


def test_an_instructor_pattern_wins():
    owner = owner_of("s1234567-XOR.ipynb", pattern=r"s(?P<student_id>\d+)-(?P<student>XOR)\.ipynb")
    assert (owner.student_id, owner.lms) == ("1234567", "pattern")


def _touch(folder: Path, *names: str) -> list[Path]:
    for name in names:
        (folder / name).write_text("{}")
    return [folder / n for n in names]


def test_a_flat_folder_is_planned_per_student(tmp_path):
    paths = _touch(tmp_path, "doe_jane_12345_67890_XOR.ipynb", "doe_jane_12345_67891_README.md",
                   "Bob Smith_23456_assignsubmission_file_XOR.ipynb", "carol.ipynb", "README.md")
    planned, warnings = plan_submissions(paths)
    assert [p.name_hint for p in planned] == ["doe_jane_12345", "Bob Smith_23456", "carol"]
    jane = planned[0]
    assert sorted(name for _, name in jane.files) == ["README.md", "XOR.ipynb"]
    assert [name for _, name in planned[2].files] == ["carol.ipynb"]  # her own file only
    assert len(warnings) == 1 and "README.md: not a notebook and no student's file" in warnings[0]


def test_a_notebook_alone_in_its_folder_keeps_its_folder(tmp_path):
    [nb] = _touch(tmp_path, "XOR.ipynb")
    (tmp_path / "README.md").write_text("answers")
    [plan], _ = plan_submissions([nb])
    assert plan.files == () and plan.path == nb  # the folder (with its README) is the submission


def _report(name, student, sid, score):
    return name, Report(assignment="a", submission=Submission(path=name, student=student, student_id=sid),
                        status="graded", score=score, max_score=300, checks=[], execution={"status": "ok"},
                        versions={"grader": "0", "python": "3"}, timings={}, graded_at="now")


def test_canvas_import_layout():
    """Canvas: Student, ID, SIS User ID, SIS Login ID, Section, then the assignment; a
    Points Possible row; rows matched by ID."""
    reports = dict([_report("doe_jane_12345", "doe_jane", "12345", 296), _report("x", None, None, 40.5)])
    rows = list(csv.reader(io.StringIO(canvas_csv(reports, assignment="XOR (4321)", points=300))))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "XOR (4321)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "300"]
    assert rows[2] == ["Doe, Jane", "12345", "", "", "", "296"]
    assert rows[3] == ["x", "", "", "", "", "40.5"]


def test_moodle_worksheet_layout():
    """Moodle's offline grading worksheet: matched by Identifier "Participant <id>"."""
    reports = dict([_report("Jane Doe_12345", "Jane Doe", "12345", 150)])
    rows = list(csv.DictReader(io.StringIO(moodle_csv(reports, points=300))))
    assert list(rows[0]) == MOODLE_COLUMNS
    assert (rows[0]["Identifier"], rows[0]["Full name"], rows[0]["Grade"], rows[0]["Maximum Grade"]) == (
        "Participant 12345", "Jane Doe", "150", "300")


# -- a flat export graded for real ------------------------------------------------------
# Each student sees their own files, under the names they gave them.
SEES_ONLY_ITSELF = ("import os\nseen = sorted(os.listdir('.'))\n"
                    "assert seen in (['XOR.ipynb'], ['README.md', 'XOR.ipynb']), seen\nprint(seen)")


def _notebook(folder: Path, name: str, answers_md: str | None = None) -> Path:
    cells = [HEAD, SEES_ONLY_ITSELF, net(), train()] + ([f"md:{answers_md}"] if answers_md else [])
    path = Fixture("tmp", cells).write(folder / "build")
    target = folder / name
    shutil.move(path, target)
    shutil.rmtree(folder / "build")
    return target


@pytest.mark.kernel
def test_a_flat_lms_export_is_graded_per_student(tmp_path, grading):
    subs = tmp_path / "subs"
    subs.mkdir()
    answers = (ROOT / "examples" / "alice" / "README.md").read_text()
    _notebook(subs, "doe_jane_12345_67890_XOR.ipynb", answers_md=answers)  # answers in her notebook
    _notebook(subs, "Bob Smith_23456_assignsubmission_file_XOR.ipynb")
    shutil.copy(READMES / "misspelled_prose.md", subs / "Bob Smith_23456_assignsubmission_file_README.md")
    _notebook(subs, "roe_carol_34567_78901_XOR.ipynb")  # no answers anywhere of her own
    shutil.copy(ROOT / "assignments" / "01-very-basics" / "README.md", subs / "README.md")  # the instructor's
    out = tmp_path / "out"
    warned: list[str] = []
    reports = grade(paths=sorted(subs.iterdir()), grading=grading, out_dir=out, jobs=2,
                    on_warning=warned.append)
    assert sorted(reports) == ["Bob_Smith_23456", "doe_jane_12345", "roe_carol_34567"]
    assert len(warned) == 1 and "README.md" in warned[0]
    for name, report in reports.items():  # each kernel saw its own files only
        assert report.execution.cell_errors == [], (name, report.execution.cell_errors)
        assert code_score(report) == 150
    readme_points = {n: sum(c.score for c in r.checks if c.id not in ALL) for n, r in reports.items()}
    assert readme_points["roe_carol_34567"] == 0
    assert readme_points["doe_jane_12345"] > 100 and readme_points["Bob_Smith_23456"] > 100
    carol = reports["roe_carol_34567"]
    assert any("belongs to none of them" in w for w in carol.execution.warnings)
    bob = {c.id: c for c in reports["Bob_Smith_23456"].checks}
    assert bob["readme_q1"].evidence["source"] == "README.md"
    for name, student, sid in [("doe_jane_12345", "doe_jane", "12345"), ("roe_carol_34567", "roe_carol", "34567"),
                               ("Bob_Smith_23456", "Bob Smith", "23456")]:
        assert (reports[name].submission.student, reports[name].submission.student_id) == (student, sid)
    assert json.loads((out / "duplicates.json").read_text()) == []
    rows = {r["submission"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert (rows["Bob_Smith_23456"]["student"], rows["Bob_Smith_23456"]["student_id"]) == ("Bob Smith", "23456")
    text, warnings = export_gradebook(out_dir=out, grading=grading, fmt="moodle")
    ids = [r["Identifier"] for r in csv.DictReader(io.StringIO(text))]
    assert sorted(ids) == ["Participant 12345", "Participant 23456", "Participant 34567"]
    assert warnings == []
