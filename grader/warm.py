"""Pre-warmed kernels: while one submission runs, the next kernel is already started,
with torch imported and the instrumentation installed.

A warm kernel is made in a thread of its own (its own event loop): a fresh workspace,
the kernel started there with the allow-listed environment, the injected first cell
run. The worker that takes it copies the submission into that workspace and makes its
own client (kernel clients belong to the loop that made them; the manager and the
process do not). A kernel serves exactly one submission and is never reused.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from grader.guard import kill_group, register, unregister
from grader.kernels import init_source, kernel_env, new_kernel_manager
from grader.spec import Execution


@dataclass
class WarmKernel:
    tmpdir: tempfile.TemporaryDirectory
    workspace: Path
    work: Path
    km: AsyncKernelManager
    log: object  # the open kernel.log
    init_error: str | None = None
    seconds: float = 0.0  # how long it took to make (off the critical path)
    start_error: str | None = None

    def discard(self) -> None:
        """End an unused warm kernel and remove its workspace."""
        pgid = getattr(self.km.provisioner, "pgid", None) if self.km.provisioner else None
        if pgid:
            kill_group(pgid)
            unregister(pgid)
        self.log.close()
        self.tmpdir.cleanup()  # the connection file lives there too


def prewarm_source(imports: list[str]) -> str:
    """What the fork server does before forking, for a kernel started cold."""
    return (f"from grader.kernel.zygote import preload as _g_preload\n"
            f"_g_preload({list(imports)!r})\ndel _g_preload\n")


def start_warm_kernel(*, budget: Execution) -> WarmKernel:
    """Blocking: start a kernel in a fresh workspace and run the injected first cell."""
    started = time.monotonic()
    tmpdir = tempfile.TemporaryDirectory(prefix="grader-")
    workspace = Path(tmpdir.name)
    work = workspace / "work"
    work.mkdir()
    log = (workspace / "kernel.log").open("wb")
    km = new_kernel_manager(budget=budget, workspace=workspace)
    warm = WarmKernel(tmpdir, workspace, work, km, log)

    async def start() -> None:
        await km.start_kernel(env=kernel_env(workspace=workspace, threads=budget.threads),
                              cwd=str(work), stdout=log, stderr=log)
        if km.provisioner is not None and getattr(km.provisioner, "pgid", None):
            register(km.provisioner.pgid)  # Ctrl-C ends spares too
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=budget.startup_timeout)
            # Imports and the first optimizer before seeding, so no random state is
            # touched after (a no-op in a forked kernel: the server did it).
            await kc.execute_interactive(
                prewarm_source(budget.prewarm_imports), store_history=False,
                timeout=budget.probe_timeout, output_hook=lambda msg: None,
            )
            reply = await kc.execute_interactive(
                init_source(budget=budget), store_history=False,
                timeout=budget.probe_timeout, output_hook=lambda msg: None,
            )
            content = reply.get("content", {})
            if content.get("status") == "error":
                warm.init_error = f"instrumentation failed: {content.get('ename')}: {content.get('evalue')}"
        finally:
            kc.stop_channels()

    try:
        asyncio.run(start())
    except Exception as exc:  # the worker then starts a kernel the ordinary way
        warm.start_error = f"{type(exc).__name__}: {exc}"
    warm.seconds = time.monotonic() - started
    return warm


class Prewarmer:
    """Keeps one warm kernel ready for the next submission of one worker."""

    def __init__(self, *, budget: Execution):
        self.budget = budget
        self._next: Future | None = None
        self._lock = threading.Lock()

    def _start_next(self) -> None:
        fut: Future = Future()

        def run() -> None:
            try:
                fut.set_result(start_warm_kernel(budget=self.budget))
            except BaseException as exc:  # pragma: no cover - reported through the future
                fut.set_exception(exc)

        threading.Thread(target=run, name="grader-prewarm", daemon=True).start()
        self._next = fut

    def take(self, *, start_next: bool = True) -> WarmKernel | None:
        """The warm kernel (waiting for it if still starting); unless this was the last
        submission, the next one starts at once."""
        with self._lock:
            fut, self._next = self._next, None
            if start_next:
                self._start_next()
        warm = fut.result() if fut is not None else start_warm_kernel(budget=self.budget)
        if warm.start_error:
            warm.discard()
            return None
        return warm

    def close(self) -> None:
        with self._lock:
            fut, self._next = self._next, None
        if fut is not None:
            fut.result().discard()
