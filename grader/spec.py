"""Assignment specs: ``assignments/<id>/assignment.toml``, declarative and versioned.

A spec says which notebook to grade, which files the notebook needs, the execution
budgets, and how ``grader validate`` proves the rubric (template and mutants). The
points live in the rubric (``rubrics/<id>.toml``), so instructors edit one without
touching the other or any code.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from grader.models import Strict

SPEC_SCHEMA_VERSION = 1


class ConfigError(Exception):
    """A spec or rubric file is missing or invalid; the message names file, field and fix."""



class Execution(Strict):
    cell_timeout: float = Field(60, gt=0, description="Seconds one cell may run.")
    deadline: float = Field(300, gt=0, description="Seconds all student cells may run.")
    probe_timeout: float = Field(60, gt=0, description="Seconds for the final probe cell.")
    startup_timeout: float = Field(60, gt=0, description="Seconds to start the kernel.")
    output_limit: int = Field(
        20_000, ge=0, description="Characters of output kept per cell in the report."
    )
    threads: int = Field(1, ge=1, description="torch/BLAS threads in the kernel.")
    seed: int = Field(0, description="Seed for random, numpy and torch in the kernel.")
    map_cuda: bool = Field(True, description="Run .cuda()/.to('cuda') on the CPU.")
    max_notebook_mb: float = Field(50, gt=0, description="Refuse larger notebooks.")
    prewarm_imports: list[str] = Field(
        default_factory=lambda: ["numpy", "matplotlib.pyplot"],
        description="Modules imported before any student code runs: by the fork server, or by a pre-warmed kernel before seeding.",
    )
    fork_kernels: bool = Field(
        True,
        description="Fork each kernel from a server that has imported torch and the "
        "prewarm_imports already (Linux); false starts every kernel from scratch.",
    )
    memory_limit_mb: float = Field(
        3072, gt=0, description="Resident memory of the kernel and its children; above it the kernel is stopped."
    )
    sandbox: Literal["auto", "require", "off"] = Field(
        "auto", description="Run each kernel in an OS sandbox (Linux namespaces: no network, "
        "only its own files and processes). auto: where the machine allows it, else with a "
        "warning; require: refuse to grade without it; off: no sandbox (said in every report).",
    )
    max_processes: int = Field(
        256, ge=8, description="Processes (and threads) the sandboxed kernel may have at once.")
    max_open_files: int = Field(4096, ge=64, description="Open files per sandboxed process.")
    max_file_mb: float = Field(2048, gt=0, description="Largest file a sandboxed kernel may write.")


class Mutant(Strict):
    name: str = Field(description="Short name shown by `grader validate`.")
    notebook: str | None = Field(
        None, description="Notebook, relative to the assignment folder; default: the solution."
    )
    readme: str | None = Field(
        None, description="README graded with it; default: validation.readme."
    )
    fails: list[str] = Field(description="Rubric item ids this mutant must fail; all others pass.")


class Validation(Strict):
    readme: str | None = Field(
        None, description="Reference README placed next to every case's notebook."
    )
    template: str | None = Field(
        None, description="Student starting notebook, relative to the assignment folder."
    )
    template_readme: str | None = Field(
        None, description="Student starting README, graded with the template."
    )
    template_fails: list[str] = Field(
        default_factory=list, description="Rubric item ids the untouched template must fail."
    )
    mutants: list[Mutant] = Field(default_factory=list)


class QuestionSpec(Strict):
    id: str = Field(description="Stable id, referred to by written_answer rubric items.")
    text: str = Field(description="The question as the student sees it.")


class Answers(Strict):
    template: str | None = Field(
        None, description="The README students start from; text copied from it is not an answer."
    )
    questions: list[QuestionSpec] = Field(default_factory=list)


class AssignmentSpec(Strict):
    schema_version: int = Field(description=f"Spec format version; this grader reads {SPEC_SCHEMA_VERSION}.")
    id: str = Field(description="Assignment id; the rubric is rubrics/<id>.toml.")
    title: str
    notebook_patterns: list[str] = Field(
        default_factory=lambda: ["*.ipynb"],
        description="Globs (relative to a submission folder) that find the notebook to grade.",
    )
    solution: str = Field(description="Reference solution notebook, relative to this folder.")
    data: list[str] = Field(
        default_factory=list, description="Files copied next to the notebook before it runs."
    )
    packages: list[str] = Field(
        default_factory=list, description="Python packages the notebooks import (informational)."
    )
    rubric: str | None = Field(
        None, description="Rubric path relative to this folder; default ../../rubrics/<id>.toml."
    )
    name_pattern: str | None = Field(
        None,
        description="Regular expression for the file names of a flat export from your LMS, "
        "with named groups (?P<student>...) and optionally (?P<student_id>...) and "
        "(?P<original>...) (the name the student gave the file); Canvas and Moodle export "
        "names are understood without it. `--name-pattern` overrides it.",
    )

    @field_validator("name_pattern")
    @classmethod
    def _usable_pattern(cls, value: str | None) -> str | None:
        from grader.lms import check_pattern

        why = check_pattern(value) if value else None
        if why:
            raise ValueError(f"name_pattern {value!r}: {why}")
        return value

    execution: Execution = Field(default_factory=Execution)
    answers: Answers = Field(default_factory=Answers, description="Written questions to find.")
    validation: Validation = Field(default_factory=Validation)


def read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None


def format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  field '{where}': {err['msg']}")
    lines.append("  fix those fields (see `grader schema spec` / `grader schema rubric`)")
    return "\n".join(lines)


class Assignment:
    """A loaded spec together with the folder it came from."""

    def __init__(self, spec: AssignmentSpec, root: Path):
        self.spec = spec
        self.root = root

    @property
    def id(self) -> str:
        return self.spec.id

    def path(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    @property
    def rubric_path(self) -> Path:
        if self.spec.rubric:
            return self.path(self.spec.rubric)
        return (self.root.parent.parent / "rubrics" / f"{self.spec.id}.toml").resolve()


def load_assignment(id_or_dir: str | Path, *, search_root: Path | None = None) -> Assignment:
    """Load an assignment by folder path, or by id under ``<search_root>/assignments``."""
    candidate = Path(id_or_dir)
    if not candidate.is_dir():
        roots = [search_root] if search_root else []
        # the current folder, a source checkout, then the data a wheel installs
        roots += [Path.cwd(), Path(__file__).resolve().parent.parent,
                  Path(sys.prefix) / "share" / "nbtorch-grader"]
        for root in roots:
            if root is not None and (root / "assignments" / str(id_or_dir)).is_dir():
                candidate = root / "assignments" / str(id_or_dir)
                break
        else:
            raise ConfigError(
                f"assignment '{id_or_dir}': no such folder, and no assignments/{id_or_dir} "
                "under the current directory; pass the assignment folder path"
            )
    spec_path = candidate / "assignment.toml"
    data = read_toml(spec_path)
    try:
        spec = AssignmentSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(spec_path, exc)) from None
    if spec.schema_version != SPEC_SCHEMA_VERSION:
        raise ConfigError(
            f"{spec_path}: field 'schema_version' is {spec.schema_version}; this grader "
            f"reads {SPEC_SCHEMA_VERSION}: upgrade the grader or convert the spec"
        )
    return Assignment(spec, candidate.resolve())
