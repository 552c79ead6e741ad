# Two entry points that work on a fresh machine:
#   make examples   set up .venv, then grade the bundled example submissions into reports/
#   make test       set up .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
# PyTorch's CPU wheels: a plain `pip install torch` on Linux is a multi-GB CUDA build.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup examples test validate corpus bench clean sandbox-user browser image-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, alone, so that nothing later resolves another (CUDA) build
	$(BIN)/pip install --retries 1 --extra-index-url $(TORCH_INDEX) torch==$(TORCH_VERSION)
	$(BIN)/pip install -e '.[notebooks,test]'
	touch $(STAMP)

setup: $(STAMP)

# Exit 1 means "some submission could not be graded": examples/dave is broken on
# purpose (its report says why), so that is the expected outcome here, not a failure.
examples: setup
	$(BIN)/grader grade examples/* --assignment 01-very-basics --out reports --jobs 2 --format html \
	  || { test $$? -eq 1 && echo "(examples/dave is broken on purpose: see reports/dave.json)"; }
	@echo "feedback pages: reports/<name>.html; the class dashboard: reports/index.html"

test: setup
	$(BIN)/python -m pytest -q

validate: setup
	$(BIN)/grader validate 01-very-basics

corpus: setup  # code checks vs the labels, then written answers vs a TA's points
	$(BIN)/python benchmarks/corpus_agreement.py --corpus ../shared/corpus
	$(BIN)/python benchmarks/readme_agreement.py --corpus ../shared/corpus

bench: setup  # speed of one notebook and of batches of 32 (~15 min on 2 cores)
	$(BIN)/python benchmarks/speed.py --n 32 --runs 5 --batch-runs 3

# As root: an unprivileged user with a Python environment of its own (the repository's
# code on PYTHONPATH), so that tests/test_sandbox.py also runs the escapes as that user.
# .ci/run does this before `make test`; elsewhere that test says how to get it.
SANDBOX_USER ?= grader-ci
SANDBOX_PYTHON ?= /usr/bin/python3
SANDBOX_VENV := /home/$(SANDBOX_USER)/venv
sandbox-user: setup
	id -u $(SANDBOX_USER) >/dev/null 2>&1 || useradd --create-home --shell /bin/sh $(SANDBOX_USER)
	$(BIN)/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	  x = p['optional-dependencies']; print('\n'.join(p['dependencies'] + x['notebooks'] + x['test']))" \
	  > /tmp/grader-sandbox-requirements.txt
	cmp -s /tmp/grader-sandbox-requirements.txt $(SANDBOX_VENV)/.installed || { \
	  runuser -u $(SANDBOX_USER) -- $(SANDBOX_PYTHON) -m venv $(SANDBOX_VENV) && \
	  runuser -u $(SANDBOX_USER) -- env $$(env | grep '^PIP_' | xargs) $(SANDBOX_VENV)/bin/pip install -q \
	    --retries 1 --extra-index-url $(TORCH_INDEX) torch==$(TORCH_VERSION) && \
	  runuser -u $(SANDBOX_USER) -- env $$(env | grep '^PIP_' | xargs) $(SANDBOX_VENV)/bin/pip install -q \
	    -r /tmp/grader-sandbox-requirements.txt && \
	  cp /tmp/grader-sandbox-requirements.txt $(SANDBOX_VENV)/.installed; }

# The browser of tests/test_html.py: Debian's chromium (Playwright drives it; its own
# browser download is not used). Needs root, or sudo.
browser:
	command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	chromium --version

# debootstrap, for tests/test_gradescope_setup.py's stand-in of an old Gradescope image
# (Debian 11 made from Debian's packages). Needs root, or sudo.
image-tools:
	command -v debootstrap >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq debootstrap; }

clean:
	rm -rf $(VENV) reports benchmarks/results
