"""A stand-in for an old Gradescope base image, for tests/test_gradescope_setup.py.

Gradescope builds autograders on its Ubuntu images (20.04: Python 3.8; 22.04: 3.10;
python3-venv not always installed). The stand-in is older still: Debian 11 (bullseye,
Python 3.9, no venv or pip), made with debootstrap from Debian's packages, entered with
chroot in a mount namespace of its own. The base tree is made once and kept as a
tarball under ``GRADER_IMAGE_CACHE`` (default ~/.cache/nbtorch-grader); each test
unpacks a fresh copy.

Inside, pip sees what it sees on this machine (its configuration and local wheel
folders are bound read-only), so torch comes from the same CPU wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

SUITE = "bullseye"
MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("GRADER_IMAGE_CACHE", Path.home() / ".cache" / "nbtorch-grader"))
# what pip reads on this machine (its configuration, local wheel folders, and the CA
# bundle that the machine's way out to the package index is trusted with): bound into
# the image at the same paths, read-only
PIP_PATHS = ["/etc/pip.conf", "/etc/xdg/pip", "/opt/wheels", "/opt/pypi", "/opt/pypi-more",
             "/etc/ssl/certs/ca-certificates.crt"]


def why_not() -> str | None:
    """Why the stand-in cannot be made here, or None."""
    if os.geteuid() != 0:
        return "the old-image test needs root (debootstrap, chroot); CI runs as root"
    if not shutil.which("debootstrap"):
        return "no debootstrap: `make image-tools` installs it (Debian's debootstrap)"
    return None


def base_tarball() -> Path:
    """The bullseye tree with python3 (3.9) and nothing else, made once."""
    target = CACHE / f"{SUITE}-python3.tar"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    tree = CACHE / f"{SUITE}-tree"
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(tree), MIRROR], check=True,
                   capture_output=True, timeout=1200)
    shutil.copyfile("/etc/resolv.conf", tree / "etc" / "resolv.conf")
    inside(tree, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                 "--no-install-recommends python3 ca-certificates > /dev/null && apt-get clean",
           timeout=1200)
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        tar.add(tree, arcname=".")
    partial.replace(target)
    shutil.rmtree(tree, ignore_errors=True)
    return target


def fresh_image(where: Path) -> Path:
    where.mkdir(parents=True)
    with tarfile.open(base_tarball()) as tar:
        tar.extractall(where, filter="fully_trusted")
    return where


def inside(root: Path, script: str, *, env: dict[str, str] | None = None,
           timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``script`` with bash in the image, as root, in a mount namespace of its own
    (its mounts vanish with it); output captured."""
    binds = [p for p in PIP_PATHS if os.path.exists(p)]
    mounts = ["mount --make-rprivate /", f"mount -t proc proc {root}/proc",
              f"mount --rbind /dev {root}/dev"]
    for path in binds:
        target = root / path.lstrip("/")
        if os.path.isdir(path):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        mounts += [f"mount --bind {path} {target}", f"mount -o remount,bind,ro {target}"]
    variables = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "HOME": "/root", "LANG": "C.UTF-8",
                 **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}, **(env or {})}
    assignments = " ".join(f"{k}={_quote(v)}" for k, v in variables.items())
    command = " && ".join(mounts) + f" && exec chroot {root} /usr/bin/env -i {assignments} " \
        f"/bin/bash -c {_quote(script)}"
    return subprocess.run(["unshare", "--mount", "--fork", "/bin/sh", "-c", command],
                          capture_output=True, text=True, timeout=timeout)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
