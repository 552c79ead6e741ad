"""The OS sandbox: one hostile notebook per escape, graded with ``--sandbox require``.

Each notebook trains the correct model, then tries one escape in a cell that asserts
the escape failed: a failed assert would be a cell error, so every escape is checked
twice, inside (no cell error) and outside (nothing beside the workspace changed, the
grade of the model is the full 150). Run as root here and, by
``test_the_escapes_fail_for_an_unprivileged_user``, as an ordinary user as well.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from grader.api import grade, with_sandbox
from grader.cli import main
from grader.sandbox import MECHANISM, trial
from tests.fixtures.notebooks import HEAD, Fixture, code_score, net, train

pytestmark = pytest.mark.kernel
CANARY = "canary-sandbox-7d41"
ROOT = Path(__file__).resolve().parent.parent
USER = os.environ.get("GRADER_TEST_USER", "grader-ci")
USER_PYTHON = os.environ.get("GRADER_TEST_USER_PYTHON", f"/home/{USER}/venv/bin/python")


def escapes(*, sibling: Path, rubric: Path, solution: Path, home_file: Path, out: Path,
            port: int, tmp_name: str) -> dict[str, str]:
    """name -> the cell that tries the escape and asserts that it failed."""
    me = os.getpid()  # the grader's pid: grading runs in this process
    return {
        "sibling": f"import os\nassert not os.path.exists({str(sibling)!r})\n"
                   f"assert not os.path.exists({str(sibling.parent.parent)!r})",
        "rubric_solution": f"import os\nfor p in ({str(rubric)!r}, {str(solution)!r}):\n"
                           "    assert not os.path.exists(p), p",
        "home": f"import os\nassert not os.path.exists({str(home_file)!r})\n"
                f"assert not os.path.exists({str(home_file.parent)!r})",
        "environ": "import os\nfor pid in (os.getppid(), 1, " + str(me) + "):\n"
                   "    try:\n        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
                   "    except OSError:\n        continue\n"
                   f"    assert b{CANARY!r} not in data, pid",
        "processes": "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
                     f"assert {str(me)!r} not in pids and len(pids) <= 4, pids\n"
                     "for p in pids:\n    cmd = open(f'/proc/{p}/cmdline', 'rb').read()\n"
                     "    assert b'pytest' not in cmd, cmd",
        "network": "import socket\ntry:\n"
                   f"    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
                   "    reached = True\nexcept OSError:\n    reached = False\nassert not reached",
        "write_outside": f"import os\ntry:\n    open({str(out / 'pwned.json')!r}, 'w').write('{{}}')\n"
                         "    wrote = True\nexcept OSError:\n    wrote = False\nassert not wrote\n"
                         f"open('/tmp/{tmp_name}', 'w').write('private /tmp: fine')",
        "kill_grader": "import os, signal\ntry:\n"
                       f"    os.kill({me}, signal.SIGTERM)\n    killed = True\n"
                       "except ProcessLookupError:\n    killed = False\nassert not killed",
        "fork_bomb": "import os, time\nchildren = []\ntry:\n    for _ in range(5000):\n"
                     "        pid = os.fork()\n        if pid == 0:\n            time.sleep(60)\n"
                     "            os._exit(0)\n        children.append(pid)\n"
                     "except BlockingIOError:\n    stopped = True\nelse:\n    stopped = False\n"
                     "for pid in children:\n    os.kill(pid, 9)\n    os.waitpid(pid, 0)\n"
                     "assert stopped and len(children) < 300, len(children)",
        "ptrace": "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                  f"assert libc.ptrace(16, {me}, None, None) == -1\n"  # PTRACE_ATTACH
                  "assert ctypes.get_errno() in (1, 3), ctypes.get_errno()",  # EPERM or ESRCH
    }


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class _Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.fixture()
def sandbox_required(grading):
    if trial() is not None:
        pytest.fail(f"no sandbox on this machine: {trial()}")
    return with_sandbox(grading, "require")


def test_every_escape_fails_and_the_model_keeps_its_grade(tmp_path, sandbox_required, monkeypatch):
    monkeypatch.setenv("GRADER_CANARY", CANARY)
    home = tmp_path / "instructor-home"
    home.mkdir()
    (home / "notes.txt").write_text("grades draft")
    monkeypatch.setenv("HOME", str(home))
    subs, out = tmp_path / "subs", tmp_path / "out"
    (subs / "zz_sibling").mkdir(parents=True)
    (subs / "zz_sibling" / "secret.txt").write_text("another student's work")
    listener = _Listener()
    tmp_name = f"pwned-{os.getpid()}"
    cells = escapes(sibling=subs / "zz_sibling" / "secret.txt",
                    rubric=sandbox_required.assignment.rubric_path,
                    solution=sandbox_required.assignment.path(sandbox_required.assignment.spec.solution),
                    home_file=home / "notes.txt", out=out, port=listener.port, tmp_name=tmp_name)
    paths = [Fixture(name, [HEAD, net(), train(), cell]).write(subs) for name, cell in cells.items()]
    before = {"subs": _digest(subs), "home": _digest(home), "assignment": _digest(ROOT / "assignments")}

    reports = grade(paths=paths, grading=sandbox_required, out_dir=out, jobs=2)

    for name in cells:
        rep = reports[name]
        assert rep.execution.isolation == MECHANISM, name
        assert rep.execution.cell_errors == [], (name, rep.execution.cell_errors)
        assert code_score(rep) == 150, (name, [(c.id, c.message) for c in rep.checks])
    assert listener.accepted == 0
    assert not Path("/tmp", tmp_name).exists() and not (out / "pwned.json").exists()
    assert {"subs": _digest(subs), "home": _digest(home),
            "assignment": _digest(ROOT / "assignments")} == before
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".json") == sorted(
        [f"{n}.json" for n in cells] + ["duplicates.json"])


def test_require_refuses_where_no_sandbox_can_be_made(tmp_path, monkeypatch, capsys):
    import grader.sandbox

    monkeypatch.setattr(grader.sandbox, "trial", lambda: "unshare: Operation not permitted")
    nb = Fixture("plain", [HEAD, net(), train(epochs=5)]).write(tmp_path)
    assert main(["grade", str(nb), "-a", "01-very-basics", "-o", str(tmp_path / "out"),
                 "--sandbox", "require"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--sandbox require: no sandbox can be made on this machine (unshare: Operation not permitted)" in err
    assert "unprivileged_userns_clone" in err and not (tmp_path / "out").exists()
    # auto grades anyway, and says so in the report and on the terminal
    assert main(["grade", str(nb), "-a", "01-very-basics", "-o", str(tmp_path / "auto")]) == 0
    report = (tmp_path / "auto" / "plain.json").read_text()
    assert '"isolation": "none: unshare: Operation not permitted"' in report
    assert "no sandbox on this machine" in capsys.readouterr().err


def test_off_says_so_in_every_report(tmp_path, grading):
    nb = Fixture("plain_off", [HEAD, net(), train(epochs=5)]).write(tmp_path)
    rep = grade(paths=[nb], grading=with_sandbox(grading, "off"))["plain_off"]
    assert rep.execution.isolation == "none: turned off (sandbox = off)"
    assert "no sandbox (turned off): student code runs with the grader's rights" in rep.execution.warnings


def _user_can_run() -> str | None:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"no user {USER!r}"
    if not os.access(USER_PYTHON, os.X_OK):
        return f"no Python for {USER} at {USER_PYTHON}"
    return None


@pytest.mark.skipif(os.getuid() != 0, reason="already running as an unprivileged user: the tests above are that run")
def test_the_escapes_fail_for_an_unprivileged_user():
    """As root, namespaces behave differently; run the escapes again as an ordinary user
    (made by `make sandbox-user`, which CI runs), from that user's own environment."""
    why = _user_can_run()
    if why is not None:
        pytest.skip(f"{why}: run `make sandbox-user` (CI does) to test as an unprivileged user")
    env = {"PATH": "/usr/bin:/bin", "HOME": f"/home/{USER}", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}
    cmd = [USER_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
           str(ROOT / "tests" / "test_sandbox.py"), "-k", "not unprivileged"]
    done = subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--", *cmd],
                          cwd="/tmp", env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 passed" in done.stdout, done.stdout[-2000:]


def test_bundled_assignments_in_a_bound_folder_are_hidden(tmp_path):
    """A non-editable install keeps assignments (solutions too) under <prefix>/share:
    not bound for a venv, and covered over where a system folder is bound whole."""
    import json as _json

    from grader.sandbox import launcher, policy
    from grader.spec import Execution

    if os.getuid() != 0:
        pytest.skip("needs root to put a folder under /usr/local/share; the venv case runs below")
    bundled = Path("/usr/local/share/nbtorch-grader")
    made = not bundled.exists()
    (bundled / "assignments").mkdir(parents=True, exist_ok=True)
    (bundled / "assignments" / "solution.ipynb").write_text("{}")
    try:
        inside = ("import os, sys, json; print(json.dumps([os.listdir('/usr/local/share/nbtorch-grader'), "
                  "os.path.exists(os.path.join(sys.prefix, 'share'))]))")
        pol = policy(workspace=tmp_path, budget=Execution())
        done = subprocess.run([*launcher(pol, str(tmp_path)), sys.executable, "-c", inside],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        listing, venv_share = _json.loads(done.stdout)
        assert listing == [] and venv_share is False
    finally:
        if made:
            import shutil

            shutil.rmtree(bundled)
