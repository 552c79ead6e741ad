"""The class dashboard (``OUT/index.html``): how the class scored, which rubric items it
lost, every submission in a sortable table with a link to its page, every loss curve,
and the submissions that could not be graded, with why."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from markupsafe import Markup

from grader import __version__
from grader.duplicates import DuplicatePair
from grader.formats import points_text
from grader.html.plots import score_histogram, sparkline
from grader.html.render import env, static
from grader.html.safety import content_security_policy
from grader.report import Report


def _review_flags(rep: Report) -> list[str]:
    flags = [c.id for c in rep.checks if c.evidence.get("needs_review")]
    return flags + (["tamper_signals"] if rep.execution.tamper_signals else [])


def render_dashboard(reports: Mapping[str, Report], *, title: str,
                     duplicates: Sequence[DuplicatePair] = ()) -> str:
    """The dashboard of the reports in a folder (name -> report)."""
    twins: dict[str, set[str]] = {}
    for pair in duplicates:
        twins.setdefault(pair.a, set()).add(pair.b)
        twins.setdefault(pair.b, set()).add(pair.a)
    first = next(iter(reports.values()), None)
    max_score = first.max_score if first else 0
    items: dict[str, dict] = {}
    for rep in reports.values():
        for c in rep.checks:
            it = items.setdefault(c.id, {"id": c.id, "title": c.title, "passed": 0, "n": 0,
                                         "points": 0.0, "max_text": points_text(c.max_score)})
            it["n"] += 1
            it["passed"] += c.status == "pass"
            it["points"] += c.score
    for it in items.values():
        it["rate"] = round(100 * it["passed"] / it["n"]) if it["n"] else 0
        it["mean"] = points_text(round(it["points"] / it["n"], 1)) if it["n"] else "-"
    rows, curves, errors = [], [], []
    for name, rep in sorted(reports.items()):
        lost = [f"{c.id} ({points_text(c.score)}/{points_text(c.max_score)})"
                for c in rep.checks if c.score < c.max_score]
        rows.append({"name": name, "student": rep.submission.student or "",
                     "score": rep.score, "score_text": points_text(rep.score),
                     "status": rep.status, "lost": lost, "flags": _review_flags(rep),
                     "twins": sorted(twins.get(name, ())),
                     "overridden": [c.id for c in rep.checks if c.override is not None]})
        curve = next((c.evidence.get("loss_curve") for c in rep.checks
                      if c.check == "loss_decreased"), None)
        if curve and len(curve) >= 2:
            curves.append({"name": name, "png": sparkline(curve),
                           "text": f"{curve[0][1]:.3g} → {curve[-1][1]:.3g}"})
        if rep.status == "error":
            errors.append({"name": name, "reason": rep.error or ""})
        elif rep.execution.status != "ok":
            errors.append({"name": name, "reason": rep.execution.reason or rep.execution.status})
    scores = [r.score for r in reports.values()]
    script = static("dashboard.js")
    return env().get_template("dashboard.html.j2").render(
        csp=content_security_policy(script), css=Markup(static("grader.css")), script=Markup(script),
        version=__version__, title=title, count=len(reports),
        graded=sum(r.status == "graded" for r in reports.values()),
        mean=points_text(round(statistics.fmean(scores), 1)) if scores else "-",
        median=points_text(round(statistics.median(scores), 1)) if scores else "-",
        max_text=points_text(max_score),
        histogram=Markup(score_histogram(scores, max_score=max_score or 1)) if scores else None,
        items=list(items.values()), rows=rows, curves=curves, errors=errors,
        duplicates=[p.as_dict() for p in duplicates],
    )
