"""What runs on a Dask worker: one submission's task, and the plugin that keeps the
worker's fork server warm. Imported on the workers (and by the client that submits)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

from grader.cluster import unpack_submission
from grader.pipeline import MAX_COPY_BYTES

_gradings: dict[str, Any] = {}
_gradings_lock = threading.Lock()


def _grading_for(packed: dict[str, Any]):
    """The assignment, unpacked and loaded once per worker process (keyed by content)."""
    from grader.api import Grading, load_grading

    key = hashlib.sha256(json.dumps(packed, sort_keys=True).encode()).hexdigest()
    with _gradings_lock:
        if key not in _gradings:
            base = Path(tempfile.mkdtemp(prefix="grader-assignment-"))
            for rel, data in packed["files"].items():
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                (base / rel).write_bytes(base64.b64decode(data))
            loaded = load_grading(assignment=base / packed["root"])
            spec = loaded.assignment.spec
            loaded.assignment.spec = spec.model_copy(
                update={"execution": spec.execution.model_validate(packed["execution"])})
            _gradings[key] = Grading(loaded.assignment, loaded.rubric, loaded.params)
        return _gradings[key]


def grade_task(task: str) -> str:
    """Run on a worker: one submission (JSON in) to its report and the notebook as the
    run left it (JSON out)."""
    from grader.pipeline import grade_submission

    data = json.loads(task)
    grading = _grading_for(data["assignment"])
    tmp = Path(tempfile.mkdtemp(prefix="grader-task-"))
    kept = Path(tempfile.mkdtemp(prefix="grader-executed-"))  # never inside the submission
    try:
        plan = unpack_submission(data["submission"], tmp)
        executed = kept / "executed.ipynb"
        report = grade_submission(path=plan.path, assignment=grading.assignment,
                                  rubric=grading.rubric, params=grading.params, planned=plan,
                                  executed_to=executed)
        if skipped := data["submission"].get("skipped"):
            report.execution.warnings.append(
                f"not sent to the cluster (over the {MAX_COPY_BYTES // 2**20} MB copy budget): "
                + ", ".join(skipped[:10]))
        notebook = json.loads(executed.read_text(encoding="utf-8")) if executed.is_file() else None
        return json.dumps({"report": report.model_dump(mode="json"), "executed": notebook})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(kept, ignore_errors=True)


class WarmForkServer(WorkerPlugin):
    """A worker plugin: start the fork server as the worker starts, so that the first
    task's kernel is forked, not started, and every later one too."""

    name = "grader-fork-server"

    def __init__(self, execution: dict[str, Any]) -> None:
        self.execution = execution

    def setup(self, worker: Any = None) -> None:
        from grader.kernels import prestart
        from grader.spec import Execution

        prestart(Execution.model_validate(self.execution))

    def teardown(self, worker: Any = None) -> None:
        pass
