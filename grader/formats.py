"""Every file format of one ``Report`` (batch and terminal views: ``grader.render``).

json, text, markdown, classroom (GitHub Classroom's autograding reporter), gradescope
and prairielearn (their ``results.json``), junit (XML). Each renderer is a pure function
``(report, *, max_score=None) -> str``; ``max_score`` rescales points where a platform
wants another total (the Classroom action's ``max-score`` input).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from xml.etree import ElementTree as ET

from grader.report import CheckResult, Report
from grader.rubric import GradescopeOptions, Rubric

_MARK = {"pass": "✅", "fail": "❌", "error": "⚠️", "skipped": "➖"}


def points_text(points: float) -> str:
    """Points as people write them: 40, 29.5 (no trailing zeros)."""
    return f"{points:g}"


def item_maxima(report: Report, total_max: float) -> list[float]:
    """Each item's maximum on the rescaled total."""
    factor = total_max / report.max_score if report.max_score else 1
    return [round(c.max_score * factor, 2) for c in report.checks]


def scaled_scores(report: Report, max_score: float | None) -> tuple[list[float], float]:
    """Per-item scores rescaled to ``max_score`` whose sum is exactly the rescaled total."""
    if not max_score or not report.max_score or max_score == report.max_score:
        return [c.score for c in report.checks], report.max_score
    factor = max_score / report.max_score
    scores = [round(c.score * factor, 2) for c in report.checks]
    target = round(report.score * factor, 2)
    if scores:
        # put the rounding remainder on the largest item so the sum is exact
        i = max(range(len(scores)), key=lambda k: scores[k])
        scores[i] = round(scores[i] + target - round(sum(scores), 2), 2)
    return scores, max_score


def _detail(c: CheckResult) -> str:
    text = c.message
    if c.override is not None:
        text += f" [set to {points_text(c.override.points)} by {c.override.by}: {c.override.comment}]"
    if c.hint:
        text += f"\nHint: {c.hint}"
    return text


def render_json(report: Report, *, max_score: float | None = None) -> str:
    """The report itself, always in rubric points: a JSON report is re-rendered into
    other totals later (``grader report --max-score``), so it never holds rescaled ones."""
    if max_score is not None and max_score != report.max_score:
        raise ValueError("the JSON report keeps the rubric's points; --max-score applies to "
                         "the other formats")
    return report.model_dump_json(indent=2) + "\n"


def render_text(report: Report, *, max_score: float | None = None) -> str:
    scores, total_max = scaled_scores(report, max_score)
    lines = [f"{report.assignment} — {report.submission.notebook or report.submission.path}"]
    if report.error:
        lines.append(f"could not grade: {report.error}")
    for c, s, m in zip(report.checks, scores, item_maxima(report, total_max)):
        lines.append(f"[{c.status:^5}] {points_text(s):>5}/{points_text(m):<4} {c.title}: {c.message}")
        if c.hint:
            lines.append(f"               hint: {c.hint}")
    lines += [f"note: {w}" for w in report.execution.warnings]
    lines.append(f"total: {points_text(round(sum(scores), 2))}/{points_text(total_max)}")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown(report: Report, *, max_score: float | None = None) -> str:
    scores, total_max = scaled_scores(report, max_score)
    out = [f"### {report.assignment}: {points_text(round(sum(scores), 2))}/{points_text(total_max)}", ""]
    if report.error:
        out += [f"**Could not grade:** {_md_cell(report.error)}", ""]
    out += ["| | item | points | result |", "|---|---|---:|---|"]
    for c, s, m in zip(report.checks, scores, item_maxima(report, total_max)):
        out.append(f"| {_MARK[c.status]} | {_md_cell(c.title)} | {points_text(s)}/{points_text(m)} | "
                   f"{_md_cell(_detail(c))} |")
    return "\n".join(out) + "\n"


def classroom_payload(report: Report, *, max_score: float | None = None) -> dict:
    """What classroom-resources/autograding-grading-reporter reads: it sends Classroom the
    sum of ``tests[].score`` out of ``max_score``. Every rubric item is a test, always."""
    scores, total_max = scaled_scores(report, max_score)
    if report.status == "error":
        status = "error"
    else:
        status = "pass" if all(c.status == "pass" for c in report.checks) else "fail"
    return {
        "version": 1,
        "status": status,
        "max_score": int(round(total_max)),
        "tests": [
            {
                "name": c.title,
                "status": "pass" if c.status == "pass" else ("error" if c.status == "error" else "fail"),
                "score": s,
                "message": _detail(c),
                "test_code": f"grader rubric item {c.id} ({c.check})",
                "filename": report.submission.notebook or "",
                "line_no": 0,
                "duration": 0,
            }
            for c, s in zip(report.checks, scores)
        ],
    }


def render_classroom(report: Report, *, max_score: float | None = None) -> str:
    raw = json.dumps(classroom_payload(report, max_score=max_score)).encode()
    return base64.b64encode(raw).decode() + "\n"


def render_gradescope(report: Report, *, max_score: float | None = None,
                      rubric: Rubric | None = None) -> str:
    """Gradescope's results.json. The rubric's ``[gradescope]`` table (and an item's own
    ``visibility``) say when students see what; hints shown later become one 0-point
    entry of their own, with that visibility."""
    options = rubric.gradescope if rubric else GradescopeOptions()
    own = {i.id: i.visibility for i in rubric.items if i.visibility} if rubric else {}
    hints_later = options.hint_visibility != "visible"
    scores, total_max = scaled_scores(report, max_score)
    output = report.error or f"{points_text(report.score)}/{points_text(report.max_score)}"
    if report.execution.warnings:
        output += "\n" + "\n".join(f"note: {w}" for w in report.execution.warnings)
    tests = [
        {
            "name": c.title,
            "number": str(n),
            "score": s,
            "max_score": m,
            "status": "passed" if c.status == "pass" else "failed",
            "output": _detail(c.model_copy(update={"hint": ""})) if hints_later else _detail(c),
            "visibility": own.get(c.id, options.visibility),
        }
        for n, (c, s, m) in enumerate(zip(report.checks, scores, item_maxima(report, total_max)),
                                      start=1)
    ]
    hints = [f"{c.title}: {c.hint}" for c in report.checks if c.hint]
    if hints_later and hints:
        tests.append({"name": "Hints", "number": str(len(tests) + 1), "score": 0, "max_score": 0,
                      "status": "passed",  # an entry to read, not a test
                      "output": "\n".join(hints), "visibility": options.hint_visibility})
    return json.dumps({
        "score": round(sum(scores), 2),
        "execution_time": round(report.timings.get("total", 0)),
        "output": output,
        "visibility": options.visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
    }, indent=2) + "\n"


def render_prairielearn(report: Report, *, max_score: float | None = None) -> str:
    """PrairieLearn's score is a fraction (it scales to the question's points itself);
    ``max_score`` rescales the per-test points shown."""
    gradable = report.status == "graded"
    scores, total_max = scaled_scores(report, max_score)
    return json.dumps({
        "gradable": gradable,
        "score": report.score / report.max_score if report.max_score and gradable else 0.0,
        "message": report.error or f"{points_text(round(sum(scores), 2))}/{points_text(total_max)}",
        "output": "\n".join(report.execution.warnings),
        "tests": [
            {
                "name": c.title,
                "description": c.id,
                "points": s,
                "max_points": m,
                "message": _detail(c),
                "output": "",
            }
            for c, s, m in zip(report.checks, scores, item_maxima(report, total_max))
        ],
    }, indent=2) + "\n"


def render_junit(report: Report, *, max_score: float | None = None) -> str:
    scores, total_max = scaled_scores(report, max_score)
    failures = sum(1 for c in report.checks if c.status == "fail")
    errors = sum(1 for c in report.checks if c.status == "error")
    suite = ET.Element("testsuite", {
        "name": report.assignment,
        "tests": str(len(report.checks)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(sum(1 for c in report.checks if c.status == "skipped")),
        "time": f"{report.timings.get('total', 0):.3f}",
    })
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "score", "value": points_text(round(sum(scores), 2))})
    ET.SubElement(props, "property", {"name": "max_score", "value": points_text(total_max)})
    for c, s, m in zip(report.checks, scores, item_maxima(report, total_max)):
        case = ET.SubElement(suite, "testcase", {
            "classname": f"{report.assignment}.{report.submission.notebook or 'submission'}",
            "name": c.id,
        })
        text = f"{points_text(s)}/{points_text(m)}: {_detail(c)}"
        if c.status == "fail":
            ET.SubElement(case, "failure", {"message": c.message[:500]}).text = text
        elif c.status == "error":
            ET.SubElement(case, "error", {"message": c.message[:500]}).text = text
        elif c.status == "skipped":
            ET.SubElement(case, "skipped", {"message": c.message[:500]})
        else:
            ET.SubElement(case, "system-out").text = text
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def render_csv(report: Report, *, max_score: float | None = None) -> str:
    """One gradebook row (with header) for this report."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    scores, total_max = scaled_scores(report, max_score)
    ids = [c.id for c in report.checks]
    writer.writerow(["notebook", "status", *ids, "score", "max_score", "error"])
    writer.writerow([report.submission.notebook or "", report.status, *scores,
                     round(sum(scores), 2), total_max, report.error or ""])
    return buf.getvalue()


Renderer = Callable[..., str]
FORMATS: dict[str, tuple[Renderer, str]] = {  # name -> (renderer, file extension)
    "json": (render_json, "json"),
    "text": (render_text, "txt"),
    "markdown": (render_markdown, "md"),
    "csv": (render_csv, "csv"),
    "classroom": (render_classroom, "classroom.txt"),
    "gradescope": (render_gradescope, "gradescope.json"),
    "prairielearn": (render_prairielearn, "prairielearn.json"),
    "junit": (render_junit, "junit.xml"),
}


def render(report: Report, fmt: str, *, max_score: float | None = None,
           rubric: Rubric | None = None) -> str:
    """``rubric``: the formats that take options from it (gradescope's visibility)."""
    renderer, _ = FORMATS[fmt]
    if fmt == "gradescope" and rubric is not None:
        return renderer(report, max_score=max_score, rubric=rubric)
    return renderer(report, max_score=max_score)
