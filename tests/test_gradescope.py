"""The Gradescope bundle's run_autograder, run in a temp /autograder-like tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from grader.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    assert main(["gradescope-bundle", "01-very-basics", "-o", str(out)]) == 0
    return out


def run_autograder(bundle: Path, root: Path, submission: Path) -> dict:
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    shutil.copytree(submission, root / "submission")
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "AUTOGRADER_ROOT": str(root),
           "GRADER_BIN": str(Path(sys.executable).parent / "grader")}
    subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, check=True, timeout=300,
                   capture_output=True)
    return json.loads((root / "results" / "results.json").read_text())


def test_bundle_layout(bundle):
    names = zipfile.ZipFile(bundle).namelist()
    assert {"setup.sh", "run_autograder", "grader-src/pyproject.toml",
            "grader-src/assignments/01-very-basics/assignment.toml",
            "grader-src/rubrics/01-very-basics.toml", "grader-src/grader/kernel/instrument.py"} <= set(names)
    info = zipfile.ZipFile(bundle).getinfo("run_autograder")
    assert (info.external_attr >> 16) & 0o111
    setup = zipfile.ZipFile(bundle).read("setup.sh").decode()
    assert "download.pytorch.org/whl/cpu" in setup


def test_solution_and_broken_notebook(bundle, tmp_path):
    schema = json.loads((Path(__file__).parent / "schemas" / "gradescope.schema.json").read_text())
    good = run_autograder(bundle, tmp_path / "a", ROOT / "examples" / "alice")
    jsonschema.validate(good, schema)
    assert good["score"] >= 290 and len(good["tests"]) == 11
    broken = run_autograder(bundle, tmp_path / "b", ROOT / "examples" / "dave")
    jsonschema.validate(broken, schema)
    code = broken["tests"][:6]
    assert all(t["score"] == 0 for t in code) and "not a readable" in broken["output"]
