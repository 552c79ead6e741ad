"""Which OS sandbox the kernels get, decided on the host: ``--sandbox auto|require|off``.

The sandbox itself is entered in the kernel's process (``grader.kernel.sandbox``); here
the grader decides whether it can be used on this machine (a real trial, once per run),
what the kernel may see (the policy: the system and the Python environment read-only,
the submission's workspace read-write), and what each report says about it.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from grader.spec import Execution

MECHANISM = "linux namespaces (user, mount, pid, net, ipc, uts)"
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# Of a Python prefix, what the interpreter needs: not its share/ (where a non-editable
# install keeps the bundled assignments, solutions included) nor anything else there.
PREFIX_PARTS = ("bin", "lib", "lib64", "pyvenv.cfg")
DATA_DIR = ("share", "nbtorch-grader")
NOBODY = 65534


class SandboxUnavailable(Exception):
    """``--sandbox require`` on a machine where no sandbox can be made; the message says
    why and how to enable it."""


@dataclass(frozen=True)
class Isolation:
    """What applied to a kernel: ``mechanism`` is None for none, with the ``reason``."""

    mechanism: str | None
    reason: str = ""
    warning: str | None = None  # said in every report and once on the terminal

    @property
    def on(self) -> bool:
        return self.mechanism is not None

    def describe(self) -> str:
        return self.mechanism if self.on else f"none: {self.reason}"


def _prefixes() -> set[str]:
    return {os.path.realpath(p) for p in
            (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}


def python_paths() -> list[str]:
    """The interpreter and its packages: what a kernel needs to run, and nothing beside."""
    paths = {os.path.join(p, part) for p in _prefixes() for part in PREFIX_PARTS}
    paths |= {os.path.realpath(p) for p in site.getsitepackages()}
    user_site = site.getusersitepackages()
    if user_site and os.path.isdir(user_site):
        paths.add(os.path.realpath(user_site))
    return _outermost(p for p in paths if os.path.lexists(p))


def hidden_paths() -> list[str]:
    """The grader's bundled data (assignments with their solutions, rubrics), where it
    lies inside a bound folder: /usr/share/nbtorch-grader after a system-wide install."""
    found = {os.path.join(p, *DATA_DIR) for p in (*_prefixes(), "/usr", "/usr/local")}
    return sorted(p for p in found if os.path.isdir(p))


def _outermost(paths) -> list[str]:
    """Each path once, without those inside another or inside a system folder."""
    keep: list[str] = []
    for p in sorted(set(paths)):
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in (*SYSTEM, *keep)):
            keep.append(p)
    return keep


def policy(*, workspace: Path, budget: Execution) -> dict:
    """What the kernel of this workspace may see and do (JSON, read in the kernel)."""
    return {
        "workspace": str(workspace),
        "ro": [*SYSTEM, *python_paths()],
        "hide": hidden_paths(),
        "limits": {
            "processes": budget.max_processes,
            "open_files": budget.max_open_files,
            "file_bytes": int(budget.max_file_mb * 2**20),
        },
    }


def launcher(policy_: dict, cwd: str) -> list[str]:
    """The command prefix that runs a program (a cold kernel) inside the sandbox. The
    module runs as a script (standard library only), so it needs no import path."""
    script = Path(__file__).parent / "kernel" / "sandbox.py"
    return [sys.executable, str(script), json.dumps({**policy_, "cwd": cwd}), "--"]


def hand_over(folder: Path) -> None:
    """Files the host adds to a workspace after its kernel started (a pre-warmed kernel
    gets the submission's files then): the kernel runs as nobody when the grader is root."""
    if os.getuid() != 0:
        return
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, NOBODY, NOBODY)


@lru_cache(maxsize=1)
def trial() -> str | None:
    """None if a sandbox can be made here, else why not: the launcher really runs a
    program inside one (~0.1 s, once per grader process)."""
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform}): the sandbox uses Linux namespaces"
    with tempfile.TemporaryDirectory(prefix="grader-trial-") as tmp:
        inside = "import os, socket; assert socket.gethostname() == 'sandbox' and os.getppid() == 1"
        cmd = [*launcher(policy(workspace=Path(tmp), budget=Execution()), tmp),
               sys.executable, "-c", inside]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the trial sandbox did not run: {exc}"
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            return lines[-1] if lines else f"the trial sandbox exited with {done.returncode}"
    return None


HOW_TO_ENABLE = (
    "user namespaces must be allowed for unprivileged users: on Debian/Ubuntu "
    "`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 23.10+ (AppArmor) "
    "`sysctl kernel.apparmor_restrict_unprivileged_userns=0`; in Docker, run the container "
    "with `--security-opt seccomp=unconfined --security-opt apparmor=unconfined` or grade "
    "with --sandbox off inside a container of its own")


def resolve(mode: str) -> Isolation:
    """The isolation a batch gets for ``mode`` (auto | require | off)."""
    if mode == "off":
        return Isolation(None, "turned off (sandbox = off)",
                         warning="no sandbox (turned off): student code runs with the grader's rights")
    why = trial()
    if why is None:
        return Isolation(MECHANISM)
    if mode == "require":
        raise SandboxUnavailable(f"--sandbox require: no sandbox can be made on this machine "
                                 f"({why}); {HOW_TO_ENABLE}")
    return Isolation(None, why, warning=f"no sandbox on this machine ({why}): student code runs "
                                        "with the grader's rights; --sandbox require refuses that")
