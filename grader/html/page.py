"""One submission's feedback page: the summary, the training, the written answers and
the notebook as the grader ran it, with each rubric item's note beside its cell."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from markupsafe import Markup

from grader import __version__
from grader.formats import points_text
from grader.html.notebook import model_cell, render_cells
from grader.html.plots import loss_plot
from grader.html.render import env, static
from grader.html.safety import content_security_policy
from grader.report import CheckResult, Report

MARKS = {"pass": "✓", "fail": "✗", "error": "!", "skipped": "–"}
MODEL_ITEMS = {"param_count", "final_activation_removed", "hidden_activation_kept"}
TRAINING_ITEMS = {"epochs", "loss_decreased"}


def _evidence(report: Report, check: str) -> dict:
    return next((c.evidence for c in report.checks if c.check == check), {})


def item_cells(report: Report, nb: nbformat.NotebookNode | None) -> dict[str, list[int]]:
    """The cells each rubric item concerns, where that is known: the cell defining the
    model (architecture items), the cells that trained (epochs, loss), the cells that
    raised (runs cleanly)."""
    model = model_cell(nb, _evidence(report, "param_count").get("model_class")) if nb else None
    training = _evidence(report, "epochs").get("training_cells", [])
    failing = [e.cell for e in report.execution.cell_errors]
    found: dict[str, list[int]] = {}
    for c in report.checks:
        if c.check in MODEL_ITEMS and model:
            found[c.id] = [model]
        elif c.check in TRAINING_ITEMS and training:
            found[c.id] = list(training)
        elif c.check == "runs_cleanly" and failing:
            found[c.id] = failing
    return found


def _item(c: CheckResult, cells: list[int]) -> dict:
    review = list(c.evidence.get("review_reasons", [])) if c.evidence.get("needs_review") else []
    return {
        "id": c.id, "title": c.title, "status": c.status, "mark": MARKS[c.status],
        "score": c.score, "max": c.max_score, "score_text": points_text(c.score),
        "max_text": points_text(c.max_score), "message": c.message, "hint": c.hint,
        "override": c.override, "review": review, "cells": cells,
        "auto_text": points_text(c.auto_score) if c.auto_score is not None else "",
        "override_text": points_text(c.override.points) if c.override else "",
    }


def _segments(excerpt: str, sentences: dict[str, str]) -> list[tuple[str, str | None]]:
    """The excerpt cut into (text, concept or None): the sentences that carry a matched
    concept are highlighted with its name."""
    marks: list[tuple[int, int, str]] = []
    for concept, sentence in sentences.items():
        words = sentence.split()
        if not words:
            continue
        # the same words, however the excerpt spaces or breaks them
        found = re.search(r"\s+".join(map(re.escape, words)), excerpt)
        if found and not any(a < found.end() and found.start() < b for a, b, _ in marks):
            marks.append((found.start(), found.end(), concept))
    out, pos = [], 0
    for start, end, concept in sorted(marks):
        out += [(excerpt[pos:start], None), (excerpt[start:end], concept)]
        pos = end
    out.append((excerpt[pos:], None))
    return [s for s in out if s[0]]


def _answers(report: Report) -> list[dict]:
    answers = []
    for c in report.checks:
        if c.check != "written_answer":
            continue
        ev = c.evidence
        sentences = ev.get("concepts_sentences", {}) or {}
        answers.append({
            **_item(c, []), "found": ev.get("found", False), "source": ev.get("source", ""),
            "under": ev.get("under", ""), "words": ev.get("words", 0),
            "segments": _segments(ev.get("excerpt", ""), {k: v for k, v in sentences.items() if isinstance(v, str)}),
            "matched": ev.get("concepts_matched", []), "missed": ev.get("concepts_missed", []),
            "fuzzy": sorted((ev.get("concepts_fuzzy") or {}).items()),
        })
    return answers


def _cells(report: Report, nb: nbformat.NotebookNode | None, notes: dict[int, list[dict]]) -> list[dict]:
    if nb is None:
        return []
    html = render_cells(nb)
    errors = {e.cell: e for e in report.execution.cell_errors}
    cells = []
    for n, cell in enumerate(nb.cells, start=1):
        meta = cell.metadata.get("grader", {})
        err = errors.get(n)
        cells.append({
            "n": n, "code": cell.cell_type == "code", "html": Markup(html.get(n, "")),
            "status": meta.get("status", "ok") if cell.cell_type == "code" else "text",
            "seconds": meta.get("seconds") if (meta.get("seconds") or 0) >= 0.1 else None,
            "error": err.error if err else "", "message": err.message if err else "",
            "notes": notes.get(n, []),
        })
    return cells


def render_page(report: Report, *, name: str, notebook: nbformat.NotebookNode | None,
                score_step: float = 0.5, why_no_notebook: str | None = None,
                dashboard: bool = True, scale: float | None = None) -> str:
    """The page of one submission. ``notebook``: the executed notebook (``OUT/executed``),
    or None when the notebook did not run or is not at hand (``why_no_notebook`` says why).
    ``dashboard``: link to the class dashboard beside it (not on a student's own page).
    ``scale``: the total another platform shows (``--max-score``), given beside the
    rubric's points so that the two never seem to disagree."""
    places = item_cells(report, notebook)
    items = [_item(c, places.get(c.id, [])) for c in report.checks]
    notes: dict[int, list[dict]] = {}
    for it in items:
        for n in it["cells"]:
            notes.setdefault(n, []).append(it)
    loss = _evidence(report, "loss_decreased")
    curve = loss.get("loss_curve") or []
    tally = _evidence(report, "param_count")
    layer_types = tally.get("layer_types", {})
    script = static("page.js")
    data = {"submission": name, "sha256": report.submission.sha256,
            "items": {c.id: c.max_score for c in report.checks}}
    return env().get_template("page.html.j2").render(
        csp=content_security_policy(script), css=Markup(static("grader.css")), script=Markup(script),
        dashboard=dashboard, version=__version__, title=f"{name}: {points_text(report.score)}/{points_text(report.max_score)}",
        assignment=report.assignment, who=report.submission.student or name,
        notebook=report.submission.notebook, sha=report.submission.sha256,
        graded_at=report.graded_at, isolation=report.execution.isolation if report.status == "graded" else "",
        score=report.score, max_score=report.max_score, score_text=points_text(report.score),
        scaled=(f"{points_text(round(report.score * scale / report.max_score, 2))} of "
                f"{points_text(scale)}") if scale and report.max_score and scale != report.max_score
        else "",
        max_text=points_text(report.max_score), error=report.error,
        warnings=report.execution.warnings, tamper=report.execution.tamper_signals,
        items=items, step=score_step,
        loss_svg=Markup(loss_plot(curve, max_ratio=loss.get("max_ratio"))) if len(curve) >= 2 else None,
        layers=[{"name": k, "type": layer_types.get(k, ""), "params": v}
                for k, v in (tally.get("layers") or {}).items()],
        shared=tally.get("shared", []), total_params=tally.get("trainable_params"),
        model_class=tally.get("model_class"), answers=_answers(report),
        cells=_cells(report, notebook, notes),
        no_notebook=why_no_notebook or (
                     "The notebook did not run: " + (report.error or report.execution.reason or "")
                     if report.status == "error" else
                     "The notebook as the grader ran it is not beside this report "
                     f"(executed/{name}.ipynb); the results above are complete."),
        data_json=Markup(json.dumps(data).replace("</", "<\\/")),
    )


def render_page_safely(report: Report, *, name: str, notebook: nbformat.NotebookNode | None,
                       score_step: float = 0.5, dashboard: bool = True,
                       scale: float | None = None) -> tuple[str, str | None]:
    """The page, and a warning if the notebook could not be shown on it: a notebook
    nbconvert cannot render costs its part of the page, never the page or the batch."""
    try:
        return render_page(report, name=name, notebook=notebook, score_step=score_step,
                           dashboard=dashboard, scale=scale), None
    except Exception as exc:  # nbconvert on arbitrary student content: anything can raise
        if notebook is None:
            raise
        why = f"the notebook could not be shown ({type(exc).__name__}: {exc})"
        page = render_page(report, name=name, notebook=None, score_step=score_step, dashboard=dashboard,
                           scale=scale,
                           why_no_notebook=why[0].upper() + why[1:] + "; the results above are complete.")
        return page, f"{name}: {why}; its page has the results only"


def read_executed(path: Path) -> nbformat.NotebookNode | None:
    """The saved executed notebook, or None if it is missing or unreadable."""
    try:
        return nbformat.read(str(path), as_version=4)
    except (OSError, ValueError, KeyError):
        return None
