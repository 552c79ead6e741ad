"""Every format from one report, checked the way each platform reads it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from grader.cli import main
from grader.formats import FORMATS, render
from grader.report import Report

pytestmark = pytest.mark.kernel  # uses the session's graded fixtures
SCHEMAS = Path(__file__).parent / "schemas"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def fixture_reports(graded) -> list[Report]:
    return [r for k, r in graded.items() if not k.startswith("_")]


@pytest.fixture(scope="module")
def error_report(grading, tmp_path_factory):
    from grader.api import grade_one

    bad = tmp_path_factory.mktemp("bad") / "broken.ipynb"
    bad.write_text("{")
    return grade_one(path=bad, grading=grading)


def decode_like_the_reporter(text: str) -> dict:
    return json.loads(base64.b64decode(text.strip()).decode("utf-8"))


def test_classroom_sum_equals_report_score(graded, error_report):
    for report in [*fixture_reports(graded), error_report]:
        payload = decode_like_the_reporter(render(report, "classroom"))
        jsonschema.validate(payload, schema("classroom"))
        assert sum(t["score"] for t in payload["tests"]) == pytest.approx(report.score)
        assert payload["max_score"] == report.max_score == 300
        assert [t["name"] for t in payload["tests"]] == [c.title for c in report.checks]


def test_classroom_crash_still_lists_every_item(error_report):
    payload = decode_like_the_reporter(render(error_report, "classroom"))
    assert payload["status"] == "error" and len(payload["tests"]) == 11
    code = [t for t in payload["tests"] if t["status"] == "error"]
    assert len(code) == 6 and all(t["score"] == 0 and "not a readable" in t["message"] for t in code)


def test_max_score_rescales_exactly(graded):
    for report in fixture_reports(graded):
        payload = decode_like_the_reporter(render(report, "classroom", max_score=100))
        assert payload["max_score"] == 100
        assert round(sum(t["score"] for t in payload["tests"]), 2) == round(report.score / 3, 2)


@pytest.mark.parametrize("fmt", ["gradescope", "prairielearn"])
def test_platform_json_formats_match_their_schemas(graded, error_report, fmt):
    for report in [*fixture_reports(graded), error_report]:
        data = json.loads(render(report, fmt))
        jsonschema.validate(data, schema(fmt))
        if fmt == "gradescope":
            assert data["score"] == pytest.approx(report.score)
            assert sum(t["max_score"] for t in data["tests"]) == report.max_score
        else:
            assert data["gradable"] is (report.status == "graded")
            assert data["score"] == (pytest.approx(report.score / 300) if data["gradable"] else 0)


def test_junit_has_one_testcase_per_item(graded):
    report = graded["final_F_tanh"]
    suite = ET.fromstring(render(report, "junit").split("?>", 1)[1])
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.id for c in report.checks]
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {c.id for c in report.checks if c.status == "fail"}
    assert suite.get("failures") == str(len(failed)) and suite.get("tests") == "11"


def test_markdown_text_csv(graded):
    report = graded["epochs_2000"]
    md = render(report, "markdown")
    assert md.count("\n| ") == 12 and "❌" in md  # header + 11 items
    assert "total: " in render(report, "text")
    rows = render(report, "csv").splitlines()
    assert len(rows) == 2 and rows[0].startswith("notebook,status,param_count")


def test_report_command_re_renders_saved_reports(graded, capsys):
    out_dir: Path = graded["_out_dir"]
    saved = out_dir / "nan_loss.json"
    for fmt in FORMATS:
        assert main(["report", str(saved), "--format", fmt]) == 0
        assert capsys.readouterr().out == render(Report.model_validate_json(saved.read_text()), fmt)


def test_report_command_on_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text('{"not": "a report"}')
    assert main(["report", str(bad)]) == 2
    assert "not a grader report" in capsys.readouterr().err


@pytest.mark.parametrize("width", [80, 250])
def test_gradebook_table_fits_the_terminal(graded, grading, width):
    from rich.console import Console

    from grader.render import batch_table

    reports = {k: v for k, v in graded.items() if isinstance(v, Report)}
    for name, rep in reports.items():  # one row at a time, so wrapped cells can be rejoined
        console = Console(width=width, record=True, color_system=None)
        console.print(batch_table({name: rep}, rubric=grading.rubric, width=width))
        text = console.export_text()
        assert "…" not in text, "a header or cell was cut"
        assert max(len(line) for line in text.splitlines()) <= width
        row = " ".join(text.split("┩")[1].replace("│", " ").split())
        assert row.startswith(f"{name} ") and f"{rep.score:g}/{rep.max_score:g}" in row
        if width == 80:  # the compact table names the items that lost points
            for c in rep.checks:
                assert (f"{c.id} " in row) == (c.score < c.max_score), (name, c.id, row)


def _totals_on_100(fmt: str, text: str) -> tuple[float, float]:
    """(sum of item points, stated maximum) as each platform would read them."""
    if fmt == "text":
        *_, total = text.strip().splitlines()
        got, top = total.removeprefix("total: ").split("/")
        return float(got), float(top)
    if fmt == "csv":
        header, row = [line.split(",") for line in text.strip().splitlines()]
        values = dict(zip(header, row))
        items = header[2:-3]
        assert round(sum(float(values[i]) for i in items), 2) == float(values["score"])
        return float(values["score"]), float(values["max_score"])
    if fmt == "junit":
        props = {p.get("name"): float(p.get("value")) for p in ET.fromstring(text).iter("property")}
        return props["score"], props["max_score"]
    data = json.loads(text)
    if fmt == "gradescope":
        return data["score"], sum(t["max_score"] for t in data["tests"])
    return sum(t["points"] for t in data["tests"]), sum(t["max_points"] for t in data["tests"])


@pytest.mark.parametrize("fmt", ["text", "csv", "junit", "gradescope", "prairielearn"])
def test_max_score_applies_to_every_format(graded, fmt):
    report = graded["epochs_2000"]
    got, top = _totals_on_100(fmt, render(report, fmt, max_score=100))
    assert top == pytest.approx(100, abs=0.05)
    assert got == pytest.approx(report.score / 3, abs=0.01)


def test_json_keeps_rubric_points(graded):
    with pytest.raises(ValueError, match="keeps the rubric's points"):
        render(graded["epochs_2000"], "json", max_score=100)


def test_gradescope_visibility_comes_from_the_rubric(graded, grading):
    report = graded["final_F_tanh"]  # loses final_activation_removed: a hint is shown
    plain = json.loads(render(report, "gradescope", rubric=grading.rubric))
    assert {t["visibility"] for t in plain["tests"]} == {"visible"} and len(plain["tests"]) == 11
    assert any("Hint:" in t["output"] for t in plain["tests"])
    items = [i.model_copy(update={"visibility": "hidden"}) if i.id == "epochs" else i
             for i in grading.rubric.items]
    later = grading.rubric.model_copy(update={
        "items": items,
        "gradescope": grading.rubric.gradescope.model_copy(update={"hint_visibility": "after_due_date"})})
    data = json.loads(render(report, "gradescope", rubric=later))
    jsonschema.validate(data, schema("gradescope"))
    *items_shown, hints = data["tests"]
    assert not any("Hint:" in t["output"] for t in items_shown)
    assert hints["name"] == "Hints" and hints["visibility"] == "after_due_date"
    assert hints["max_score"] == 0 and "No activation after the last layer:" in hints["output"]
    assert [t["visibility"] for t in items_shown if t["name"] == "Trained for 2001 epochs"] == ["hidden"]
    assert data["score"] == plain["score"]
