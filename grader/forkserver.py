"""Host side of the kernel fork server (``grader.kernel.zygote``).

Starting a kernel from scratch costs the interpreter, ipykernel, and then every torch
notebook's first cells import torch, numpy and matplotlib and build the first
optimizer: about 3 s of CPU per submission on a laptop core. The fork server pays that
once per grader process; each kernel is then a fork of it (tens of milliseconds), still
a fresh process that serves one submission. One server per (thread count, preload list),
started in the background as soon as grading begins, ended when the grader exits.

Linux only (kernels are watched through pidfds, which survive pid reuse). Anywhere the
server cannot start or answer, kernels are started the ordinary way instead.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from grader.spec import Execution

EnvFor = Callable[..., dict[str, str]]  # kernel_env(workspace=..., threads=...)


class ForkServerError(RuntimeError):
    """The fork server could not start or could not fork a kernel."""


class ForkedProcess:
    """The part of ``subprocess.Popen`` that jupyter_client's provisioner uses, for a kernel
    that is not our child (the server forked it). Exit codes are not known: 0 once gone."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # exited already
            self._fd, self.returncode = None, 0

    def poll(self) -> int | None:
        if self.returncode is None and self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], 0)
            if readable:
                self._gone()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], timeout)
            if not readable:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
            self._gone()
        return 0

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            signal.pidfd_send_signal(self._fd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _gone(self) -> None:
        self.returncode = 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ForkServer:
    """One zygote process and the pipe to it. ``spawn`` may be called from any thread."""

    def __init__(self, *, threads: int, preload: tuple[str, ...], env_for: EnvFor,
                 start_timeout: float = 120, reply_timeout: float = 30,
                 command: list[str] | None = None):
        self.threads = threads
        self.env_for = env_for
        self.preload = preload
        self.start_timeout = start_timeout
        self.reply_timeout = reply_timeout
        self.command = command or [sys.executable, "-m", "grader.kernel.zygote"]
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._dir: tempfile.TemporaryDirectory | None = None
        self._buffer = b""  # bytes read from the server's stdout, not yet a whole line
        self.failed_imports: list[str] = []  # what the server could not import, and why
        self._next_id = 0

    def start(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="grader-zygote-")
        folder = Path(self._dir.name)
        log = (folder / "zygote.log").open("wb")
        config = json.dumps({"preload": list(self.preload)})
        env = self.env_for(workspace=folder, threads=self.threads)
        # the server imports grader.kernel.zygote: from wherever this grader was imported
        # (an installed package, or a checkout on PYTHONPATH); kernels get their own env
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        self._proc = subprocess.Popen(
            [*self.command, config],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            env=env, cwd=folder,
            start_new_session=True,  # Ctrl-C in the terminal is the grader's, not the server's
        )
        log.close()
        ready = self._read(timeout=self.start_timeout)
        if not ready.get("ready"):
            self.close()
            raise ForkServerError(f"fork server did not start: {ready.get('error', ready)}")
        self.failed_imports = [str(f) for f in ready.get("failed", [])]
        if ready.get("threads") != 1:  # e.g. BLAS pools started by threads > 1: cannot fork
            self.close()
            raise ForkServerError(f"fork server has {ready.get('threads')} threads after its imports")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def spawn(self, *, argv: list[str], env: dict[str, str], cwd: str, log: str,
              sandbox: dict | None = None) -> ForkedProcess:
        with self._lock:
            if not self.running:
                raise ForkServerError("fork server is not running")
            self._next_id += 1
            rid = self._next_id
            request = json.dumps({"id": rid, "argv": argv, "env": env, "cwd": cwd, "log": log,
                                  "sandbox": sandbox})
            try:
                self._proc.stdin.write(request.encode() + b"\n")
                self._proc.stdin.flush()
            except OSError as exc:
                raise ForkServerError(f"fork server is gone: {exc}") from exc
            reply = self._reply_to(rid)
        if "pid" not in reply:
            raise ForkServerError(str(reply.get("error", reply)))
        pid = int(reply["pid"])
        try:
            return ForkedProcess(pid)
        except OSError as exc:  # cannot watch it (out of file descriptors): do not keep it
            os.killpg(pid, signal.SIGKILL)
            raise ForkServerError(f"cannot watch the forked kernel: {exc}") from exc

    def _reply_to(self, rid: int) -> dict:
        """The reply to request ``rid``. A late reply to a request given up on (it timed
        out) is skipped, and the kernel it announces is ended: it serves no one."""
        deadline = time.monotonic() + self.reply_timeout
        while True:
            reply = self._read(timeout=max(deadline - time.monotonic(), 0))
            if reply.get("id") == rid or "id" not in reply:
                return reply
            if isinstance(reply.get("pid"), int):
                _end_orphan(reply["pid"])

    def _read(self, *, timeout: float) -> dict:
        """One JSON line from the server. Reads the pipe's file descriptor itself: a
        buffered reader can hold a whole line that ``select`` then never reports."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            readable, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(fd, 65536) if readable else b""
            if not chunk:
                why = "no answer in time" if not readable else "the server closed its pipe"
                return {"error": f"{why} (see zygote.log){self._log_tail()}"}
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return {"error": f"unreadable answer {line[:200]!r}"}

    def _log_tail(self) -> str:
        if self._dir is None:
            return ""
        try:
            tail = (Path(self._dir.name) / "zygote.log").read_text(errors="replace")[-500:]
        except OSError:
            return ""
        return f": {tail.strip()}" if tail.strip() else ""

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()  # EOF: the server exits by itself
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def _end_orphan(pid: int) -> None:
    """End a kernel forked for a request nobody waits for any more (and its group)."""
    try:
        orphan = ForkedProcess(pid)
    except OSError:
        return
    if orphan.poll() is None:
        try:
            os.killpg(pid, signal.SIGKILL)  # setsid made it a group leader; the pidfd was live
        except OSError:
            orphan.kill()


_servers: dict[tuple, ForkServer | ForkServerError] = {}
_restarts: collections.Counter[tuple] = collections.Counter()
_MAX_RESTARTS = 3
_servers_lock = threading.Lock()


_supported: bool | None = None


def supported() -> bool:
    """Linux with pidfds usable (old container seccomp profiles refuse the syscalls)."""
    global _supported
    if _supported is None:
        _supported = False
        if sys.platform.startswith("linux") and hasattr(os, "pidfd_open"):
            try:
                fd = os.pidfd_open(os.getpid())
                try:
                    signal.pidfd_send_signal(fd, 0)
                    _supported = True
                finally:
                    os.close(fd)
            except OSError:
                pass
    return _supported


def _key(budget: Execution) -> tuple:
    return (budget.threads, tuple(budget.prewarm_imports))


def server_for(budget: Execution, *, env_for: EnvFor) -> ForkServer | None:
    """The running fork server for this budget, started on first use (blocking); None when
    the spec turns it off, the platform lacks pidfds, or it failed to start once."""
    if not budget.fork_kernels or not supported():
        return None
    key = _key(budget)
    with _servers_lock:  # one start per key, even with many workers asking at once
        server = _servers.get(key)
        if isinstance(server, ForkServer) and not server.running and _restarts[key] < _MAX_RESTARTS:
            server.close()  # it died (the OOM killer picks large idle processes): start another
            _restarts[key] += 1
            server = None
        if server is None:
            server = ForkServer(threads=budget.threads, preload=key[1], env_for=env_for)
            try:
                server.start()
            except (ForkServerError, OSError) as exc:
                server = ForkServerError(str(exc))
            _servers[key] = server
    return None if isinstance(server, ForkServerError) else server


def prestart(budget: Execution, *, env_for: EnvFor) -> None:
    """Start the fork server in the background, so it is ready when the first kernel is."""
    if budget.fork_kernels and supported() and _key(budget) not in _servers:
        threading.Thread(target=server_for, args=(budget,), kwargs={"env_for": env_for},
                         name="grader-forkserver", daemon=True).start()


@atexit.register
def close_all() -> None:
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        if isinstance(server, ForkServer):
            server.close()
