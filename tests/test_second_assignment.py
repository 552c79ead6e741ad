"""A second assignment is only new files under assignments/ and rubrics/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.api import load_grading
from grader.validate import validate

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.kernel


def test_second_assignment_without_code_change(tmp_path):
    # "00-xor-start": the untouched starting network is its own reference solution.
    folder = tmp_path / "assignments" / "00-xor-start"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "student_template" / "XOR.ipynb", folder / "solution.ipynb")
    (folder / "assignment.toml").write_text(
        'schema_version = 1\nid = "00-xor-start"\ntitle = "9 parameters, 300 epochs"\n'
        'solution = "solution.ipynb"\n[execution]\ncell_timeout = 60\n'
    )
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "00-xor-start.toml").write_text(
        'schema_version = 1\nassignment = "00-xor-start"\n'
        '[[items]]\nid = "nine"\ncheck = "param_count"\ntitle = "9 parameters"\npoints = 5\n'
        'params = { expected = 9 }\n'
        '[[items]]\nid = "short"\ncheck = "epochs"\ntitle = "300 epochs"\npoints = 5\n'
        'params = { expected = 300 }\n'
    )
    grading = load_grading(assignment=folder)
    [case] = validate(grading=grading)
    assert case.ok, case.problems
    assert case.report.score == 10
