"""The library API. Keyword-only; the CLI is a thin layer over these functions."""

from __future__ import annotations

import copy
import json
import os
import re
from contextlib import contextmanager
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

try:
    import fcntl
except ImportError:  # Windows: no lock; one grader per output folder is then up to you
    fcntl = None

from grader import __version__
from grader.duplicates import find_duplicates
from grader.guard import kill_all as kill_all_kernels
from grader.overrides import apply_overrides, load_overrides
from grader.overrides import resolve as resolve_overrides
from grader.locate import Planned, plan_submissions, sha256_of
from grader.pipeline import error_report, grade_submission
from grader.warm import Prewarmer, WarmKernel
from grader.formats import render_json
from grader.render import gradebook_csv
from grader.report import Report
from grader.sandbox import resolve as resolve_sandbox
from grader.rubric import Rubric, load_rubric
from grader.spec import Assignment, load_assignment


@dataclass(frozen=True)
class Grading:
    """An assignment with its rubric, loaded and validated once for a batch."""

    assignment: Assignment
    rubric: Rubric
    params: dict[str, BaseModel]


def load_grading(*, assignment: str | Path) -> Grading:
    """Load spec + rubric; raises ``ConfigError`` naming the file, field and fix."""
    spec = load_assignment(assignment)
    rubric, params = load_rubric(spec.rubric_path, assignment_id=spec.id)
    return Grading(spec, rubric, params)


def with_sandbox(grading: Grading, mode: str | None) -> Grading:
    """The same grading with ``--sandbox MODE`` (auto | require | off) instead of the spec's."""
    if mode is None:
        return grading
    spec = grading.assignment.spec
    execution = spec.execution.model_copy(update={"sandbox": mode})
    assignment = copy.copy(grading.assignment)
    assignment.spec = spec.model_copy(update={"execution": execution})
    return Grading(assignment, grading.rubric, grading.params)


def isolation_for(grading: Grading, *, on_warning: Callable[[str], None] | None = None):
    """The sandbox this grading's kernels get, decided before anything runs: raises
    ``SandboxUnavailable`` for ``require`` on a machine without one (nothing is graded)."""
    isolation = resolve_sandbox(grading.assignment.spec.execution.sandbox)
    if isolation.warning and on_warning:
        on_warning(isolation.warning)
    return isolation


def grade_one(*, path: Path, grading: Grading, notebook_patterns: list[str] | None = None,
              executed_to: Path | None = None) -> Report:
    """One submission, nothing written (but the executed notebook to ``executed_to``)."""
    isolation_for(grading)
    return grade_submission(
        path=path, assignment=grading.assignment, rubric=grading.rubric,
        params=grading.params, notebook_patterns=notebook_patterns, executed_to=executed_to,
    )


def internal_error_report(*, path: Path, grading: Grading, exc: BaseException) -> Report:
    """The grader itself failed on this submission: every item listed, zero points, why."""
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    reason = (f"internal grader error ({type(exc).__name__}: {exc}{at}); please report it "
              "to the course staff")
    return error_report(assignment=grading.assignment, rubric=grading.rubric,
                        params=grading.params, path=path, reason=reason)


def report_name(path: Path | Planned) -> str:
    """A file-system-safe name for a submission's report: the student from an LMS export
    name when there is one, else the folder's or the notebook's name."""
    if isinstance(path, Planned):
        stem = path.name_hint
    else:
        resolved = path.resolve()
        stem = resolved.name if resolved.is_dir() else resolved.stem
    return _safe(stem)


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("._") or "submission"


# OUT's own files: a submission named so would have its report or page overwritten
RESERVED_NAMES = {"index", "duplicates", "summary", "overrides"}


def unique_names(paths: Sequence[Path | Planned]) -> list[str]:
    """Report names that do not depend on the order of the arguments: submissions whose
    names clash (``alice/XOR.ipynb``, ``bob/XOR.ipynb``) are told apart by their folders
    (``alice_XOR``, ``bob_XOR``), and only the same path given twice gets a number."""
    where = [(p.path if isinstance(p, Planned) else p).resolve() for p in paths]
    names = [report_name(p) for p in paths]
    names = [f"{n}_submission" if n.lower() in RESERVED_NAMES else n for n in names]
    for depth in range(1, 4):
        clashes = {n for n in names
                   if len({w for m, w in zip(names, where) if m == n}) > 1}
        if not clashes:
            break
        names = [_safe("_".join([*w.parts[-1 - depth:-1], report_name(p)])) if n in clashes else n
                 for n, w, p in zip(names, where, paths)]
    order = sorted(range(len(names)), key=lambda i: (names[i], str(where[i])))
    seen: dict[str, int] = {}
    for i in order:
        seen[names[i]] = seen.get(names[i], 0) + 1
        if seen[names[i]] > 1:
            names[i] = f"{names[i]}-{seen[names[i]]}"
    return names


EXECUTED_DIR = "executed"


def executed_path(out_dir: Path, name: str) -> Path:
    """Where a batch keeps a submission's notebook as the grader's run left it
    (``OUT/executed/<name>.ipynb``): the feedback page renders it."""
    return out_dir / EXECUTED_DIR / f"{name}.ipynb"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file + rename, so a report is either whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)  # and the rename itself survives a power loss


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform that cannot open folders (Windows): nothing to do
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class OutBusy(Exception):
    """Another grader process is writing into the same output folder."""


@contextmanager
def out_lock(out_dir: Path | None) -> Iterator[None]:
    """Hold ``OUT/.grader.lock`` while grading into OUT: two runs into one folder would
    race on summary.csv and overrides. The holder's pid is in the file, for the message."""
    if out_dir is None or fcntl is None:  # no output, or a platform without flock
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ".grader.lock"
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise OutBusy(f"{out_dir}: another `grader grade` (pid {holder}) is writing into "
                          "this folder; wait for it to finish, or grade into another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def grade(
    *,
    paths: Sequence[Path],
    grading: Grading,
    out_dir: Path | None = None,
    jobs: int = 1,
    overrides: Path | None = None,
    force: bool = False,
    prewarm: bool = True,
    name_pattern: str | None = None,
    cluster: str | None = None,
    on_report: Callable[[str, Report], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> dict[str, Report]:
    """Grade many submissions; write ``<out>/<name>.json`` as each finishes and
    ``<out>/summary.csv`` at the end. One failing submission never stops the batch.
    TA overrides (the given file, else ``<out>/overrides.toml``) are applied to each.
    With ``prewarm`` and a core to spare (jobs < cores), each worker starts its next kernel
    while it grades. Files of a flat folder (an LMS export) are grouped per student, with
    ``name_pattern`` (else the spec's) or the Canvas and Moodle file names. With
    ``cluster`` (a Dask scheduler's address) the submissions are graded on its workers,
    as many at once as they have kernel slots; everything else stays here."""
    planned, warnings = plan_submissions(
        paths, name_pattern=name_pattern or grading.assignment.spec.name_pattern)
    for warning in warnings:
        if on_warning:
            on_warning(warning)
    names = unique_names(planned)
    if not cluster:  # on a cluster, the workers' own machines decide
        isolation_for(grading, on_warning=on_warning)
    with out_lock(out_dir):
        remote = None
        if cluster:
            from grader.cluster import Cluster

            remote = Cluster(cluster, grading=grading)  # ClusterUnavailable: nothing graded
            if remote.warning and on_warning:
                on_warning(remote.warning)
        try:
            return _grade_batch(planned=planned, names=names, grading=grading, out_dir=out_dir,
                                jobs=remote.slots if remote else jobs, overrides=overrides,
                                force=force, prewarm=prewarm and remote is None, remote=remote,
                                on_report=on_report, on_warning=on_warning)
        finally:
            if remote is not None:
                remote.close()


def _grade_batch(*, planned: list[Planned], names: list[str], grading: Grading,
                 out_dir: Path | None, jobs: int, overrides: Path | None, force: bool,
                 prewarm: bool, on_report: Callable[[str, Report], None] | None,
                 on_warning: Callable[[str], None] | None, remote=None) -> dict[str, Report]:
    reports: dict[str, Report] = {}
    in_force = resolve_overrides(given=overrides, out_dir=out_dir, on_warning=on_warning)
    entries = load_overrides(in_force, rubric=grading.rubric) if in_force else []
    interrupted = threading.Event()
    # A spare kernel only pays off on an idle core; with every core busy, making it would
    # only take CPU from the kernels that are running.
    use_warm = prewarm and len(planned) > 1 and max(1, jobs) < (os.cpu_count() or 1)
    local = threading.local()  # one pre-warmer (one spare kernel) per worker thread
    warmers: list[Prewarmer] = []

    unstarted = [len(planned)]  # submissions no worker has taken yet
    count_lock = threading.Lock()

    def kernels() -> WarmKernel | None:
        if not hasattr(local, "warmer"):
            local.warmer = Prewarmer(budget=grading.assignment.spec.execution)
            warmers.append(local.warmer)
        with count_lock:
            unstarted[0] -= 1
            more = unstarted[0] > 0
        return local.warmer.take(start_next=more)

    def one(name: str, plan: Planned) -> tuple[str, Report]:
        path = plan.path
        if out_dir is not None and not force:
            previous = up_to_date_report(out_dir / f"{name}.json", path=path, grading=grading)
            if previous is not None:
                return name, apply_overrides(previous, name, entries)
        executed = executed_path(out_dir, name) if out_dir is not None else None
        if executed is not None:
            executed.unlink(missing_ok=True)  # never an older run's notebook beside this report
        try:
            if remote is not None:
                report = remote.grade(plan, executed_to=executed)
            else:
                report = grade_submission(
                    path=path, assignment=grading.assignment, rubric=grading.rubric,
                    params=grading.params, kernels=kernels if use_warm else None, planned=plan,
                    executed_to=executed,
                )
        except Exception as exc:  # a grader bug must cost one report, not the batch
            report = internal_error_report(path=path, grading=grading, exc=exc)
        report = apply_overrides(report, name, entries)
        if out_dir is not None and not interrupted.is_set():
            started = time.monotonic()
            report.timings["report"] = 0.0  # rendered once: the time is patched into the text
            text = render_json(report)
            seconds = round(time.monotonic() - started, 3)
            report.timings["report"] = seconds
            at = text.rindex('"timings": {')  # patch the timings object only
            text = text[:at] + text[at:].replace('"report": 0.0', f'"report": {seconds}', 1)
            write_atomic(out_dir / f"{name}.json", text)
        return name, report

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [pool.submit(one, n, p) for n, p in zip(names, planned)]
        for fut in as_completed(futures):
            name, report = fut.result()
            reports[name] = report
            if on_report:
                on_report(name, report)
    except KeyboardInterrupt:
        # No report for what was cut short, no kernel left running; finished reports stay.
        interrupted.set()
        pool.shutdown(wait=False, cancel_futures=True)
        if remote is not None:
            remote.cancel()  # the cluster's tasks too: nothing keeps running for this batch
        kill_all_kernels()
        raise
    finally:
        pool.shutdown(wait=True)
        for warmer in warmers:
            warmer.close()
    ordered = {n: reports[n] for n in names}
    if out_dir is not None:
        unread: list[str] = []
        book = read_reports(out_dir, assignment=grading.assignment.id, unread=unread)
        for entry in entries:
            if entry.submission not in book and on_warning:
                on_warning(f"{in_force}: override of '{entry.submission}' ({entry.item}) matches "
                           f"no report in {out_dir}; check the submission's name in summary.csv")
            elif entry.submission in book and not entry.holds_for(book[entry.submission]) and on_warning:
                on_warning(f"{in_force}: override of '{entry.submission}' ({entry.item}) was made on "
                           f"notebook sha256 {entry.sha256[:12]}…, the submission is now "
                           f"{book[entry.submission].submission.sha256[:12]}…; not applied: look "
                           "at the new version, then update the override's sha256 or remove it")
        for name in unread:
            if on_warning:
                on_warning(f"{out_dir / name}: not a report this grader can read (an older "
                           "schema, or damaged); left out of summary.csv — grade it again")
        pairs = find_duplicates(book)
        write_atomic(out_dir / "summary.csv",
                     gradebook_csv(book, rubric=grading.rubric, duplicates=pairs))
        write_atomic(out_dir / "duplicates.json", json.dumps([p.as_dict() for p in pairs], indent=2) + "\n")
    return ordered


def _newest_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return max(times, default=path.stat().st_mtime if path.exists() else float("inf"))


def up_to_date_report(report_path: Path, *, path: Path, grading: Grading) -> Report | None:
    """The saved report, if it is this submission's (same path, same notebook content),
    newer than the submission, the spec and the rubric, made by this grader version, and
    not an error (a crash, a kernel that died or did not start is graded again);
    otherwise None (grade again)."""
    if not report_path.is_file() or not path.exists():
        return None
    made = report_path.stat().st_mtime
    inputs = [_newest_mtime(path), grading.assignment.rubric_path.stat().st_mtime,
              (grading.assignment.root / "assignment.toml").stat().st_mtime]
    if made <= max(inputs):
        return None
    try:
        report = Report.model_validate_json(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if report.assignment != grading.assignment.id or report.versions.grader != __version__:
        return None
    if report.status == "error" or report.execution.status in ("kernel_died", "not_started"):
        return None
    if Path(report.submission.path).resolve() != path.resolve():
        return None  # another submission's report under the same name
    notebook = path / (report.submission.notebook or "") if path.is_dir() else path
    if not notebook.is_file() or sha256_of(notebook) != report.submission.sha256:
        return None
    return report


def read_reports(out_dir: Path, *, assignment: str | None,
                 unread: list[str] | None = None) -> dict[str, Report]:
    """Every valid report of ``assignment`` (None: of any) in ``out_dir``: the gradebook
    covers earlier runs into the same folder too, so grading a few submissions again
    loses no rows. The names of report files that cannot be read are added to ``unread``."""
    found: dict[str, Report] = {}
    for path in sorted(out_dir.glob("*.json")):
        if path.name == "duplicates.json":
            continue
        try:
            rep = Report.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            if unread is not None:
                unread.append(path.name)
            continue
        if assignment is None or rep.assignment == assignment:
            found[path.stem] = rep
    return found


def export_gradebook(
    *, out_dir: Path, grading: Grading, fmt: str, column: str | None = None
) -> tuple[str, list[str]]:
    """The reports in ``out_dir`` as an LMS import file (``fmt``: canvas or moodle), and
    warnings for rows the LMS cannot match (no student id in the file name)."""
    from grader.lms import canvas_csv, moodle_csv

    reports = read_reports(out_dir, assignment=grading.assignment.id)
    points = grading.rubric.max_score
    warnings = [f"{name}: no student id (the file name is not a Canvas or Moodle export name, "
                "and no name_pattern gave one); the LMS will not match this row"
                for name, rep in reports.items() if not rep.submission.student_id]
    if fmt == "canvas":
        title = column or grading.assignment.spec.title
        return canvas_csv(reports, assignment=title, points=points), warnings
    return moodle_csv(reports, points=points), warnings


def calibrate_written(
    *, out_dir: Path, grading: Grading, overrides: Path | None = None,
    alpha: float = 1.0, folds: int = 5,
):
    """Fit the written items' weights to the TA's overrides of the reports in ``out_dir``
    (``overrides``, else ``OUT/overrides.toml``). Returns (Calibration, skipped overrides).
    Raises ``CalibrationError`` when there is too little to fit on."""
    from grader.calibrate import CalibrationError, calibrate, samples_from

    path = resolve_overrides(given=None, out_dir=out_dir) if overrides is None else overrides
    if path is None or not path.is_file():
        raise CalibrationError(f"{out_dir}: no overrides.toml; a TA's overrides are what "
                               "calibration fits to (grader grade --overrides FILE)")
    entries = load_overrides(path, rubric=grading.rubric)
    written = {i.id: grading.params[i.id] for i in grading.rubric.items if i.check == "written_answer"}
    if not written:
        raise CalibrationError(f"the rubric of {grading.assignment.id} has no written_answer items")
    reports = read_reports(out_dir, assignment=grading.assignment.id)
    samples, skipped = samples_from(
        reports, entries, written_items={k: p.outside_readme_factor for k, p in written.items()})
    current = next(iter(written.values())).weights.model_dump()
    result = calibrate(samples, current=current, alpha=alpha, folds=folds,
                       step=grading.rubric.score_step)
    return result, skipped
