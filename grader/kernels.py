"""How a submission's kernel is made: this interpreter's ipykernel, an allow-listed
environment, and (where the spec allows and the platform can) a fork of the warm fork
server instead of a cold start; and the cells injected before and after the student's
(``init_source``, ``probe_source``). A kernel always serves exactly one submission."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from importlib.resources import files
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from grader import forkserver, sandbox
from grader.spec import Execution


_KILL_WAIT = 1.0  # seconds to wait for a SIGKILLed kernel before the manager's own polling


class ThisPython(KernelSpecManager):
    """Always this interpreter's ipykernel, whatever kernelspecs the machine has."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="grader",
            language="python",
        )


def kernel_env(*, workspace: Path, threads: int) -> dict[str, str]:
    """An allow-listed environment: nothing of the grader's secrets reaches the kernel."""
    home = workspace / "home"
    tmp = workspace / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    bindir = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([bindir, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(tmp),
        "CUDA_VISIBLE_DEVICES": "",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
    }


class ForkProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, except that the process is forked by the fork
    server (when there is one and it can fork; otherwise the kernel is started the
    ordinary way), and that ``kill`` returns once the kernel is gone."""

    server: forkserver.ForkServer | None = None
    sandbox: dict | None = None  # the policy of grader.sandbox, when the kernel gets one

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        argv = _ipykernel_argv(cmd)
        log = getattr(kwargs.get("stdout"), "name", None)
        if self.server is None or argv is None or not isinstance(log, str):
            return await self._launch_cold(cmd, **kwargs)
        try:
            self.process = self.server.spawn(argv=argv, env=kwargs["env"], cwd=str(kwargs["cwd"]),
                                             log=log, sandbox=self.sandbox)
        except forkserver.ForkServerError as exc:
            self.log.warning("fork server: %s; starting the kernel from scratch", exc)
            return await self._launch_cold(cmd, **kwargs)
        self.pid = self.pgid = self.process.pid  # the kernel called setsid()
        self.cwd = kwargs.get("cwd")
        return self.connection_info

    async def _launch_cold(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        if self.sandbox is not None:  # never without it: a cold kernel enters it before exec
            cmd = [*sandbox.launcher(self.sandbox, str(kwargs["cwd"])), *cmd]
        return await super().launch_kernel(cmd, **kwargs)

    async def kill(self, restart: bool = False) -> None:
        # The manager then polls "is it alive?" every 0.1 s; a SIGKILLed kernel is gone
        # within milliseconds, so wait for that here, off the 0.1 s grid.
        await super().kill(restart=restart)
        deadline = time.monotonic() + _KILL_WAIT
        while self.process is not None and self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.002)


class ReadyClient(AsyncKernelClient):
    """A kernel client whose ``wait_for_ready`` ends when the kernel is ready.

    jupyter_client's version ends with 0.2 s of waiting for IOPub to fall silent, on the
    critical path of every submission. Here the kernel is ready once it has answered
    ``kernel_info`` and the ``idle`` status of one of those requests has arrived on IOPub
    (which proves IOPub is connected); until then the request is sent again."""

    def _context_default(self) -> zmq.asyncio.Context:
        # The client connects while the kernel is still starting; a refused connection is
        # retried after zmq's default 100 ms, which put ~0.14 s on every kernel start.
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.RECONNECT_IVL, 10)
        context.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
        return context

    async def wait_for_ready(self, timeout: float | None = None) -> None:  # type: ignore[override]
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        requests: set[str] = set()
        while True:
            requests.add(self.kernel_info())
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply and reply["msg_type"] == "kernel_info_reply" and await self._idle_seen(requests):
                self._handle_kernel_info_reply(reply)
                return
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _idle_seen(self, requests: set[str], *, wait: float = 0.05) -> bool:
        until = time.monotonic() + wait
        while (left := until - time.monotonic()) > 0:
            try:
                msg = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
                    and msg["parent_header"].get("msg_id") in requests):
                return True
        return False


def _ipykernel_argv(cmd: list[str]) -> list[str] | None:
    """The kernel app's own arguments in ``python -m ipykernel_launcher -f FILE``."""
    if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]:
        return cmd[3:]
    return None


def prestart(budget: Execution) -> None:
    """Get the fork server going in the background (a no-op where it is not used)."""
    forkserver.prestart(budget, env_for=kernel_env)


def new_kernel_manager(*, budget: Execution, workspace: Path) -> AsyncKernelManager:
    """A manager for one submission's kernel, forked from the warm server when possible,
    in its sandbox when there is one. Its connection file is in the workspace; in a
    sandbox (no network) the channels are unix sockets there too (ZeroMQ ipc)."""
    km = AsyncKernelManager(kernel_spec_manager=ThisPython(), kernel_name="grader")
    km.client_factory = ReadyClient
    km.kernel_id = str(uuid.uuid4())
    km.connection_file = str(workspace / "kernel.json")  # removed with the workspace
    provisioner = ForkProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
    provisioner.server = forkserver.server_for(budget, env_for=kernel_env)  # None: cold start
    if sandbox.resolve(budget.sandbox).on:
        km.transport = "ipc"
        km.ip = str(workspace / "zmq")
        provisioner.sandbox = sandbox.policy(workspace=workspace, budget=budget)
    km.provisioner = provisioner
    return km


# Run in the kernel, in this order, in one private module: graph.py binds the real
# builtins before any student code can patch them; instrument.py uses both others.
KERNEL_FILES = ("graph.py", "devices.py", "instrument.py")


def init_source(*, budget: Execution) -> str:
    """The injected first cell: load the instrumentation as a private module."""
    config = json.dumps({"seed": budget.seed, "threads": budget.threads, "map_cuda": budget.map_cuda})
    loads = "".join(
        f"exec(compile({files('grader.kernel').joinpath(name).read_text(encoding='utf-8')!r}, "
        f"'<grader-{name[:-3]}>', 'exec'), _g_mod.__dict__)\n"
        for name in KERNEL_FILES
    )
    return (
        "import sys as _g_sys, types as _g_types\n"
        "_g_mod = _g_types.ModuleType('_grader_kernel')\n"
        f"{loads}"
        "_g_sys.modules['_grader_kernel'] = _g_mod\n"
        f"_g_mod.install({config!r})\n"
        "del _g_sys, _g_types, _g_mod\n"
    )


def probe_source(*, facts_dir: Path, nonce: str) -> str:
    return f"__import__('sys').modules['_grader_kernel'].finish({str(facts_dir)!r}, {nonce!r})\n"
