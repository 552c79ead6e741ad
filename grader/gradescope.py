"""`grader gradescope-bundle`: an autograder.zip for a Gradescope programming assignment.

The zip holds ``setup.sh`` (finds or makes a Python >= 3.11 on whatever base image, then
installs CPU torch and this grader from the bundled source), ``run_autograder`` (grades
/autograder/submission into /autograder/results/results.json, its log on stdout for
instructors) and ``grader-src/`` (the package, the assignment, its rubric, the student
template). The scripts are ``grader/gradescope_files/``. ``AUTOGRADER_ROOT`` and
``GRADER_BIN`` override the paths, so they can be run outside Gradescope (the tests do).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader.spec import Assignment

FILES = Path(__file__).parent / "gradescope_files"


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
        _add_script(zf, "setup.sh", (FILES / "setup.sh").read_text(encoding="utf-8"))
        run = (FILES / "run_autograder").read_text(encoding="utf-8")
        _add_script(zf, "run_autograder", run.replace("__ASSIGNMENT__", assignment.id))
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
