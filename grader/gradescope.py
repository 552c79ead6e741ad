"""`grader gradescope-bundle`: an autograder.zip for a Gradescope programming assignment.

The zip holds ``setup.sh`` (installs CPU torch and this grader from the bundled source),
``run_autograder`` (grades /autograder/submission into /autograder/results/results.json)
and ``grader-src/`` (the package, the assignment, its rubric, the student template).
``AUTOGRADER_ROOT`` and ``GRADER_BIN`` override the paths, so the scripts can be run
outside Gradescope (the tests do).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader.spec import Assignment

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when the autograder image is built.
set -euo pipefail
cd /autograder/source
python3 -m venv /autograder/venv
# CPU wheels: a plain `pip install torch` on Linux is a multi-GB CUDA build
/autograder/venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
/autograder/venv/bin/pip install "./grader-src[notebooks]"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission; the student's files are in submission/.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
GRADER="${{GRADER_BIN:-$ROOT/venv/bin/grader}}"
mkdir -p "$ROOT/results"
"$GRADER" grade "$ROOT/submission" \\
    --assignment "$ROOT/source/grader-src/assignments/{assignment_id}" \\
    --out "$ROOT/results/reports" --format gradescope > /dev/null
if [ -s "$ROOT/results/reports/submission.gradescope.json" ]; then
    cp "$ROOT/results/reports/submission.gradescope.json" "$ROOT/results/results.json"
else
    # the grader itself failed: still give Gradescope a valid result that says so
    printf '%s\\n' '{{"score": 0, "output": "The autograder failed before it could write a report; please tell your instructor.", "tests": []}}' > "$ROOT/results/results.json"
fi
"""


def _add_tree(zf: zipfile.ZipFile, src: Path, arc: str) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_file() and not {"__pycache__", ".ipynb_checkpoints"} & set(rel.parts):
            zf.write(path, f"{arc}/{rel.as_posix()}")


def _add_script(zf: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o755 << 16  # executable
    zf.writestr(info, text)


def build_bundle(*, assignment: Assignment, rubric_path: Path, out: Path) -> Path:
    """Write the zip. Gradescope wants setup.sh and run_autograder at the top level."""
    project = Path(__file__).resolve().parent.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        _add_script(zf, "setup.sh", SETUP_SH)
        _add_script(zf, "run_autograder", RUN_AUTOGRADER.format(assignment_id=assignment.id))
        for name in ("pyproject.toml", "setup.py", "README.md"):
            if (project / name).is_file():
                zf.write(project / name, f"grader-src/{name}")
        _add_tree(zf, project / "grader", "grader-src/grader")
        _add_tree(zf, assignment.root, f"grader-src/assignments/{assignment.id}")
        zf.write(rubric_path, f"grader-src/rubrics/{assignment.id}.toml")
        template = project / "student_template"
        if template.is_dir():
            _add_tree(zf, template, "grader-src/student_template")
    return out
