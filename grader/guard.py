"""Keep one submission's processes in bounds: memory, leftovers, Ctrl-C.

jupyter_client starts each kernel in a session of its own, so its process group holds
the kernel and every child it forks. A watchdog thread sums the group's resident memory
(and, once that passes the cap, its proportional set size, so that forked children
sharing the kernel's pages are not counted many times) and kills the group above the cap (``RLIMIT_AS`` would break torch, which reserves large
virtual ranges). When the submission ends, the whole group is killed, so no ``sleep``
or forked child outlives it. Every live group is registered, so an interrupted batch can
end them all. (A child that calls ``setsid`` leaves the group; run the grader in a
container when that matters.)
"""

from __future__ import annotations

import os
import signal
import threading

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_live: set[int] = set()
_lock = threading.Lock()


def _read(path: str) -> bytes:
    # os.open/os.read, not pathlib: the watchdog reads every process's stat 4 times a
    # second per kernel, on the cores the kernels need (3-4x cheaper this way).
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _stat_fields(pid: int | str) -> list[bytes]:
    """/proc/pid/stat after the command name: state, ppid, pgrp, ..."""
    stat = _read(f"/proc/{pid}/stat")
    return stat[stat.rindex(b")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """pids whose process group is ``pgid`` (Linux /proc; empty elsewhere)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    members = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            if int(_stat_fields(name)[2]) == pgid:
                members.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return members


def _rss(pid: int) -> int:
    try:
        return int(_read(f"/proc/{pid}/statm").split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0  # ended in between


def _pss(pid: int) -> int:
    try:
        rollup = _read(f"/proc/{pid}/smaps_rollup")
    except OSError:  # ending, or no smaps_rollup (Linux before 4.14): its RSS then
        return _rss(pid)
    for line in rollup.splitlines():
        if line.startswith(b"Pss:"):
            return int(line.split()[1]) * 1024
    return _rss(pid)


def group_rss_bytes(pgid: int) -> int:
    return sum(_rss(pid) for pid in group_members(pgid))


def group_pss_bytes(pgid: int) -> int:
    """The group's proportional set size: a page shared by n processes counts 1/n in
    each. Forked children share the kernel's torch pages, so their resident sizes add
    up to many times the memory really used. ~1 ms a process: read when RSS is high."""
    return sum(_pss(pid) for pid in group_members(pgid))


def kill_group(pgid: int) -> str | None:
    """SIGKILL the group; a reason when that was refused (gone already is fine)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return None
    except OSError as exc:  # PermissionError: a member changed its user id
        return f"could not end the kernel's processes (group {pgid}): {exc.strerror or exc}"
    return None


class GroupGuard:
    """Watch one kernel's process group; ``close()`` kills whatever is left of it."""

    def __init__(self, pgid: int, *, memory_limit_mb: float, interval: float = 0.25):
        self.pgid = pgid
        self.limit = int(memory_limit_mb * 1024 * 1024)
        self.interval = interval
        self.peak_bytes = 0
        self.memory_exceeded = False
        self.warnings: list[str] = []  # shown in the report: what this guard could not do
        if not os.path.isdir("/proc"):
            self.warnings.append("the memory limit is not enforced: this system has no /proc "
                                 "to measure the kernel's memory")
        self._stop = threading.Event()
        with _lock:
            _live.add(pgid)
        self._thread = threading.Thread(target=self._watch, name=f"guard-{pgid}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        # RSS every tick: cheap, and an upper bound. PSS (shared pages counted once: forked
        # children and the sandbox's helper processes share the kernel's) decides the cap,
        # and is the peak reported, sampled once a second.
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            rss = group_rss_bytes(self.pgid)
            if rss > self.limit or tick % 4 == 1:
                used = group_pss_bytes(self.pgid)
                self.peak_bytes = max(self.peak_bytes, used)
                if used > self.limit:
                    self.memory_exceeded = True
                    self._kill()
                    return

    def _kill(self) -> None:
        refused = kill_group(self.pgid)
        if refused and refused not in self.warnings:
            self.warnings.append(refused)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._kill()
        with _lock:
            _live.discard(self.pgid)


def register(pgid: int) -> None:
    """Track a group that no GroupGuard watches yet (a pre-warmed spare kernel)."""
    with _lock:
        _live.add(pgid)


def unregister(pgid: int) -> None:
    with _lock:
        _live.discard(pgid)


def kill_all() -> int:
    """End every live kernel group (an interrupted batch). Returns how many."""
    with _lock:
        groups = list(_live)
        _live.clear()
    for pgid in groups:
        kill_group(pgid)
    return len(groups)
