"""Locating the notebook, and submissions that cannot be graded: always a report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from grader.api import grade_one
from grader.locate import SubmissionError, locate_notebook


def code_nb(path: Path, source="print(1)") -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbformat.write(nb, path)
    return path


def answers_nb(path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Answers")])
    nbformat.write(nb, path)
    return path


PATTERNS = ["*.ipynb", "**/*.ipynb"]


def test_folder_with_one_notebook(tmp_path):
    nb = code_nb(tmp_path / "work.ipynb")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    code_nb(tmp_path / ".ipynb_checkpoints" / "work-checkpoint.ipynb")
    assert locate_notebook(tmp_path, patterns=PATTERNS).notebook == nb


def test_answers_notebook_next_to_code_notebook(tmp_path):
    nb = code_nb(tmp_path / "session.ipynb")
    answers_nb(tmp_path / "questions.ipynb")
    found = locate_notebook(tmp_path, patterns=PATTERNS)
    assert found.notebook == nb and "questions.ipynb has none" in found.note


def test_two_code_notebooks_are_ambiguous(tmp_path):
    code_nb(tmp_path / "a.ipynb")
    code_nb(tmp_path / "b.ipynb")
    with pytest.raises(SubmissionError, match="several notebooks.*a.ipynb, b.ipynb"):
        locate_notebook(tmp_path, patterns=PATTERNS)


def test_symlink_out_of_the_folder_is_not_followed(tmp_path):
    outside = code_nb(tmp_path / "outside.ipynb")
    sub = tmp_path / "sub"
    sub.mkdir()
    os.symlink(outside, sub / "link.ipynb")
    with pytest.raises(SubmissionError, match="no notebook"):
        locate_notebook(sub, patterns=PATTERNS)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"{\"cells\": [", "not a readable Jupyter notebook"),
    (b"this is not json", "not a readable Jupyter notebook"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
    (json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode(), "no code cells"),
])
def test_unreadable_notebooks_get_error_reports(tmp_path, grading, content, reason):
    path = tmp_path / "bad notebook é.ipynb"
    path.write_bytes(content)
    report = grade_one(path=path, grading=grading)
    assert report.status == "error" and reason in report.error
    assert report.score == 0 and len(report.checks) == 11
    code = [c for c in report.checks if c.check != "written_answer"]
    assert len(code) == 6 and all(c.status == "error" and reason in c.message for c in code)


def test_readme_is_graded_even_when_the_notebook_is_broken(tmp_path, grading):
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "XOR.ipynb").write_text("{ truncated")
    (tmp_path / "README.md").write_text((root / "assignments/01-very-basics/README.md").read_text())
    report = grade_one(path=tmp_path, grading=grading)
    assert report.status == "error" and report.submission.notebook == "XOR.ipynb"
    readme = [c for c in report.checks if c.check == "written_answer"]
    assert all(c.status == "pass" for c in readme) and report.score == sum(c.score for c in readme) > 140


def test_missing_path_and_oversized_notebook(tmp_path, grading):
    report = grade_one(path=tmp_path / "nope", grading=grading)
    assert report.status == "error" and "no such file" in report.error
    big = code_nb(tmp_path / "big.ipynb", source="x = '" + "a" * (60 * 1024 * 1024) + "'")
    report = grade_one(path=big, grading=grading)
    assert report.status == "error" and "over the 50 MB limit" in report.error
