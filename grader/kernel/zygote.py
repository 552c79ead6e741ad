"""The kernel fork server ("zygote"): imports torch once, then forks one kernel per request.

Runs as its own process, started by ``grader.forkserver`` with an allow-listed
environment (no secrets, thread counts fixed) and in a session of its own. It never
runs student code: it imports ipykernel, torch and the assignment's preload modules,
builds one throwaway optimizer (torch pulls in ~800 modules the first time), and then
waits. Each request forks a child that becomes a fresh ipykernel in the submission's
workspace, so every kernel starts with torch already imported, and a kernel never
serves two submissions.

Protocol, JSON lines on stdin/stdout (never pickle):
  argv[1]    {"preload": ["numpy", ...]}
  ready   -> {"ready": true, "seconds": 2.4, "threads": 1}
  request <- {"id": 7, "argv": ["-f", "kernel.json"], "env": {...}, "cwd": "...", "log": "..."}
  reply   -> {"id": 7, "pid": 12345}  or  {"id": 7, "error": "..."}
Each reply carries its request's id, so a reply that comes after the host gave up
waiting cannot be taken for the answer to the next request.
EOF on stdin ends the server. The grader ends each kernel when its submission is done;
whatever is still running at EOF (the grader itself was killed) is ended here.

Forking is only safe while this process has one thread (an OpenMP or BLAS pool would
not survive it), so that is checked before every fork.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
import time
import traceback

# What every kernel imports while it starts (ipykernel's shell and its debugger support:
# ~0.3 s a kernel otherwise). None of them starts a thread.
_KERNEL_MODULES = [
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
    "IPython.core.debugger", "IPython.core.completerlib", "IPython.core.oinspect",
    "IPython.extensions.storemagic", "sqlite3", "psutil", "tornado.queues",
    "tornado.platform.asyncio", "grader.kernel.sandbox",
]


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: the host does not start a fork server there
        return 1


def preload(names: list[str]) -> list[str]:
    """Pay what a torch notebook's first cells pay: the kernel's and the listed imports,
    and the first optimizer (~800 modules). Also run in a cold pre-warmed kernel.
    Returns what failed ("matplotlib: ModuleNotFoundError: ..."): the kernel will raise
    the same error where the student imports it, and the report says so beforehand."""
    failed = []
    for name in [*_KERNEL_MODULES, "torch", *names]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    try:
        import torch

        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    except Exception as exc:
        failed.append(f"torch.optim.SGD: {type(exc).__name__}: {exc}")
    return failed


def _become_kernel(request: dict) -> None:
    """In the child: detach from the server, take the workspace's place, run ipykernel."""
    os.setsid()  # its own process group: the grader's guard watches and ends the group
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # the server's protocol pipes are gone from the kernel
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in {int(name) for name in os.listdir("/proc/self/fd")} - {0, 1, 2}:
        try:
            os.close(fd)
        except OSError:
            pass
    if request.get("sandbox"):  # before any student code, and before the kernel opens a socket
        from grader.kernel.sandbox import enter

        enter(request["sandbox"])  # returns in the sandboxed process only
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    import tempfile

    tempfile.tempdir = None  # TMPDIR is the workspace's now
    for getter in ("get_configdir", "get_cachedir"):  # matplotlib caches these paths
        fn = getattr(sys.modules.get("matplotlib"), getter, None)
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()
    del sys.path[0]  # the server's folder; IPython puts the working folder back
    from ipykernel import kernelapp

    sys.argv = [kernelapp.__file__, *request["argv"]]
    kernelapp.IPKernelApp.launch_instance(argv=request["argv"])


_children: dict[int, int] = {}  # pid -> pidfd, for the kernels still to end at EOF


def _fork(request: dict) -> dict:
    if _threads() != 1:
        return {"error": f"the fork server has {_threads()} threads; forking is not safe"}
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _become_kernel(request)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)  # never return into the server's loop
    try:
        _children[pid] = os.pidfd_open(pid)
    except OSError:
        pass  # gone already
    return {"pid": pid}


def _end_children() -> None:
    """Kill the process group of every kernel still alive (pidfds: never a stranger)."""
    for pid, fd in _children.items():
        try:
            signal.pidfd_send_signal(fd, 0)  # raises once the kernel is gone
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        os.close(fd)
    _children.clear()


def _forget_ended() -> None:
    for pid, fd in list(_children.items()):
        try:
            signal.pidfd_send_signal(fd, 0)
        except OSError:
            os.close(fd)
            del _children[pid]


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped automatically
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grader's to handle
    started = time.monotonic()
    failed = preload(list(config.get("preload", [])))
    # What was imported stays as it is: keep the collector from touching it, so kernels
    # share those pages with the server instead of copying them on first collection.
    gc.freeze()
    reply = {"ready": True, "seconds": round(time.monotonic() - started, 3), "threads": _threads(),
             "failed": failed}
    os.write(1, (json.dumps(reply) + "\n").encode())
    for line in sys.stdin.buffer:
        _forget_ended()
        rid = None
        try:
            request = json.loads(line)
            rid = request.get("id")
            reply = _fork(request)
        except Exception as exc:  # a bad request is answered, not fatal
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(1, (json.dumps({"id": rid, **reply}) + "\n").encode())
    _end_children()
    os._exit(0)  # nothing to flush or tear down: do not keep the grader waiting


if __name__ == "__main__":
    main()
