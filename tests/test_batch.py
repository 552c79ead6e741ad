"""Batch integrity: resume, --force, and Ctrl-C in the middle of a batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.api import OutBusy, grade, out_lock, unique_names
from tests.fixtures.notebooks import HEAD, Fixture, net, train
from tests.helpers import sleeping


def broken(folder: Path, name: str) -> Path:
    sub = folder / name
    sub.mkdir(parents=True)
    (sub / "nb.ipynb").write_text("{")
    return sub


def tiny(folder: Path, name: str, cell: str = "print('hi')") -> Path:
    """A notebook that runs (so its report is not an error) in a folder of its own."""
    return Fixture(name, [cell]).write(folder)


@pytest.mark.kernel
def test_resume_skips_up_to_date_reports(tmp_path, grading):
    a, b = tiny(tmp_path, "a"), tiny(tmp_path, "b")
    out = tmp_path / "out"
    grade(paths=[a, b], grading=grading, out_dir=out)
    first = {n: (out / f"{n}.json").stat().st_mtime_ns for n in "ab"}
    time.sleep(0.05)
    b.write_text(b.read_text().replace("hi", "hello"))  # b changed since its report
    grade(paths=[a, b], grading=grading, out_dir=out)
    assert (out / "a.json").stat().st_mtime_ns == first["a"]
    assert (out / "b.json").stat().st_mtime_ns > first["b"]
    grade(paths=[a, b], grading=grading, out_dir=out, force=True)
    assert (out / "a.json").stat().st_mtime_ns > first["a"]


@pytest.mark.kernel
def test_resume_never_takes_another_submissions_report(tmp_path, grading):
    """Alone, alice/XOR.ipynb and bob/XOR.ipynb are both "XOR": bob's run must not get
    alice's saved report back."""
    out = tmp_path / "out"
    alice = tiny(tmp_path / "alice", "XOR")
    bob = tiny(tmp_path / "bob", "XOR", cell="print('bob')")
    grade(paths=[alice], grading=grading, out_dir=out)
    [report] = grade(paths=[bob], grading=grading, out_dir=out).values()
    assert report.submission.path == str(bob)


def test_an_error_report_is_graded_again(tmp_path, grading):
    a = broken(tmp_path, "a")
    out = tmp_path / "out"
    grade(paths=[a], grading=grading, out_dir=out)
    first = (out / "a.json").stat().st_mtime_ns
    time.sleep(0.05)
    grade(paths=[a], grading=grading, out_dir=out)
    assert (out / "a.json").stat().st_mtime_ns > first


def test_names_do_not_depend_on_argument_order(tmp_path):
    paths = [tmp_path / "alice" / "XOR.ipynb", tmp_path / "bob" / "XOR.ipynb", tmp_path / "carol"]
    forward = dict(zip(paths, unique_names(paths)))
    backward = dict(zip(paths[::-1], unique_names(paths[::-1])))
    assert forward == backward
    assert sorted(forward.values()) == ["alice_XOR", "bob_XOR", "carol"]


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, grading):
    a = broken(tmp_path, "a")
    out = tmp_path / "out"
    with out_lock(out):
        with pytest.raises(OutBusy, match=f"pid {os.getpid()}"):
            grade(paths=[a], grading=grading, out_dir=out)
    grade(paths=[a], grading=grading, out_dir=out)  # free again
    assert (out / "a.json").is_file()


def test_an_unreadable_report_is_named_not_dropped_silently(tmp_path, grading):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.json").write_text('{"schema_version": 0}')
    warned: list[str] = []
    grade(paths=[broken(tmp_path, "a")], grading=grading, out_dir=out, on_warning=warned.append)
    assert len(warned) == 1 and "old.json" in warned[0] and "left out of summary.csv" in warned[0]


@pytest.mark.kernel
def test_ctrl_c_leaves_no_half_report_and_no_kernel(tmp_path):
    slow = Fixture("slow", [HEAD, net(), train(),
                            "import subprocess, time\nsubprocess.Popen(['sleep', '9313'])\ntime.sleep(100)"])
    path = slow.write(tmp_path / "subs")
    out = tmp_path / "out"
    grader = str(Path(sys.executable).parent / "grader")
    proc = subprocess.Popen([grader, "grade", str(path.parent), "-a", "01-very-basics", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not sleeping("9313"):
        time.sleep(0.2)
    assert sleeping("9313"), "the notebook never reached its last cell"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not (out / "slow.json").exists()
    assert not list(out.glob(".*.tmp"))  # (a folder never made has none either)
    time.sleep(0.5)
    assert not sleeping("9313")


def test_an_override_of_nobody_is_warned_about(tmp_path, grading):
    overrides = tmp_path / "o.toml"
    overrides.write_text('[[override]]\nsubmission = "nobody"\nitem = "readme_q1"\npoints = 1\n'
                         'by = "TA"\ncomment = "typo in the name"\n')
    warned: list[str] = []
    grade(paths=[broken(tmp_path, "a")], grading=grading, out_dir=tmp_path / "out",
          overrides=overrides, on_warning=warned.append)
    assert len(warned) == 1 and "override of 'nobody' (readme_q1) matches no report" in warned[0]


def test_files_over_the_copy_budget_are_named(tmp_path, grading, monkeypatch):
    from grader import pipeline
    from grader.locate import Located

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "XOR.ipynb").write_text("{}")
    (sub / "weights.bin").write_bytes(b"x" * 5000)
    monkeypatch.setattr(pipeline, "MAX_COPY_BYTES", 1000)
    skipped: list[str] = []
    work = pipeline.prepare_workspace(located=Located(sub, sub / "XOR.ipynb"),
                                      assignment=grading.assignment, workspace=tmp_path,
                                      skipped=skipped)
    assert skipped == ["weights.bin"] and sorted(p.name for p in work.iterdir()) == ["XOR.ipynb"]
