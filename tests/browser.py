"""Headless Chromium for the page tests, driven by Playwright (its own browser download
is not used: the distribution's chromium is). Without a browser the tests that need one
are skipped with one message, unless GRADER_REQUIRE_BROWSER=1 (CI) makes that a failure."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = (os.environ["GRADER_CHROMIUM"] if "GRADER_CHROMIUM" in os.environ
            else shutil.which("chromium") or shutil.which("chromium-browser"))
if CHROMIUM and not os.path.exists(CHROMIUM):
    CHROMIUM = None
# No background traffic: on a closed network Chromium would try Google's hosts at start.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-default-apps", "--disable-quic"]
MISSING = "no Chromium for the browser tests: `make browser` installs it (Debian's chromium)"


def launch():
    """(playwright, browser), or a skip (a failure with GRADER_REQUIRE_BROWSER=1)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "playwright is not installed (pip install -e '.[test]')"
    else:
        if CHROMIUM:
            pw = sync_playwright().start()
            return pw, pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        why = MISSING
    if os.environ.get("GRADER_REQUIRE_BROWSER") == "1":
        pytest.fail(why)
    pytest.skip(why)
