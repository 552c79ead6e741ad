#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (its Ubuntu
# base images: 20.04 has Python 3.8, 22.04 has 3.10, python3-venv is not always there).
# The grader needs Python >= 3.11 with venv, so this finds or makes one:
#   1. the image's own python3.11+ that can make a venv, if it has one;
#   2. else one that uv installs (uv's wheel from PyPI; its Pythons are the
#      python-build-standalone builds, downloaded from GitHub);
#   3. else CPython built from source ($GRADER_PYTHON_SOURCE, default python.org's).
# Then CPU torch and the grader into $AUTOGRADER_ROOT/venv. Any failure stops the build
# with a line "grader setup failed: ..." in the build log.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
VENV="$ROOT/venv"
TOOLS="$ROOT/grader-tools"
PYTHON_SOURCE="${GRADER_PYTHON_SOURCE:-https://www.python.org/ftp/python/3.11.11/Python-3.11.11.tgz}"
TORCH="${GRADER_TORCH:-torch}"
# CPU wheels: a plain `pip install torch` on Linux is a multi-GB CUDA build. An empty
# GRADER_TORCH_INDEX uses pip's own configuration instead (a mirror, a wheel folder).
TORCH_INDEX="${GRADER_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
INDEX="${PIP_INDEX_URL:-https://pypi.org/simple}"

say() { echo "grader setup: $*" >&2; }  # stderr: functions answer paths on stdout
fail() { echo "grader setup failed: $*" >&2; exit 1; }
trap 'fail "line $LINENO: \`$BASH_COMMAND\` exited with status $?"' ERR

suitable() {  # a Python >= 3.11 that can make a venv with pip in it
  "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

apt_install() {
  command -v apt-get >/dev/null || fail "no apt-get to install $* with; use an Ubuntu base image"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" > /dev/null
}

find_python() {
  local candidate path
  for candidate in python3.13 python3.12 python3.11 python3; do
    path="$(command -v "$candidate" || true)"
    if [ -n "$path" ] && suitable "$path"; then echo "$path"; return 0; fi
  done
  return 1
}

uv_python() {  # uv from PyPI (no pip needed: the image's python3 fetches the wheel), then its Python
  local any
  any="$(command -v python3 || true)"
  [ -n "$any" ] || { say "no python3 at all to fetch uv with"; return 1; }
  mkdir -p "$TOOLS/uv"
  "$any" - "$INDEX" "$TOOLS/uv" <<'PY' || return 1
import hashlib, json, platform, sys, urllib.request, zipfile
index, dest = sys.argv[1].rstrip("/"), sys.argv[2]
request = urllib.request.Request(f"{index}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
files = json.load(urllib.request.urlopen(request, timeout=60))["files"]
arch = platform.machine()
wheels = [f for f in files if f["filename"].endswith(f"manylinux_2_17_{arch}.manylinux2014_{arch}.whl")
          and not f.get("yanked")]
if not wheels:
    sys.exit(f"no uv wheel for {arch} on {index}")
wheel = wheels[-1]
data = urllib.request.urlopen(wheel["url"], timeout=300).read()
if hashlib.sha256(data).hexdigest() != wheel["hashes"]["sha256"]:
    sys.exit(f"{wheel['filename']}: sha256 does not match the index")
path = f"{dest}/uv.whl"
open(path, "wb").write(data)
member = next(n for n in zipfile.ZipFile(path).namelist() if n.endswith(".data/scripts/uv"))
with zipfile.ZipFile(path) as zf, open(f"{dest}/uv", "wb") as out:
    out.write(zf.read(member))
print(f"grader setup: uv from {wheel['filename']}", file=sys.stderr)
PY
  chmod +x "$TOOLS/uv/uv"
  export UV_PYTHON_INSTALL_DIR="$TOOLS/python"
  "$TOOLS/uv/uv" python install 3.11 >&2 || return 1
  "$TOOLS/uv/uv" python find 3.11 --managed-python --no-python-downloads
}

source_python() {  # CPython from source: slow (minutes), needs only the distribution's compiler
  say "building CPython from $PYTHON_SOURCE (a few minutes)"
  apt_install ca-certificates curl gcc make libc6-dev libssl-dev zlib1g-dev libffi-dev \
    libbz2-dev libsqlite3-dev liblzma-dev
  rm -rf "$TOOLS/cpython" && mkdir -p "$TOOLS/cpython"
  curl -fsSL --retry 2 "$PYTHON_SOURCE" | tar xz -C "$TOOLS/cpython" --strip-components 1
  (cd "$TOOLS/cpython" && ./configure --prefix="$TOOLS/python-src" > configure.log 2>&1 \
    && make -j "$(nproc)" > make.log 2>&1 && make install > install.log 2>&1) \
    || fail "building CPython failed: see $TOOLS/cpython/*.log"
  echo "$TOOLS/python-src/bin/python3"
}

cd "$SRC"
if PY="$(find_python)"; then
  say "using the image's $("$PY" --version) at $PY"
elif PY="$(uv_python)" && suitable "$PY"; then
  say "using $("$PY" --version) installed by uv at $PY"
else
  say "no Python >= 3.11 on the image and none from uv"
  PY="$(source_python | tail -1)"
  suitable "$PY" || fail "the CPython built from $PYTHON_SOURCE cannot make a venv"
  say "using $("$PY" --version) built at $PY"
fi

"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if [ -n "$TORCH_INDEX" ]; then
  "$VENV/bin/pip" install -q "$TORCH" --index-url "$TORCH_INDEX"
else
  "$VENV/bin/pip" install -q "$TORCH"
fi
# torch first, alone: nothing later may resolve another (CUDA) build
"$VENV/bin/pip" install -q "./grader-src[notebooks]"
"$VENV/bin/grader" --version
say "ready: $("$VENV/bin/python" --version), torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
