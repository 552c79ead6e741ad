"""Run a notebook in a real ipykernel: [init cell] + student cells + [probe cell].

The only module that knows about kernels. It returns what happened per cell and where
the probe wrote its facts; it decides nothing about points.
"""

from __future__ import annotations

import atexit
import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from grader import sandbox
from grader.guard import GroupGuard, kill_group
from grader.kernels import init_source, kernel_env, new_kernel_manager, probe_source
from grader.spec import Execution

if TYPE_CHECKING:
    from grader.warm import WarmKernel

ExecStatus = Literal["ok", "errors", "timeout", "kernel_died", "not_started"]
_TIMEOUT_ENAME = "CellTimeoutError"
# After a timed-out cell is interrupted, the kernel has this long to become idle; a cell
# that catches KeyboardInterrupt and goes on would otherwise make every later cell and
# the probe time out too, one budget after another.
_INTERRUPT_GRACE = 5


@dataclass
class CellRecord:
    index: int  # position in the student's notebook, 0-based
    status: Literal["ok", "error", "timeout", "skipped"]
    seconds: float = 0.0
    error: str | None = None
    message: str | None = None
    traceback: str | None = None
    output_truncated: bool = False


@dataclass
class ExecutionResult:
    status: ExecStatus
    reason: str | None
    cells: list[CellRecord] = field(default_factory=list)
    probe_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    reason_is_deadline: bool = False
    peak_memory_mb: float | None = None
    warnings: list[str] = field(default_factory=list)  # what did not hold (watchdog off...)
    kernel_ended: str | None = None  # why the grader ended the kernel before the probe
    isolation: str = "none"  # grader.sandbox.Isolation.describe() of the kernel's sandbox
    notebook: Any = None  # the student's cells with the outputs of this run (executed_notebook)

    @property
    def cells_run(self) -> int:
        return sum(1 for c in self.cells if c.status != "skipped")


class _CappedClient(NotebookClient):
    """Keeps at most ``output_limit`` characters of output per cell (floods stay small)."""

    output_limit = 20_000

    def output(self, outs, msg, display_id, cell_index):  # type: ignore[override]
        used = getattr(self, "_used", {})
        self._used = used
        size = len(json.dumps(msg.get("content", {}).get("data", msg.get("content", {}))))
        if used.get(cell_index, 0) + size > self.output_limit:
            self._dropped = getattr(self, "_dropped", set()) | {cell_index}
            return None
        used[cell_index] = used.get(cell_index, 0) + size
        return super().output(outs, msg, display_id, cell_index)


def _text_of(outputs: list[Any]) -> str:
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "text/plain" in data:
                parts.append(str(data["text/plain"]) + "\n")
    return "".join(parts)


def execute_notebook(
    *,
    nb: nbformat.NotebookNode,
    workdir: Path,
    workspace: Path,
    facts_dir: Path,
    nonce: str,
    budget: Execution,
    warm: WarmKernel | None = None,
    on_kernel_ready: Callable[[], None] | None = None,
) -> ExecutionResult:
    """Execute ``nb``'s code cells in ``workdir``; the probe writes into ``facts_dir``.
    With ``warm``, its kernel (started in ``workspace`` with the first cell run) is used.
    ``on_kernel_ready`` is called once the kernel runs, before the student's cells."""
    timings: dict[str, float] = {}
    # nbclient stores each executed cell back at nb.cells[index], so the injected cells
    # get real positions in a combined notebook: [init] + student cells + [probe].
    init = nbformat.v4.new_code_cell(init_source(budget=budget))
    probe = nbformat.v4.new_code_cell(probe_source(facts_dir=facts_dir, nonce=nonce))
    combined = nbformat.v4.new_notebook(metadata=nb.metadata, cells=[init, *nb.cells, probe])
    probe_index = len(combined.cells) - 1
    started = time.monotonic()  # kernel_start includes waiting for the fork server
    km = warm.km if warm else new_kernel_manager(budget=budget, workspace=workspace)
    client = _CappedClient(
        combined,
        km=km,
        shutdown_kernel="immediate",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": "cell timed out", "traceback": []},
        startup_timeout=int(budget.startup_timeout),
        iopub_timeout=5,
        record_timing=False,
        coalesce_streams=True,
    )
    client.output_limit = max(budget.output_limit, 1000)
    replies: dict[int, dict] = {}
    client.on_cell_executed = lambda cell, cell_index, execute_reply: replies.__setitem__(
        cell_index, execute_reply or {}
    )
    log = warm.log if warm else (workspace / "kernel.log").open("wb")
    result = ExecutionResult(status="ok", reason=None, timings=timings)
    isolation = sandbox.resolve(budget.sandbox)
    result.isolation = isolation.describe()
    if isolation.warning:
        result.warnings.append(isolation.warning)
    guard: GroupGuard | None = None
    try:
        with client.setup_kernel(  # a warm kernel is running already: nothing is started
            env=kernel_env(workspace=workspace, threads=budget.threads),
            cwd=str(workdir),
            stdout=log,
            stderr=log,
            cleanup_kc=True,  # we pass our own manager; still end the kernel here
        ):
            timings["kernel_start"] = time.monotonic() - started
            pgid = getattr(km.provisioner, "pgid", None) or getattr(km.provisioner, "pid", None)
            if pgid:
                guard = GroupGuard(pgid, memory_limit_mb=budget.memory_limit_mb)
            else:
                result.warnings.append(
                    "the kernel has no process group of its own: the memory limit is not "
                    "enforced and processes it starts are not ended with it")
            server = getattr(km.provisioner, "server", None)
            if server is not None and server.failed_imports:
                result.warnings.append("the grading environment could not import "
                                       + "; ".join(server.failed_imports)
                                       + " (a notebook importing it fails the same way)")
            if warm is not None:
                result.probe_error = warm.init_error
                timings["prewarm"] = warm.seconds
            else:
                client.timeout = int(budget.probe_timeout)
                client.execute_cell(init, 0, store_history=False)
                init_reply = replies.pop(0, {}).get("content", {})
                if init_reply.get("status") == "error":
                    result.probe_error = (
                        f"instrumentation failed: {init_reply.get('ename')}: {init_reply.get('evalue')}"
                    )
            if on_kernel_ready is not None:
                on_kernel_ready()
            _run_student_cells(client, combined, budget, replies, result, pgid=pgid)
            timings["cells"] = time.monotonic() - started - timings["kernel_start"]
            if result.kernel_ended:
                result.probe_error = f"the probe did not run: {result.kernel_ended}"
            elif result.status != "kernel_died":
                probe_started = time.monotonic()
                client.timeout = int(budget.probe_timeout)
                try:
                    client.execute_cell(probe, probe_index, store_history=False)
                    reply = replies.pop(probe_index, {}).get("content", {})
                    if reply.get("status") == "error":
                        result.probe_error = f"{reply.get('ename')}: {reply.get('evalue')}"
                except (CellTimeoutError, DeadKernelError) as exc:
                    result.probe_error = f"probe did not finish: {type(exc).__name__}"
                timings["probe"] = time.monotonic() - probe_started
    except DeadKernelError:
        result.status, result.reason = "kernel_died", "the kernel died"
    except RuntimeError as exc:  # kernel failed to start
        if "kernel_start" not in timings:
            result.status, result.reason = "not_started", f"kernel did not start: {exc}"
        else:
            raise
    finally:
        atexit.unregister(client._cleanup_kernel)  # nbclient registers one per client
        log.close()
        if guard is not None:
            guard.close()  # ends children the notebook left running
            result.warnings.extend(guard.warnings)
            result.peak_memory_mb = round(guard.peak_bytes / 2**20, 1)
            if guard.memory_exceeded:
                _blame_memory(result, budget.memory_limit_mb)
    timings["execute_total"] = time.monotonic() - started
    result.notebook = executed_notebook(combined, result)
    return result


def executed_notebook(combined: nbformat.NotebookNode, result: ExecutionResult) -> nbformat.NotebookNode:
    """The student's cells as this run left them: the grader's outputs, never the ones the
    student saved (a cell that did not run shows none), and each code cell's fate in
    ``metadata.grader`` (status, seconds) for the feedback page."""
    cells = [copy.deepcopy(c) for c in combined.cells[1:-1]]
    records = {r.index: r for r in result.cells}
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        record = records.get(index)
        status = record.status if record else ("empty" if not cell.source.strip() else "skipped")
        if status == "skipped":
            cell.outputs, cell.execution_count = [], None
        cell.metadata["grader"] = {"status": status,
                                   "seconds": round(record.seconds, 3) if record else 0.0}
    return nbformat.v4.new_notebook(metadata=copy.deepcopy(combined.metadata), cells=cells)


def _blame_memory(result: ExecutionResult, limit_mb: float) -> None:
    """The watchdog killed the kernel: say so instead of "the kernel died"."""
    result.status = "kernel_died"
    dead = next((c for c in reversed(result.cells) if c.error == "DeadKernelError"), None)
    where = f" in cell {dead.index + 1}" if dead else ""
    result.reason = f"memory limit of {limit_mb:g} MB exceeded{where}; the kernel was stopped"
    if dead:
        dead.error, dead.message = "MemoryLimit", f"the kernel used more than {limit_mb:g} MB"


def _run_student_cells(client, nb, budget: Execution, replies: dict, result: ExecutionResult,
                       *, pgid: int | None = None) -> None:
    deadline = time.monotonic() + budget.deadline
    for position, cell in enumerate(nb.cells[1:-1], start=1):
        index = position - 1  # the student's own numbering
        if cell.cell_type != "code":
            continue
        if not cell.source.strip():
            continue
        if result.kernel_ended:
            result.cells.append(CellRecord(index, "skipped"))
            continue
        if result.status == "kernel_died" or time.monotonic() >= deadline:
            # After a per-cell timeout later cells still run (training may come later);
            # past the notebook deadline nothing more does.
            if result.status != "kernel_died" and not result.reason_is_deadline:
                result.status = "timeout"
                result.reason = (f"the notebook deadline of {budget.deadline:g} s was reached; "
                                 f"cells from {index + 1} on did not run")
                result.reason_is_deadline = True
            result.cells.append(CellRecord(index, "skipped"))
            continue
        remaining = deadline - time.monotonic()
        client.timeout = max(1, math.ceil(min(budget.cell_timeout, remaining)))
        limited_by_deadline = remaining < budget.cell_timeout
        started = time.monotonic()
        try:
            client.execute_cell(cell, position)
        except DeadKernelError:
            result.cells.append(CellRecord(index, "error", time.monotonic() - started,
                                           "DeadKernelError", "the kernel died while this cell ran"))
            result.status, result.reason = "kernel_died", f"the kernel died in cell {index + 1}"
            return
        seconds = time.monotonic() - started
        reply = replies.pop(position, {}).get("content", {})
        truncated = (len(_text_of(cell.get("outputs", []))) > budget.output_limit
                     or position in getattr(client, "_dropped", set()))
        record = CellRecord(index, "ok", seconds, output_truncated=truncated)
        if reply.get("status") == "error":
            if reply.get("ename") == _TIMEOUT_ENAME:
                record.status = "timeout"
                record.error = "Timeout"
                which = "notebook deadline" if limited_by_deadline else "per-cell timeout"
                limit = budget.deadline if limited_by_deadline else budget.cell_timeout
                record.message = f"stopped after {seconds:.0f} s ({which} of {limit:g} s)"
                result.status = "timeout"
                result.reason = f"cell {index + 1} exceeded the {which} of {limit:g} s"
                result.reason_is_deadline = limited_by_deadline
                if not _idle_after_interrupt(client, nb, position, replies):
                    # It caught the interrupt and went on: end it rather than let it
                    # eat every later cell's budget and the probe's.
                    if pgid:
                        kill_group(pgid)
                    result.kernel_ended = (
                        f"cell {index + 1} kept running after it was interrupted at the {which} "
                        f"(does it catch KeyboardInterrupt?); the kernel was ended "
                        f"{_INTERRUPT_GRACE} s later and later cells did not run")
                    result.reason = result.kernel_ended
                    record.message += "; it ignored the interrupt, so the kernel was ended"
            else:
                record.status = "error"
                record.error = str(reply.get("ename", "Error"))
                record.message = str(reply.get("evalue", ""))[:500]
                tb = "\n".join(reply.get("traceback", []) or [])
                record.traceback = _strip_ansi(tb)[-3000:]
                if result.status == "ok":
                    result.status = "errors"
        result.cells.append(record)


def _idle_after_interrupt(client, nb, position: int, replies: dict) -> bool:
    """Whether the kernel answers an empty cell within the grace period after a cell was
    interrupted. The empty cell borrows the interrupted cell's slot, then gives it back."""
    cell = nb.cells[position]
    client.timeout = _INTERRUPT_GRACE
    try:
        client.execute_cell(nbformat.v4.new_code_cell("pass"), position, store_history=False)
    except DeadKernelError:
        return True  # the next cell finds it dead and says so
    finally:
        nb.cells[position] = cell
    reply = replies.pop(position, {}).get("content", {})
    return reply.get("ename") != _TIMEOUT_ENAME


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
