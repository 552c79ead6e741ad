"""The Gradescope bundle's setup.sh and run_autograder, run for real: on a stand-in for
an old base image (Debian 11, Python 3.9 without venv or pip: setup.sh must make its own
Python) and on this machine (its Python 3.11 is used as it is). Both must build and
grade the reference solution to full marks. Slow (the old image compiles CPython:
minutes); see tests/gradescope_image.py, and docs/platforms.md for running it by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from grader.cli import main
from tests.gradescope_image import fresh_image, inside, why_not

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.kernel
# Gradescope would download python.org's source; this machine reaches Debian's copy of it
DEBIAN_CPYTHON = "http://deb.debian.org/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz"
# pip's own configuration here holds the CPU torch wheel (Gradescope: PyTorch's CPU index)
LOCAL_TORCH = {"GRADER_TORCH": "torch==2.13.0", "GRADER_TORCH_INDEX": ""}


def _unpack(autograder: Path, submission: Path) -> None:
    bundle = autograder.parent / "autograder.zip"
    assert main(["gradescope-bundle", "01-very-basics", "-o", str(bundle)]) == 0
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(autograder / "source")
    for name in ("setup.sh", "run_autograder"):  # zipfile drops the mode; Gradescope keeps it
        (autograder / "source" / name).chmod(0o755)
    shutil.copytree(submission, autograder / "submission")


def _require(why: str | None) -> None:
    if why is None:
        return
    if os.environ.get("GRADER_REQUIRE_IMAGES") == "1":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture
def scratch(tmp_path):
    """tmp_path, emptied afterwards: a venv with torch and an image are GBs each."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_setup_on_an_old_image_makes_its_own_python_and_grades_the_solution(scratch):
    _require(why_not())
    image = fresh_image(scratch / "image")
    old = inside(image, "python3 --version; python3 -m venv /tmp/v")
    assert "Python 3.9" in old.stdout and old.returncode != 0  # no venv: as on Gradescope's 20.04
    _unpack(image / "autograder", ROOT / "examples" / "alice")
    setup = inside(image, "/autograder/source/setup.sh",
                   env={"GRADER_PYTHON_SOURCE": DEBIAN_CPYTHON, **LOCAL_TORCH})
    log = setup.stdout + setup.stderr
    assert setup.returncode == 0, log[-4000:]
    assert "no Python >= 3.11 on the image and none from uv" in log and "Python 3.11.2 built at" in log
    run = inside(image, "/autograder/source/run_autograder")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((image / "autograder" / "results" / "results.json").read_text())
    assert results["score"] == 300 and len(results["tests"]) == 11, results
    assert results["stdout_visibility"] == "hidden"
    assert "grading /autograder/submission" in run.stdout  # the log, for instructors


def test_setup_here_uses_this_machines_python(scratch):
    tmp_path = scratch
    autograder = tmp_path / "autograder"
    _unpack(autograder, ROOT / "examples" / "alice")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AUTOGRADER_ROOT": str(autograder),
           **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}, **LOCAL_TORCH}
    setup = subprocess.run([str(autograder / "source" / "setup.sh")], env=env, capture_output=True,
                           text=True, timeout=1200)
    assert setup.returncode == 0, (setup.stdout + setup.stderr)[-4000:]
    assert "using the image's Python 3.1" in setup.stderr
    run = subprocess.run([str(autograder / "source" / "run_autograder")], env=env,
                         capture_output=True, text=True, timeout=600)
    results = json.loads((autograder / "results" / "results.json").read_text())
    assert run.returncode == 0 and results["score"] == 300, run.stdout + run.stderr
