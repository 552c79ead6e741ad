"""Execution budgets and isolation, on small notebooks with tight budgets."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from grader.api import grade_one
from tests.fixtures.notebooks import HEAD, Fixture, code_score, net, train
from tests.helpers import tight_grading

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """01-very-basics with a 4 s cell timeout and a 12 s notebook deadline."""
    return tight_grading(tmp_path_factory.mktemp("tight"), cell_timeout=4, deadline=12)


def test_cell_timeout_interrupts_and_later_training_is_graded(tmp_path, tight):
    nb = Fixture("sleepy", [HEAD, "import time\ntime.sleep(60)", net(), train()]).write(tmp_path)
    started = time.monotonic()
    report = grade_one(path=nb, grading=tight)
    assert time.monotonic() - started < 40
    [err] = report.execution.cell_errors
    assert err.cell == 2 and err.error == "Timeout" and "per-cell timeout of 4 s" in err.message
    status = {c.id: c.status for c in report.checks}
    assert status["runs_cleanly"] == "fail" and status["param_count"] == "pass"
    assert status["epochs"] == "pass"


def test_deadline_skips_the_rest_but_grades_what_was_trained(tmp_path, tight):
    cells = [HEAD, net(), train(), *["import time\ntime.sleep(3.5)"] * 5, "print('never runs')"]
    nb = Fixture("slow", cells).write(tmp_path)
    report = grade_one(path=nb, grading=tight)
    assert report.execution.status == "timeout"
    assert "deadline" in (report.execution.reason or "")
    status = {c.id: c.status for c in report.checks}
    assert status["param_count"] == status["epochs"] == "pass"
    assert status["runs_cleanly"] == "fail"


def test_output_flood_is_capped(tmp_path, grading):
    flood = "for i in range(8004):\n    print('Epoch', i, 'Loss 0.123456789')\nprint('x' * 5_000_000)"
    nb = Fixture("flood", [HEAD, net(), train(), flood]).write(tmp_path)
    report = grade_one(path=nb, grading=grading)
    assert report.execution.output_truncated_cells == [4]
    assert len(report.model_dump_json()) < 40_000
    assert code_score(report) == 150


def test_kernel_sees_no_secrets(tmp_path, grading, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "canary-token-123")
    monkeypatch.setenv("ACTIONS_RUNTIME_TOKEN", "canary-token-456")
    probe = ("import os\nleaked = [k for k in os.environ if 'TOKEN' in k or k.startswith('ACTIONS_')]\n"
             "assert not leaked, leaked")
    nb = Fixture("env", [HEAD, probe, net(), train()]).write(tmp_path)
    report = grade_one(path=nb, grading=grading)
    assert report.execution.status == "ok" and report.execution.cells_run == 4  # the probe ran
    assert report.execution.cell_errors == []
    assert code_score(report) == 150
    assert "canary-token" not in report.model_dump_json()


def test_kernel_side_patching_does_not_change_the_count(tmp_path, grading):
    patch = ("import builtins\ntorch.Tensor.numel = lambda self: 1\n"
             "builtins.sum = lambda *a, **k: 44")
    nb = Fixture("patched", [HEAD, net().replace("nn.Linear(5, 4)", "nn.Linear(5, 5)").replace("nn.Linear(4, 1)", "nn.Linear(5, 1)"), patch, train()]).write(tmp_path)
    report = grade_one(path=nb, grading=grading)
    count = next(c for c in report.checks if c.id == "param_count")
    assert count.status == "fail" and count.evidence["trainable_params"] == 51
    # the probe's own arithmetic is not fooled by the patched sum either
    assert next(c for c in report.checks if c.id == "loss_decreased").status == "pass"


def test_student_files_are_not_modified(tmp_path, grading):
    nb = Fixture("clean", [HEAD, net(), train(), "open('written_by_student.txt', 'w').write('x')"]).write(tmp_path)
    before = nb.read_bytes()
    report = grade_one(path=nb, grading=grading)
    assert report.execution.status == "ok" and report.execution.cells_run == 4  # it wrote its file
    assert code_score(report) == 150
    assert nb.read_bytes() == before
    assert sorted(os.listdir(nb.parent)) == ["clean.ipynb"]
