"""Hostile and broken submissions graded in one batch: every report present and
correct, no cheat gains a point, no secret leaks, nothing left running."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from grader.api import grade, unique_names
from tests.fixtures.hostile import CASES, SLEEP_MARKERS
from tests.fixtures.notebooks import ALL, code_score
from tests.helpers import sleeping, tight_grading

ROOT = Path(__file__).resolve().parent.parent
CANARY = "canary-9f8e7d6c"
pytestmark = pytest.mark.kernel


def tight_assignment(base: Path):
    """01-very-basics with short budgets so the hangs cost little."""
    return tight_grading(base, cell_timeout=8, deadline=60)


def marker_processes() -> list[str]:
    return sleeping(*SLEEP_MARKERS)


def grader_temp_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("grader-")}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    grading = tight_assignment(base / "grader")
    subs = base / "submissions"
    subs.mkdir()
    paths = []
    for case in CASES:
        built = case.build(subs / case.name)
        paths.append(built if built.is_dir() else built.parent)
    before = grader_temp_dirs()
    os.environ["GITHUB_TOKEN"] = CANARY
    os.environ["ACTIONS_RUNTIME_TOKEN"] = CANARY
    try:
        reports = grade(paths=paths, grading=grading, out_dir=base / "out", jobs=2)
    finally:
        del os.environ["GITHUB_TOKEN"], os.environ["ACTIONS_RUNTIME_TOKEN"]
    names = dict(zip((c.name for c in CASES), unique_names(paths)))
    return {"reports": reports, "out": base / "out", "temp_before": before, "names": names}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(batch, case):
    report = batch["reports"][batch["names"][case.name]]
    kind, _, execution = case.status.partition(":")
    assert report.status == kind, (report.error, report.execution.reason)
    if execution:
        assert report.execution.status == execution, report.execution.reason
    if case.reason:
        assert case.reason in f"{report.error} {report.execution.reason}", (report.error, report.execution.reason)
    assert code_score(report) == case.code, [(c.id, c.status, c.message) for c in report.checks]
    by_id = {c.id: c for c in report.checks}
    for item in case.must_fail:
        assert by_id[item].status == "fail", (item, by_id[item].status, by_id[item].message)
    for item in case.must_error:
        assert by_id[item].status == "error", (item, by_id[item].status, by_id[item].message)
    if report.status == "error":  # nothing ran: every code item says why, none fails
        assert {by_id[i].status for i in ALL} == {"error"}
    elif by_id["param_count"].status == "pass":  # recounted on the host from the tensors
        assert by_id["param_count"].evidence["trainable_params"] == 44
        assert by_id["param_count"].evidence["layers"] == {"lin1": 15, "lin2": 24, "lin3": 5}
    assert len(report.checks) == 11


def test_every_report_written_and_small(batch):
    out: Path = batch["out"]
    files = sorted(p.name for p in out.glob("*.json") if p.name != "duplicates.json")
    assert len(files) == len(CASES)
    assert all(p.stat().st_size < 60_000 for p in out.glob("*.json"))
    assert (out / "summary.csv").read_text().count("\n") == len(CASES) + 1


def test_no_secret_in_any_output(batch):
    files = [p for p in batch["out"].rglob("*") if p.is_file()]
    assert any(p.parent.name == "executed" for p in files)  # the notebooks as they ran, too
    for path in files:
        assert CANARY not in path.read_text(errors="replace"), path


def test_nothing_left_running_or_behind(batch):
    from grader import forkserver

    assert marker_processes() == []
    forkserver.close_all()  # what the grader's exit does; its folder goes with it
    assert grader_temp_dirs() - batch["temp_before"] == set()
    honest = batch["reports"]["children_left_running"]
    assert honest.execution.status == "ok"


def test_a_cell_that_swallows_the_interrupt_ends_the_kernel(batch):
    """Escalation: interrupt at the per-cell timeout, then end the kernel after a grace
    period; the later cell is skipped (it does not time out too) and the report says why."""
    report = batch["reports"][batch["names"]["swallows_interrupt"]]
    errors = {e.cell: e for e in report.execution.cell_errors}
    assert errors[4].error == "Timeout" and "ignored the interrupt" in errors[4].message
    assert 5 not in errors and report.execution.cells_run == 4
    assert "the probe did not run" in report.execution.evidence_error
    by_id = {c.id: c for c in report.checks}
    assert by_id["epochs"].status == "error" and by_id["runs_cleanly"].status == "fail"
