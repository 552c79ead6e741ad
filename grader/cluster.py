"""Grade a batch on an existing Dask cluster: ``grader grade … --cluster tcp://HOST:8786``.

No scheduler of our own: SLURM (dask-jobqueue), Kubernetes (dask-kubernetes) or
``dask scheduler`` / ``dask worker`` by hand all give an address. The client plans the
batch, keeps resume, overrides, the gradebook and the progress bar, and is the only one
that writes into OUT. Each task is one submission, carried as JSON (its files, capped as
locally, and the assignment's spec, data, answer template and rubric), so that workers
need no shared filesystem; a worker grades it exactly as ``grader grade`` does — the
kernel reports facts, the worker's host-side checks make the verdicts, in the sandbox
and budgets of the spec — and returns the report as JSON.

Workers should be started with ``--resources kernel=N`` (N = their cores) and
``--nthreads N``: every task asks for one ``kernel``, so Dask never runs two kernels on
one core. A worker keeps its fork server warm across tasks. What runs on the workers is
in ``grader.cluster_worker``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grader import __version__
from grader.lms import Owner
from grader.locate import Planned
from grader.pipeline import error_report, folder_files, save_notebook
from grader.report import Report

RESOURCE = "kernel"
WORKER_WAIT = 60  # seconds to wait for a first worker to join an empty cluster


def _grader_version() -> str:
    from grader import __version__ as version

    return version


class ClusterUnavailable(Exception):
    """No Dask here, or no scheduler at the address; the message says which and the fix."""


# -- what a task carries ----------------------------------------------------------------
def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _folder_files(folder: Path, skipped: list[str]) -> dict[str, str]:
    kept, over = folder_files(folder)  # the same files and budget as a local workspace
    skipped.extend(over)  # named in the report by the worker, as locally
    return {rel: _b64(src) for src, rel in kept}


def pack_submission(plan: Planned) -> dict[str, Any]:
    """The submission as JSON: its own files, under the names it will be graded by."""
    path = plan.path.resolve()
    owner = asdict(plan.owner) if plan.owner else None
    if plan.files:  # one student's files of a flat LMS export
        return {"kind": "files", "folder": path.parent.name, "notebook": path.name, "owner": owner,
                "files": [[src.name, name, _b64(src)] for src, name in plan.files]}
    skipped: list[str] = []
    if path.is_dir():
        return {"kind": "folder", "folder": path.name or "submission", "owner": owner,
                "files": _folder_files(path, skipped), "skipped": skipped}
    return {"kind": "notebook", "folder": path.parent.name or "submission", "notebook": path.name,
            "owner": owner, "files": _folder_files(path.parent, skipped), "skipped": skipped}


def unpack_submission(packed: dict[str, Any], into: Path) -> Planned:
    """The submission written under ``into``, as a plan the pipeline grades."""
    folder = into / packed["folder"]
    folder.mkdir(parents=True)
    owner = Owner(**packed["owner"]) if packed.get("owner") else None
    if packed["kind"] == "files":
        members = []
        for stored, name, data in packed["files"]:
            target = folder / stored
            target.write_bytes(base64.b64decode(data))
            members.append((target, name))
        return Planned(folder / packed["notebook"], tuple(members), owner)
    for rel, data in packed["files"].items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
    path = folder if packed["kind"] == "folder" else folder / packed["notebook"]
    return Planned(path, (), owner)


def pack_assignment(grading) -> dict[str, Any]:
    """What a worker needs of the assignment: the spec, its data files, the answers'
    template and the rubric, relative to their common folder, and the execution settings
    in force (``--sandbox`` included). Not the solution nor the mutants."""
    a = grading.assignment
    wanted = [a.root / "assignment.toml", a.rubric_path,
              *(a.path(name) for name in a.spec.data)]
    if a.spec.answers.template:
        wanted.append(a.path(a.spec.answers.template))
    wanted = [p.resolve() for p in wanted if p.is_file()]
    base = Path(os.path.commonpath([str(p.parent) for p in wanted] + [str(a.root.resolve())]))
    return {"root": a.root.resolve().relative_to(base).as_posix(),
            "files": {p.relative_to(base).as_posix(): _b64(p) for p in wanted},
            "execution": a.spec.execution.model_dump()}


# -- on the client ---------------------------------------------------------------------
class Cluster:
    """A connection to the scheduler, and the tasks it runs for one batch."""

    def __init__(self, address: str, *, grading, timeout: float = 5.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ClusterUnavailable(
                "--cluster needs Dask: pip install 'nbtorch-grader[dask]'") from None
        try:
            self.client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterUnavailable(f"no Dask scheduler answered at {address} within "
                                     f"{timeout:g} s ({type(exc).__name__}: {exc}); check the "
                                     "address and that the scheduler is running") from None
        try:
            self._connected(grading)
        except BaseException:
            self.client.close()
            raise

    def _connected(self, grading) -> None:
        self.grading = grading
        self.assignment = pack_assignment(grading)
        self._futures: set = set()
        self._lock = threading.Lock()
        self.warning: str | None = None
        if not self.client.scheduler_info().get("workers"):  # e.g. SLURM jobs still queued
            try:
                self.client.wait_for_workers(1, timeout=WORKER_WAIT)
            except TimeoutError:
                raise ClusterUnavailable(f"the scheduler has no workers, and none joined within "
                                         f"{WORKER_WAIT} s; start some (dask worker ADDRESS "
                                         f"--resources {RESOURCE}=N --nthreads N)") from None
        workers = self.client.scheduler_info().get("workers", {}).values()
        slots = sum(int(w.get("resources", {}).get(RESOURCE, 0)) for w in workers)
        self.resources = {RESOURCE: 1} if slots else None
        if not slots:
            slots = sum(int(w.get("nthreads", 1)) for w in workers)
            self.warning = (f"no worker declares the '{RESOURCE}' resource: tasks may share a "
                            f"core; start workers with --resources {RESOURCE}=N --nthreads N")
        self.slots = max(slots, 1)
        versions = self.client.run(_grader_version)  # worker address -> its grader version
        if odd := sorted(addr for addr, v in versions.items() if v != __version__):
            self.warning = (f"workers with another grader version than this client's "
                            f"{__version__}: {', '.join(odd)}; their reports may differ")
        try:
            from grader.cluster_worker import WarmForkServer

            self.client.register_plugin(WarmForkServer(self.assignment["execution"]),
                                        name=WarmForkServer.name)
        except Exception as exc:  # an old scheduler: kernels then start when the first task runs
            self.warning = f"fork servers not pre-started on the workers: {exc}"

    def grade(self, plan: Planned, *, executed_to: Path | None = None) -> Report:
        """Blocking: grade one submission on the cluster (called from a client thread).
        ``executed_to``: where to save the notebook as the worker's run left it."""
        from grader.cluster_worker import grade_task

        task = json.dumps({"assignment": self.assignment, "submission": pack_submission(plan)})
        future = self.client.submit(grade_task, task, resources=self.resources, pure=False)
        with self._lock:
            self._futures.add(future)
        from distributed import KilledWorker

        try:
            answer = json.loads(future.result())
            if "report" not in answer:  # a worker of an older grader: the report alone
                answer = {"report": answer}
            report = Report.model_validate(answer["report"])
        except KilledWorker as exc:  # the scheduler gave up: every worker it tried died
            g = self.grading
            return error_report(assignment=g.assignment, rubric=g.rubric, params=g.params,
                                path=plan.path, reason=f"the Dask workers grading it died ({exc}): "
                                "killed, or out of memory; it was tried on another worker first")
        finally:
            with self._lock:
                self._futures.discard(future)
        if executed_to is not None and answer.get("executed"):
            import nbformat

            try:  # for the feedback page only: never at the cost of the grade
                save_notebook(nbformat.from_dict(answer["executed"]), executed_to)
            except OSError as exc:
                report.execution.warnings.append(
                    f"the notebook as it ran was not kept for the feedback page ({exc})")
        # the worker saw its own copy: the report names the submission as the client has it
        sub = report.submission.model_copy(update={"path": str(plan.path)})
        return report.model_copy(update={"submission": sub})

    def cancel(self) -> None:
        with self._lock:
            futures = list(self._futures)
        if futures:
            self.client.cancel(futures, force=True)

    def close(self) -> None:
        self.client.close()
