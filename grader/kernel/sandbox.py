"""Put the calling process in a sandbox of its own: Linux namespaces, unprivileged.

Runs in a kernel's process before any student code: in the fork server's child (forked
kernels) or as a launcher that then execs the kernel (``python -m grader.kernel.sandbox
POLICY -- ARGV``, cold kernels). Standard library only (``ctypes`` for the syscalls).

What the sandbox is (the policy is JSON, made on the host by ``grader.sandbox``):

- a user namespace: the process keeps the grader's uid inside, or ``nobody`` when the
  grader runs as root, and ends with no capabilities and ``no_new_privs``;
- a mount namespace whose root is an empty tmpfs holding only read-only binds of the
  system and the Python environment (``policy["ro"]``), the submission's own workspace
  read-write, a fresh ``/proc``, a minimal ``/dev``, and empty tmpfs ``/tmp`` and
  ``/dev/shm``. Everything else (other submissions, the output folder, the assignment's
  solution, the rubric, the instructor's home) is absent, not just unreadable;
- a network namespace with nothing in it: no route anywhere, the host's 127.0.0.1
  included. The kernel talks to the grader over ZeroMQ's ipc transport (unix sockets in
  the workspace), which needs no network;
- a PID namespace: the kernel sees only its own processes and can signal or ptrace
  nothing outside. Small parents stay behind (one of them the namespace's PID 1, which
  reaps orphans) and exit with it;
- IPC and UTS namespaces, and limits on processes, open files and file size.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import select
import signal
import socket
import sys

CLONE_NEWNS, CLONE_NEWCGROUP = 0x00020000, 0x02000000
CLONE_NEWUTS, CLONE_NEWIPC = 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}
NOBODY = 65534
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc (no ldconfig run)


class SandboxError(OSError):
    """A step of the set-up failed; the message names it."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SandboxError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source or fstype} on {target}")


def _locked_flags(path: str) -> int:
    """The flags a bind of ``path`` must keep when remounted read-only: a user namespace
    may not clear nosuid/nodev/noexec/atime flags the original mount has."""
    f = os.statvfs(path).f_flag
    pairs = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
             (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
             (os.ST_RELATIME, MS_RELATIME))
    return sum(ms for st, ms in pairs if f & st)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _bind(source: str, root: str, *, writable: bool, recursive: bool = True) -> None:
    """Bind ``source`` at the same path under ``root`` (a symlink is recreated)."""
    target = root + source
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(source):
        if not os.path.lexists(target):
            os.symlink(os.readlink(source), target)
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        open(target, "wb").close()
    _mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if not writable:
        _read_only(target)


def _read_only(point: str) -> None:
    _mount(None, point, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _locked_flags(point))


def _submounts(targets: list[str]) -> list[str]:
    """Mount points below any of ``targets`` (/proc/self/mountinfo, octal escapes undone):
    a remount is one mount only, and a recursive bind brings the mounts below along."""
    prefixes = tuple(t.rstrip("/") + "/" for t in targets)
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        points = [line.split()[4].encode().decode("unicode_escape") for line in fh]
    return [p for p in points if p.startswith(prefixes)]


def _build_root(policy: dict, root: str) -> None:
    _mount("none", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    # the empty /tmp first: a Python environment (or the workspace) may live under /tmp
    # small: tmpfs memory is in no process's RSS, so the memory watchdog does not see it
    # (TMPDIR is the workspace's tmp folder, on disk)
    for sub, size in (("tmp", "64m"), ("dev/shm", "256m")):
        os.makedirs(f"{root}/{sub}", exist_ok=True)
        _mount("none", f"{root}/{sub}", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}")
    bound = [path for path in policy["ro"] if os.path.lexists(path)]
    for path in bound:
        _bind(path, root, writable=False)
    for point in _submounts([root + p for p in bound if not os.path.islink(p)]):
        _read_only(point)  # read-only all the way down
    for path in policy.get("hide", []):  # inside a bound folder, but not the kernel's to see
        if os.path.isdir(root + path):
            _mount("none", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind(f"/dev/{name}", root, writable=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    # not recursive: the new root, mounted inside the workspace, is not in it
    _bind(policy["workspace"], root, writable=True, recursive=False)
    os.makedirs(f"{root}/proc", exist_ok=True)
    os.makedirs(f"{root}/.old", exist_ok=True)


def _pivot(root: str) -> None:
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SandboxError(0, f"pivot_root: no syscall number known for {platform.machine()}")
    os.chdir(root)
    _check(_libc.syscall(number, b".", b".old"), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount the old root")
    os.rmdir("/.old")
    # the root itself read-only: nothing can be added beside the binds
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def _limits(limits: dict) -> None:
    for name, key in (("RLIMIT_NPROC", "processes"), ("RLIMIT_NOFILE", "open_files"),
                      ("RLIMIT_FSIZE", "file_bytes")):
        value = limits.get(key)
        if value:
            soft, hard = resource.getrlimit(getattr(resource, name))
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(getattr(resource, name), (cap, cap))


def enter(policy: dict, *, watch_parent: bool = False) -> None:
    """Enter the sandbox. Returns in the sandboxed process (PID 2 of its namespace). The
    caller's process and two helpers stay behind as its parents, wait, and exit with its
    exit status (they never return). If a namespace cannot be made, the process that
    tried says why on stderr (the kernel's log) and exits with 70: the kernel never
    starts, and the report says it did not.

    Four processes, because of who may do what: the user namespace is made by a child
    (C) while the caller (M) keeps the host's rights, so that a grader running as root
    can map ``nobody`` into it (only a process outside may map ids other than its own);
    the PID namespace must belong to that user namespace, so C makes it and forks its
    PID 1 (G), which builds the root, mounts a /proc of its own, and forks the kernel:
    PID 1 would ignore the signals a notebook sends itself."""
    uid, gid = os.getuid(), os.getgid()
    workspace = policy["workspace"]
    root = os.path.join(workspace, ".root")  # an empty folder, removed with the workspace
    os.makedirs(root, exist_ok=True)
    if uid == 0:  # the kernel will run as nobody: the workspace must be nobody's
        for folder, dirs, files in os.walk(workspace):
            for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(name, NOBODY, NOBODY)
    unshared_r, unshared_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    child = os.fork()
    if child:  # M
        os.close(unshared_w)
        os.close(mapped_r)
        ok = os.read(unshared_r, 1) == b"1"
        if ok and uid == 0:
            _write(f"/proc/{child}/uid_map", f"0 0 1\n{NOBODY} {NOBODY} 1\n")
            _write(f"/proc/{child}/gid_map", f"0 0 1\n{NOBODY} {NOBODY} 1\n")
        os.write(mapped_w, b"1")
        os.close(unshared_r)
        os.close(mapped_w)
        _wait_and_exit(child, watch_parent=watch_parent)  # if C failed, it said why on stderr
    os.close(unshared_r)
    os.close(mapped_w)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "parent-death signal")
    try:  # C
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
                             | CLONE_NEWCGROUP),
               "unshare (user, network, IPC, UTS and cgroup namespaces)")
    except SandboxError as exc:
        os.write(unshared_w, b"0")
        print(f"grader sandbox: {exc}", file=sys.stderr, flush=True)
        os._exit(70)
    os.write(unshared_w, b"1")
    os.read(mapped_r, 1)
    os.close(unshared_w)
    os.close(mapped_r)
    if uid != 0:  # ours to map: the same ids inside
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    _check(_libc.unshare(CLONE_NEWPID | CLONE_NEWNS), "unshare (PID and mount namespaces)")
    init = os.fork()  # the first process after unshare(CLONE_NEWPID) is the namespace's 1
    if init:
        _wait_and_exit(init)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "parent-death signal")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing of ours propagates to the host
    _build_root(policy, root)
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _pivot(root)
    socket.sethostname("sandbox")
    if uid == 0:  # leaving the namespace's root clears every capability
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        # a change of ids makes a process undumpable: its own /proc/self/* would be root's
        _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")
    _limits(policy.get("limits", {}))
    _drop_capabilities()
    kernel = os.fork()  # PID 2: PID 1 ignores signals it has no handler for, even its own
    if kernel:
        _init(kernel)


def _init(kernel: int) -> None:
    """PID 1 of the namespace: reaps whatever is orphaned there, exits with the kernel
    (and so ends everything left in the namespace)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(0)
        if pid == kernel:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def _wait_and_exit(child: int, *, watch_parent: bool = False) -> None:
    """A parent outside the PID namespace: the kernel's exit is its own. With
    ``watch_parent`` (the launcher of a cold kernel, whose parent is the grader), a
    grader that is gone takes the kernel with it (ipykernel's own parent watch is off)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # the group's signals are the kernel's
    parent, status = os.getppid(), 0
    exited = os.pidfd_open(child) if watch_parent else None  # readable once the child ends
    while True:
        if exited is not None:
            select.select([exited], [], [], 1.0)
        try:
            pid, status = os.waitpid(child, os.WNOHANG if watch_parent else 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        if pid:
            break
        if os.getppid() != parent:  # reparented: the grader died
            os.kill(child, signal.SIGKILL)
            os._exit(137)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def main(argv: list[str]) -> None:
    """``python -m grader.kernel.sandbox POLICY_JSON -- PROGRAM ARGS...``: enter, then exec."""
    if "--" not in argv[1:]:
        raise SystemExit("usage: python -m grader.kernel.sandbox POLICY_JSON -- PROGRAM [ARGS...]")
    split = argv.index("--")
    policy, program = json.loads(argv[1]), argv[split + 1:]
    try:
        enter(policy, watch_parent=True)
    except OSError as exc:
        print(f"grader sandbox: {exc}", file=sys.stderr)
        os._exit(70)
    if policy.get("cwd"):
        os.chdir(policy["cwd"])
    # ipykernel's parent poller takes a parent pid of 1 for "the parent has exited"; here
    # PID 1 is the namespace's init, and the grader is out of sight anyway
    os.environ.pop("JPY_PARENT_PID", None)
    os.execv(program[0], program)


if __name__ == "__main__":
    main(sys.argv)
