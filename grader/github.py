"""Hand results to GitHub Actions: the step output the Classroom reporter reads, and a
Markdown table in the job summary. Files only -- never workflow commands on stdout, so
nothing a student's notebook prints can be taken for one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from grader.formats import render_classroom, render_markdown
from grader.report import Report


def publish(report: Report, *, env: Mapping[str, str] | None = None, max_score: float | None = None) -> list[str]:
    """Append ``result=<base64>`` to $GITHUB_OUTPUT and the table to $GITHUB_STEP_SUMMARY.
    Returns the variables written to (none outside Actions)."""
    env = os.environ if env is None else env
    written = []
    if env.get("GITHUB_OUTPUT"):
        with Path(env["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as fh:
            fh.write(f"result={render_classroom(report, max_score=max_score).strip()}\n")
        written.append("GITHUB_OUTPUT")
    if env.get("GITHUB_STEP_SUMMARY"):
        with Path(env["GITHUB_STEP_SUMMARY"]).open("a", encoding="utf-8") as fh:
            fh.write(render_markdown(report, max_score=max_score) + "\n")
        written.append("GITHUB_STEP_SUMMARY")
    return written
