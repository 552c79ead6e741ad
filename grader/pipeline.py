"""One submission through the pipeline: locate -> workspace -> execute -> facts ->
checks -> score -> report. Each step is a small function; this module only wires them.
Whatever goes wrong, the result is a ``Report`` that says why.
"""

from __future__ import annotations

import importlib
import platform
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from grader import __version__, sandbox
from grader.answers import Question, collect_documents, find_answers
from grader.checks import Outcome, get_check
from grader.evidence import (CellFailure, Evidence, select_model_run, select_trained_run,
                             tally_params)
from grader.execute import ExecutionResult, execute_notebook
from grader.facts import FactsError, load_facts
from grader.kernels import prestart as prestart_kernels
from grader.locate import Located, Planned, SubmissionError, locate, read_notebook, sha256_of
from grader.report import CellError, CheckResult, ExecutionSummary, Report, Submission, Versions
from grader.rubric import Rubric
from grader.spec import Assignment
from grader.tamper import signals as tamper_signals

if TYPE_CHECKING:
    from grader.warm import WarmKernel

SKIP_DIRS = {".git", ".ipynb_checkpoints", "__pycache__", ".github", "node_modules", ".venv"}
MAX_COPY_BYTES = 200 * 1024 * 1024


def warm_host_torch() -> None:
    """Import torch on the host in the background while the kernel runs: the host
    needs it only at the end (weights-only load of the saved tensors), and a cold
    import costs about a second on the critical path otherwise. Called once the kernel
    runs: the import holds the GIL for ~2 s, which would stall starting kernels."""
    global _warming
    if _warming is None and "torch" not in sys.modules:
        _warming = threading.Thread(target=importlib.import_module, args=("torch",), daemon=True)
        _warming.start()


_warming: threading.Thread | None = None


def torch_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:
        return None


def versions() -> Versions:
    return Versions(grader=__version__, torch=torch_version(), python=platform.python_version())


def folder_files(root: Path, *, budget: int | None = None) -> tuple[list[tuple[Path, str]], list[str]]:
    """A submission folder's files (no symlinks, no checkpoints or tool folders) as
    (file, relative path), in order, until ``budget`` bytes (the copy budget); and the
    ones left out."""
    budget = MAX_COPY_BYTES if budget is None else budget
    kept, over = [], []
    for src in sorted(root.rglob("*")):
        rel = src.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts) or src.is_symlink() or not src.is_file():
            continue
        size = src.stat().st_size
        if size > budget:
            over.append(rel.as_posix())
            continue
        budget -= size
        kept.append((src, rel.as_posix()))
    return kept, over


def prepare_workspace(
    *, located: Located, assignment: Assignment, workspace: Path, skipped: list[str] | None = None
) -> Path:
    """Copy the submission's files (never symlinks) and the assignment's data into a
    fresh working directory; the student's own files are never touched in place. Files
    left out because the copy budget ran out are named in ``skipped``."""
    work = workspace / "work"
    work.mkdir(exist_ok=True)  # a warm kernel's workspace has it already
    budget = MAX_COPY_BYTES
    if located.files:  # a flat folder's submission: its own files, under their own names
        for src, name in located.files:
            if src.is_symlink() or not src.is_file():
                continue
            if src.stat().st_size > budget:
                if skipped is not None:
                    skipped.append(name)
                continue
            budget -= src.stat().st_size
            shutil.copyfile(src, work / name)
        root = None
    else:
        root = located.root
    if root is not None:
        kept, over = folder_files(root, budget=budget)
        if skipped is not None:
            skipped.extend(over)
        for src, rel in kept:
            dest = work / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    for name in assignment.spec.data:  # under the same relative path as in the spec
        src = assignment.path(name)
        if src.is_file():
            dest = work / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    return work


def save_notebook(nb, path: Path) -> None:
    """Write a notebook whole or not at all (``api.write_atomic``, as for reports)."""
    import nbformat

    from grader.api import write_atomic  # api imports this module: only when called

    write_atomic(path, nbformat.writes(nb))


def gather_evidence(
    *, result: ExecutionResult, facts_dir: Path, nonce: str, cells_total: int
) -> Evidence:
    failures = [
        CellFailure(c.index + 1, c.error or "Error", c.message or "")
        for c in result.cells
        if c.status in ("error", "timeout")
    ]
    positions = {c.execution_count: i for i, c in enumerate(result.notebook.cells, start=1)
                 if c.cell_type == "code" and c.get("execution_count")} if result.notebook else {}
    base = Evidence(
        cell_positions=positions,
        cell_failures=failures,
        execution_status=result.status,
        execution_reason=result.reason,
        cells_total=cells_total,
        cells_run=result.cells_run,
    )
    try:
        facts = load_facts(facts_dir / "facts.json", nonce=nonce)
    except FactsError as exc:
        reason = str(exc)
        if result.probe_error:
            reason = f"{reason} ({result.probe_error})"
        if result.status == "kernel_died":
            reason = "evidence missing: the kernel died before the probe ran"
        return replace(base, facts_error=reason)
    run = select_trained_run(facts)
    model_run, rule = select_model_run(facts)
    tally, tally_error = None, None
    if model_run is not None:
        name = model_run.tensors_file
        if name and "/" not in name and "\\" not in name:
            try:
                tally = tally_params(facts_dir / name, model_run)
            except (ValueError, OSError) as exc:
                tally_error = str(exc)
        else:
            tally_error = "evidence missing: no tensors were saved for the trained model"
    return replace(base, facts=facts, run=run, model_run=model_run, model_rule=rule,
                   tally=tally, tally_error=tally_error)


def gather_answers(
    *, root: Path, assignment: Assignment, files: tuple[tuple[Path, str], ...] = ()
) -> tuple[dict, dict]:
    """The written answers in the submission folder, or in ``files`` when the submission
    is a part of a shared folder (host-side, no kernel)."""
    qs = assignment.spec.answers.questions
    if not qs:
        return {}, {}
    questions = [Question(q.id, q.text) for q in qs]
    template = None
    if assignment.spec.answers.template:
        path = assignment.path(assignment.spec.answers.template)
        template = path.read_text(encoding="utf-8") if path.is_file() else None
    docs = collect_documents(root, only=list(files) if files else None)
    found = find_answers(docs, questions, template=template)
    return {q.id: q.text for q in qs}, found


def run_checks(
    *, evidence: Evidence, rubric: Rubric, params: dict[str, BaseModel]
) -> list[CheckResult]:
    results = []
    for item in rubric.items:
        check = get_check(item.check)
        try:
            outcome = check.func(evidence, params[item.id])
        except Exception as exc:  # a bug in a check must not sink the report
            outcome = Outcome.errored(f"check crashed: {type(exc).__name__}: {exc}")
        results.append(score_item(item=item, outcome=outcome, step=rubric.score_step))
    return results


def score_item(*, item, outcome: Outcome, step: float = 0.01) -> CheckResult:
    fraction = min(max(outcome.fraction, 0.0), 1.0) if outcome.status != "error" else 0.0
    score = min(round(round(item.points * fraction / step) * step, 6), item.points)
    return CheckResult(
        id=item.id,
        check=item.check,
        title=item.title,
        status=outcome.status,
        score=score,
        max_score=item.points,
        message=outcome.message,
        hint="" if outcome.status == "pass" else item.hint,
        evidence=outcome.evidence,
    )


def summarise_execution(
    *, result: ExecutionResult, evidence: Evidence, located: Located, skipped: list[str] = (),
    tamper: list[str] = (),
) -> ExecutionSummary:
    return ExecutionSummary(
        status=result.status,
        reason=result.reason,
        cells_total=evidence.cells_total,
        cells_run=result.cells_run,
        cell_errors=[
            CellError(cell=c.index + 1, error=c.error or "Error", message=c.message or "",
                      traceback=c.traceback)
            for c in result.cells
            if c.status in ("error", "timeout")
        ],
        warnings=[w for w in (located.note, located.answers_note) if w]
        + ([f"not copied into the workspace (over the {MAX_COPY_BYTES // 2**20} MB copy "
            f"budget): {', '.join(skipped[:10])}"] if skipped else [])
        + list(result.warnings)
        + (list(evidence.facts.notes) if evidence.facts else []),
        output_truncated_cells=[c.index + 1 for c in result.cells if c.output_truncated],
        evidence_error=evidence.facts_error,
        peak_memory_mb=result.peak_memory_mb,
        isolation=result.isolation,
        tamper_signals=list(tamper),
    )


def error_report(
    *, assignment: Assignment, rubric: Rubric, params: dict[str, BaseModel], path: Path,
    reason: str, located: Located | None = None,
) -> Report:
    """The notebook could not be run: code items say why (status error, no points);
    written answers in the folder are still graded, they do not depend on the notebook."""
    evidence = Evidence(facts_error=reason, execution_status="not_run", execution_reason=reason)
    root = located.root if located else (path if path.is_dir() else None)
    warnings = []
    if root is not None:
        try:
            questions, answers = gather_answers(root=root, assignment=assignment,
                                                files=located.files if located else ())
            evidence = replace(evidence, questions=questions, answers=answers)
        except Exception as exc:  # the reason already given stands; say why answers are ungraded
            warnings.append(f"the written answers could not be read: {type(exc).__name__}: {exc}")
    checks = run_checks(evidence=evidence, rubric=rubric, params=params)
    return Report(
        assignment=assignment.id,
        submission=_submission(path, located),
        status="error",
        error=reason,
        score=round(sum(c.score for c in checks), 2),
        max_score=rubric.max_score,
        checks=checks,
        execution=ExecutionSummary(status="not_run", reason=reason, warnings=warnings),
        versions=versions(),
        timings={},
        graded_at=_now(),
    )


def _submission(path: Path, located: Located | None) -> Submission:
    if located is None:
        return Submission(path=str(path))
    try:
        rel = str(located.notebook.relative_to(path)) if path.is_dir() else located.notebook.name
    except ValueError:
        rel = located.notebook.name
    digest = sha256_of(located.notebook) if located.notebook.is_file() else None
    owner = located.owner
    return Submission(path=str(path), notebook=rel, sha256=digest,
                      student=owner.student if owner else None,
                      student_id=owner.student_id if owner else None)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def grade_submission(
    *, path: Path, assignment: Assignment, rubric: Rubric, params: dict[str, BaseModel],
    notebook_patterns: list[str] | None = None,
    kernels: Callable[[], WarmKernel | None] | None = None,
    planned: Planned | None = None,
    executed_to: Path | None = None,
) -> Report:
    """Grade one submission (a notebook file or a folder; ``planned`` when it is a part
    of a flat folder, see ``plan_submissions``). Never raises for bad input.
    ``kernels`` hands out pre-warmed kernels; it is asked only once the notebook is read.
    ``executed_to``: where to save the notebook as this run left it (the feedback page
    shows it); removed when the notebook did not run."""
    if executed_to is not None:
        executed_to.unlink(missing_ok=True)  # never an older run's notebook beside this report
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    prestart_kernels(assignment.spec.execution)
    located: Located | None = None
    try:
        located = locate(planned or Planned(path),
                         patterns=notebook_patterns or assignment.spec.notebook_patterns)
        nb = read_notebook(located.notebook, max_mb=assignment.spec.execution.max_notebook_mb)
    except SubmissionError as exc:
        return error_report(assignment=assignment, rubric=rubric, params=params, path=path,
                            reason=str(exc), located=located)
    except OSError as exc:
        return error_report(assignment=assignment, rubric=rubric, params=params, path=path,
                            located=located, reason=f"{path}: cannot read ({exc.strerror or exc})")
    timings["locate"] = time.monotonic() - t0
    warm = kernels() if kernels is not None else None
    with (warm.tmpdir if warm else tempfile.TemporaryDirectory(prefix="grader-")) as tmp:
        workspace = Path(tmp)
        skipped: list[str] = []
        work = prepare_workspace(located=located, assignment=assignment, workspace=workspace,
                                 skipped=skipped)
        if warm is not None and sandbox.resolve(assignment.spec.execution.sandbox).on:
            sandbox.hand_over(work)  # copied after the kernel started: make them its user's
        nonce = secrets.token_hex(16)
        facts_dir = workspace / f"facts-{nonce}"
        result = execute_notebook(
            nb=nb, workdir=work, workspace=workspace, facts_dir=facts_dir, nonce=nonce,
            budget=assignment.spec.execution, warm=warm, on_kernel_ready=warm_host_torch,
        )
        timings.update(result.timings)
        t1 = time.monotonic()
        if executed_to is not None and result.notebook is not None:
            try:  # for the feedback page only: never at the cost of the grade
                save_notebook(result.notebook, executed_to)
            except OSError as exc:
                result.warnings.append(f"the notebook as it ran was not kept for the feedback "
                                       f"page ({executed_to}: {exc.strerror or exc})")
        cells_total = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip())
        evidence = gather_evidence(result=result, facts_dir=facts_dir, nonce=nonce,
                                   cells_total=cells_total)
    questions, answers = gather_answers(root=located.root, assignment=assignment,
                                        files=located.files)
    evidence = replace(evidence, questions=questions, answers=answers)
    checks = run_checks(evidence=evidence, rubric=rubric, params=params)
    timings["checks"] = time.monotonic() - t1
    timings["total"] = time.monotonic() - t0
    return Report(
        assignment=assignment.id,
        submission=_submission(path, located),
        status="graded",
        score=round(sum(c.score for c in checks), 2),
        max_score=rubric.max_score,
        checks=checks,
        execution=summarise_execution(result=result, evidence=evidence, located=located,
                                      skipped=skipped, tamper=tamper_signals(nb)),
        versions=versions(),
        timings={k: round(v, 3) for k, v in timings.items()},
        graded_at=_now(),
    )
