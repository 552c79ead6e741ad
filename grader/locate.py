"""Find the notebook to grade inside a submission, and read it safely."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.lms import Owner, owner_of


_ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar")


class SubmissionError(Exception):
    """The submission cannot be graded; the message says why and what to do."""


@dataclass(frozen=True)
class Planned:
    """One submission of a batch: a folder (a student repository, graded whole), a lone
    notebook (its folder is the submission), or some files of a shared flat folder."""

    path: Path  # what was given; for a flat folder's group, its notebook
    files: tuple[tuple[Path, str], ...] = ()  # (file, name in the workspace); () = path's folder
    owner: Owner | None = None  # the student, read from an LMS export name

    @property
    def name_hint(self) -> str:
        if self.owner is not None:
            return "_".join(p for p in (self.owner.student, self.owner.student_id) if p)
        resolved = self.path.resolve()  # "." is the folder it names
        return resolved.name if resolved.is_dir() else resolved.stem


@dataclass(frozen=True)
class Located:
    root: Path  # the submission folder (or the notebook's folder for a bare file)
    notebook: Path
    note: str | None = None  # how an ambiguity was resolved, shown in the report
    files: tuple[tuple[Path, str], ...] = ()  # a flat folder's own files; () = all of root
    answers_note: str | None = None  # where written answers were looked for, if not root
    owner: Owner | None = None


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() == ".ipynb" and p.is_file() and not p.name.startswith("."))


def plan_submissions(
    paths: Sequence[Path], *, name_pattern: str | None = None
) -> tuple[list[Planned], list[str]]:
    """What each path on the command line is, and warnings for the terminal.

    A folder is one submission. A notebook alone in its folder keeps its folder (a
    student's repository given by its notebook). A file in a folder holding several
    notebooks is a flat export: it is its student's own, grouped with the files of the
    same student (LMS names, or ``name_pattern``); a file of nobody (the instructor's
    README lying beside them) belongs to no submission.
    """
    planned: list[Planned] = []
    warnings: list[str] = []
    seen: set[tuple] = set()
    for path in paths:
        if not path.is_file():
            planned.append(Planned(path, (), owner_of(path.resolve().name, pattern=name_pattern)))
            continue
        folder = path.parent
        owner = owner_of(path.name, pattern=name_pattern)
        siblings = _notebooks_in(folder)
        if owner is None and len(siblings) <= 1:
            planned.append(Planned(path))
            continue
        if owner is None and path.suffix.lower() != ".ipynb":
            warnings.append(f"{path}: not a notebook and no student's file (it lies beside "
                            "several submissions); not graded, and no one's answers")
            continue
        key = ("owner", folder, owner.key) if owner else ("file", path)
        if key in seen:
            continue
        seen.add(key)
        if owner is None:
            files = ((path, path.name),)
        else:
            files = tuple(
                (p, (other.original or p.name))
                for p in sorted(folder.iterdir())
                if p.is_file() and (other := owner_of(p.name, pattern=name_pattern)) is not None
                and other.key == owner.key
            )
        notebook = next((p for p, name in files if name.lower().endswith(".ipynb")), path)
        planned.append(Planned(notebook, files, owner))
    return planned, warnings


def locate(planned: Planned, *, patterns: list[str]) -> Located:
    """The notebook to grade: from a flat folder's files, or searched in a folder."""
    if not planned.files:
        found = locate_notebook(planned.path, patterns=patterns)
        return Located(found.root, found.notebook, found.note, owner=planned.owner)
    folder = planned.path.parent
    notebooks = [(p, name) for p, name in planned.files if name.lower().endswith(".ipynb")]
    others = [name for p, name in planned.files if not name.lower().endswith(".ipynb")]
    where = ", ".join(name for _, name in planned.files)
    answers_note = (
        f"written answers were looked for in this submission's own files ({where}) only: "
        f"{folder} holds several submissions, so a README there belongs to none of them"
        + ("" if others else "; put the answers in the notebook's markdown cells"))
    if not notebooks:
        raise SubmissionError(f"{where}: no notebook among this student's files in {folder}")
    chosen, note = notebooks[0], None
    if len(notebooks) > 1:
        with_code = [nb for nb in notebooks if _has_code(nb[0])]
        if len(with_code) != 1:
            names = ", ".join(name for _, name in notebooks)
            raise SubmissionError(f"{folder}: several notebooks could be this student's ({names}); "
                                  "keep one")
        chosen = with_code[0]
        note = f"graded {chosen[1]}: the only one of this student's notebooks with code"
    return Located(folder, chosen[0], note, planned.files, answers_note, planned.owner)


def _has_code(path: Path, max_bytes: int = 50 * 1024 * 1024) -> bool:
    """Whether a notebook holds any non-empty code cell (cheap, tolerant read)."""
    try:
        if path.stat().st_size > max_bytes:
            return True  # too big to peek at: keep it a candidate, read_notebook refuses it
        data = json.loads(path.read_text(encoding="utf-8"))
        for cell in data.get("cells", []):
            src = cell.get("source", "")
            if cell.get("cell_type") == "code" and "".join(src).strip():
                return True
    except (OSError, ValueError, AttributeError, TypeError):
        return False
    return False


def locate_notebook(path: Path, *, patterns: list[str]) -> Located:
    """A notebook path is used as is; a folder is searched with the spec's patterns.

    Checkpoints and hidden folders are ignored; symlinks are not followed out of the
    folder. More than one candidate is an error that lists them, never a guess.
    """
    if path.is_file():
        if path.suffix.lower() in _ARCHIVES:
            raise SubmissionError(
                f"{path.name}: archives are not graded; unpack it and grade the folder "
                "(the grader never extracts archives, so no entry can land outside its folder)"
            )
        return Located(path.parent, path)
    if not path.is_dir():
        raise SubmissionError(f"{path}: no such file or folder")
    root = path.resolve()
    found: list[Path] = []
    for pattern in patterns:
        for cand in sorted(path.glob(pattern)):
            rel = cand.relative_to(path)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            if ".ipynb_checkpoints" in rel.parts or not cand.is_file():
                continue
            if cand.is_symlink() and not cand.resolve().is_relative_to(root):
                continue
            if cand not in found:
                found.append(cand)
        if found:
            break
    archives = [p for p in sorted(path.glob("*")) if p.suffix.lower() in _ARCHIVES]
    if not found and archives:
        raise SubmissionError(
            f"{path}: no notebook, but {archives[0].name}: archives are not graded; unpack it "
            "and submit the notebook itself"
        )
    if not found:
        raise SubmissionError(
            f"{path}: no notebook matching {', '.join(patterns)}; add your notebook to the "
            "submission"
        )
    if len(found) > 1:
        # A notebook of markdown answers next to the code notebook is common; only a
        # notebook with code can be the one to execute.
        with_code = [f for f in found if _has_code(f)]
        if len(with_code) == 1:
            others = ", ".join(str(f.relative_to(path)) for f in found if f != with_code[0])
            return Located(path, with_code[0], note=(
                f"graded {with_code[0].relative_to(path)}: the only notebook with code "
                f"({others} has none)"))
    if len(found) > 1:
        names = ", ".join(str(f.relative_to(path)) for f in found)
        raise SubmissionError(
            f"{path}: several notebooks could be the one to grade ({names}); keep one, or "
            "ask your instructor to set notebook_patterns in the assignment spec"
        )
    return Located(path, found[0])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_notebook(path: Path, *, max_mb: float) -> nbformat.NotebookNode:
    """Read a notebook as nbformat 4, or raise SubmissionError with a clear reason."""
    size = path.stat().st_size
    if size > max_mb * 1024 * 1024:
        raise SubmissionError(
            f"{path.name}: {size / 1e6:.0f} MB is over the {max_mb:g} MB limit; clear the "
            "outputs (Kernel > Restart & Clear Output) and save again"
        )
    if size == 0:
        raise SubmissionError(f"{path.name}: the file is empty")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name}: not a text file, so not a notebook") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(
            f"{path.name}: not a readable Jupyter notebook ({first[:200]}); open and save it "
            "in Jupyter again"
        ) from None
    # Notebooks saved before nbformat 4.5 have no cell ids; add them so validation is quiet.
    for cell in nb.get("cells", []):
        if "id" not in cell:
            cell["id"] = uuid.uuid4().hex[:8]
    nb.nbformat_minor = max(nb.get("nbformat_minor", 0), 5)
    if not any(c.get("cell_type") == "code" for c in nb.get("cells", [])):
        raise SubmissionError(f"{path.name}: the notebook has no code cells")
    return nb
