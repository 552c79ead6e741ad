"""Batch integrity: resume, --force, and Ctrl-C in the middle of a batch."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.api import grade
from tests.fixtures.notebooks import HEAD, Fixture, net, train
from tests.helpers import sleeping


def broken(folder: Path, name: str) -> Path:
    sub = folder / name
    sub.mkdir(parents=True)
    (sub / "nb.ipynb").write_text("{")
    return sub


def test_resume_skips_up_to_date_reports(tmp_path, grading):
    a, b = broken(tmp_path, "a"), broken(tmp_path, "b")
    out = tmp_path / "out"
    grade(paths=[a, b], grading=grading, out_dir=out)
    first = {n: (out / f"{n}.json").stat().st_mtime_ns for n in "ab"}
    time.sleep(0.05)
    (b / "nb.ipynb").write_text("{ }")  # b changed since its report
    grade(paths=[a, b], grading=grading, out_dir=out)
    assert (out / "a.json").stat().st_mtime_ns == first["a"]
    assert (out / "b.json").stat().st_mtime_ns > first["b"]
    grade(paths=[a, b], grading=grading, out_dir=out, force=True)
    assert (out / "a.json").stat().st_mtime_ns > first["a"]


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
