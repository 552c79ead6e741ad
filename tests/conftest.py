"""Shared fixtures. Integration tests grade every fixture notebook once, in one batch
with two jobs (each its own kernel), and then assert on the reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.api import grade, load_grading
from tests.fixtures.notebooks import FIXTURES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def grading():
    return load_grading(assignment=ROOT / "assignments" / "01-very-basics")


@pytest.fixture(scope="session")
def graded(tmp_path_factory, grading):
    """name -> Report for every fixture, plus 'solution_again' (same notebook twice)."""
    folder = tmp_path_factory.mktemp("fixtures")
    paths = [f.write(folder) for f in FIXTURES]
    again = folder / "solution_again"
    again.mkdir()
    paths.append(shutil.copy(paths[0], again / "solution_again.ipynb"))
    out = tmp_path_factory.mktemp("reports")
    reports = grade(paths=[Path(p) for p in paths], grading=grading, out_dir=out, jobs=2)
    reports["_out_dir"] = out
    return reports
