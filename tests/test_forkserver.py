"""Kernels forked from the fork server: fresh, isolated, same results as cold kernels,
and nothing of the server outlives the grader."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import forkserver
from grader.api import grade_one
from tests.fixtures.notebooks import HEAD, Fixture, code_score, net, train

pytestmark = pytest.mark.kernel
# Forking needs Linux pidfds (old container seccomp profiles refuse them); elsewhere the
# grader starts kernels cold and the tests that assert a fork cannot hold.
needs_fork = pytest.mark.skipif(not forkserver.supported(),
                                reason="no fork server here (needs Linux pidfds): kernels start cold")
CANARY = "canary-fork-3c1d"

# Run in the student's kernel; any failed assert becomes a cell error in the report.
INSIDE = """
import gc, os, signal, subprocess, sys, tempfile
forked = gc.get_freeze_count() > 0   # the server froze what it imported; a cold kernel did not
assert os.path.basename(os.getcwd()) == "work", os.getcwd()
assert tempfile.gettempdir() == os.path.join(os.path.dirname(os.getcwd()), "tmp"), tempfile.gettempdir()
import socket
sandboxed = socket.gethostname() == "sandbox"  # its own namespaces; its group's leader is outside
assert sandboxed or os.getpgid(0) == os.getpid(), "the kernel leads a process group of its own"
assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
assert subprocess.run(["true"]).returncode == 0
for path in ("/proc/self/environ", f"/proc/{os.getppid()}/environ" if forked and not sandboxed else "/proc/self/environ"):
    assert b"CANARY" not in open(path, "rb").read().replace(b"canary-fork-3c1d", b"CANARY"), path
print("FORKED" if forked else "COLD")
"""


def _with(grading, **execution):
    other = copy.deepcopy(grading)
    for key, value in execution.items():
        setattr(other.assignment.spec.execution, key, value)
    return other


def _graded(tmp_path: Path, grading, name: str):
    nb = Fixture(name, [HEAD, INSIDE, net(), train()]).write(tmp_path)
    return grade_one(path=nb, grading=grading)


def _fingerprint(report) -> list:
    return [(c.id, c.status, c.score, c.evidence) for c in report.checks]


def test_forked_kernel_is_fresh_isolated_and_grades_like_a_cold_one(tmp_path, grading, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", CANARY)
    forked = _graded(tmp_path / "a", grading, "forked")
    cold = _graded(tmp_path / "b", _with(grading, fork_kernels=False), "cold")
    assert forked.execution.cell_errors == [] and cold.execution.cell_errors == []
    assert code_score(forked) == code_score(cold) == 150
    assert _fingerprint(forked) == _fingerprint(cold)
    assert CANARY not in forked.model_dump_json()


def test_a_fork_server_that_cannot_fork_falls_back_to_a_cold_kernel(tmp_path, grading, monkeypatch):
    def refuse(self, **kwargs):
        raise forkserver.ForkServerError("refused for the test")

    monkeypatch.setattr(forkserver.ForkServer, "spawn", refuse)
    report = _graded(tmp_path, grading, "fallback")
    assert report.execution.cell_errors == []
    assert code_score(report) == 150


@needs_fork
def test_forked_kernels_really_are_forked(tmp_path, grading):
    probe = "import gc\nassert gc.get_freeze_count() > 0, 'not forked'"
    nb = Fixture("probe", [HEAD, probe, net(), train()]).write(tmp_path)
    assert grade_one(path=nb, grading=grading).execution.cell_errors == []
    cold = grade_one(path=nb, grading=_with(grading, fork_kernels=False))
    [err] = cold.execution.cell_errors
    assert err.error == "AssertionError" and "not forked" in err.message


def _processes_under(folder: Path, *, kernels_only: bool = False) -> list[int]:
    """pids whose working folder is inside ``folder`` (the server's and its kernels')."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd.is_relative_to(folder) and (cwd.name == "work" or not kernels_only):
                found.append(int(entry.name))
    return found


def _grader(tmp_path: Path, nb: Path) -> subprocess.Popen:
    tmp = tmp_path / "tmp"  # the server's folder is made here, so it can be found
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(nb), "-a", "01-very-basics", "-o", str(tmp_path / "out")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_fork_server_ends_with_the_grader(tmp_path):
    nb = Fixture("quick", [HEAD, net(), train(epochs=20)]).write(tmp_path / "sub")
    proc = _grader(tmp_path, nb)
    assert proc.wait(timeout=180) in (0, 1)
    tmp = tmp_path / "tmp"
    assert _wait_for(lambda: not _processes_under(tmp), 5), _processes_under(tmp)
    assert not list(tmp.glob("grader-*")), "temp folders left behind"


@needs_fork
def test_a_killed_grader_takes_its_kernels_with_it(tmp_path):
    """SIGKILL leaves no cleanup to the grader: the server sees EOF and ends the kernel."""
    nb = Fixture("endless", [HEAD, net(), "import time\nwhile True:\n    time.sleep(0.1)"]).write(tmp_path / "sub")
    proc = _grader(tmp_path, nb)
    tmp = tmp_path / "tmp"
    assert _wait_for(lambda: _processes_under(tmp, kernels_only=True), 120), "the kernel never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _wait_for(lambda: not _processes_under(tmp), 10), _processes_under(tmp)


def test_a_server_with_thread_pools_is_not_used(tmp_path, grading):
    """With threads > 1, BLAS starts its pool at import: forking that is unsafe, so kernels
    start cold (and still grade)."""
    probe = "import gc\nassert gc.get_freeze_count() == 0, 'forked'"
    nb = Fixture("threads", [HEAD, probe, net(), train()]).write(tmp_path)
    report = grade_one(path=nb, grading=_with(grading, threads=2))
    assert report.execution.cell_errors == []
    assert code_score(report) == 150


@needs_fork
def test_a_dead_fork_server_is_replaced(tmp_path, grading):
    from grader.kernels import kernel_env

    budget = grading.assignment.spec.execution
    first = forkserver.server_for(budget, env_for=kernel_env)
    assert first is not None
    os.kill(first._proc.pid, signal.SIGKILL)
    first._proc.wait()
    probe = "import gc\nassert gc.get_freeze_count() > 0, 'not forked'"
    nb = Fixture("after_death", [HEAD, probe, net(), train()]).write(tmp_path)
    report = grade_one(path=nb, grading=grading)
    assert report.execution.cell_errors == [] and code_score(report) == 150
    second = forkserver.server_for(budget, env_for=kernel_env)
    assert second is not first and second.running


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "cold"])
def test_a_killed_kernel_is_gone_when_kill_returns(tmp_path, grading, fork):
    """The manager polls for a dead kernel every 0.1 s; the provisioner's kill waits for
    the SIGKILLed process itself, so nothing is left to poll for. The client retries a
    refused connection after 10 ms (zmq's default is 100 ms), as a starting kernel
    refuses the first one."""
    import asyncio

    import zmq

    from grader.kernels import kernel_env, new_kernel_manager

    budget = _with(grading, fork_kernels=fork).assignment.spec.execution
    (tmp_path / "work").mkdir()

    async def run() -> tuple[int | None, int]:
        km = new_kernel_manager(budget=budget, workspace=tmp_path)
        with (tmp_path / "kernel.log").open("wb") as log:
            await km.start_kernel(env=kernel_env(workspace=tmp_path, threads=1),
                                  cwd=str(tmp_path / "work"), stdout=log, stderr=log)
        kc = km.client()
        probe = kc.context.socket(zmq.DEALER)
        interval = probe.getsockopt(zmq.RECONNECT_IVL)
        probe.close()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            assert isinstance(km.provisioner.process, forkserver.ForkedProcess) is fork
            await km.provisioner.kill()
            return km.provisioner.process.poll(), interval
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    returncode, interval = asyncio.run(run())
    assert returncode is not None, "kill returned while the kernel was still running"
    assert interval == 10


# A stand-in fork server that answers its first request late: each "kernel" is a
# `sleep` in a session of its own, so the test can tell which reply went where.
LATE_SERVER = """
import json, subprocess, sys, time
print(json.dumps({"ready": True, "threads": 1}), flush=True)
for n, line in enumerate(sys.stdin):
    request = json.loads(line)
    kernel = subprocess.Popen(["sleep", str(9411 + n)], start_new_session=True)
    if n == 0:
        time.sleep(1.5)
    print(json.dumps({"id": request["id"], "pid": kernel.pid}), flush=True)
"""


def test_a_late_reply_never_answers_the_next_request(tmp_path):
    from tests.helpers import sleeping

    script = tmp_path / "late_server.py"
    script.write_text(LATE_SERVER)
    server = forkserver.ForkServer(
        threads=1, preload=(), env_for=lambda **_: dict(os.environ), reply_timeout=0.5,
        command=[sys.executable, str(script)])
    server.start()
    try:
        request = {"argv": [], "env": {}, "cwd": str(tmp_path), "log": str(tmp_path / "log")}
        with pytest.raises(forkserver.ForkServerError, match="no answer in time"):
            server.spawn(**request)
        time.sleep(1.2)  # the late reply is in the pipe now
        second = server.spawn(**request)
        cmdline = Path(f"/proc/{second.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[:2] == [b"sleep", b"9412"], cmdline
        deadline = time.monotonic() + 5
        while sleeping("9411") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleeping("9411") == [], "the kernel of the late reply was not ended"
        second.kill()
    finally:
        server.close()


@needs_fork
def test_an_import_the_fork_server_could_not_make_is_a_warning(tmp_path, grading):
    other = _with(grading, prewarm_imports=["numpy", "no_such_module_4e2f"])
    report = _graded(tmp_path, other, "missing_import")
    assert code_score(report) == 150  # the notebook never imports it: nothing else changes
    warning = next(w for w in report.execution.warnings if "could not import" in w)
    assert "no_such_module_4e2f: ModuleNotFoundError: No module named 'no_such_module_4e2f'" in warning
