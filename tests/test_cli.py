"""The CLI is thin: exit codes and messages, no tracebacks."""

from __future__ import annotations

import json

from grader.cli import main


def test_schema_report_is_json_schema(capsys):
    assert main(["schema", "report"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Report" and "checks" in schema["properties"]


def test_unknown_assignment_exits_2_with_message(capsys, tmp_path):
    assert main(["grade", str(tmp_path), "-a", "no-such-assignment", "-o", str(tmp_path / "o")]) == 2
    assert "no-such-assignment" in capsys.readouterr().err


def test_check_on_broken_file_exits_1_without_traceback(capsys, tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{")
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "Could not grade" in out and "Traceback" not in out


def test_grade_writes_error_reports_for_bad_inputs(tmp_path):
    bad = tmp_path / "empty.ipynb"
    bad.write_text("")
    out = tmp_path / "out"
    assert main(["grade", str(bad), "-a", "01-very-basics", "-o", str(out)]) == 1
    assert json.loads((out / "empty.json").read_text())["status"] == "error"
    assert (out / "summary.csv").read_text().count("\n") == 2


def test_a_missing_path_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "out"
    missing = tmp_path / "missing"
    assert main(["grade", str(missing), "-a", "01-very-basics", "-o", str(out)]) == 2
    assert f"{missing}: no such file or folder" in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


def test_checks_lists_builtins(capsys):
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    for name in ("param_count", "final_activation_removed", "epochs", "loss_decreased"):
        assert name in out


def test_check_shows_readme_part_with_hints(capsys, tmp_path):
    (tmp_path / "XOR.ipynb").write_text("{")
    (tmp_path / "README.md").write_text(
        "## What is a neural network neuron?\nA neuron multiplies its inputs by weights and adds them up "
        "with a bias before an activation function gives the output of the neuron.\n")
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    words = " ".join(out.replace("│", " ").split())  # the table wraps at 80 columns
    assert "README: what is" in words and "covers weighted sum" in words
    assert "no answer found" in words and "hint: Explain it as the step size" in words


def test_a_grader_bug_costs_one_report_not_the_batch(tmp_path, monkeypatch):
    import grader.api

    def boom(**kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(grader.api, "grade_submission", boom)
    nb = tmp_path / "a.ipynb"
    nb.write_text("{}")
    out = tmp_path / "out"
    assert main(["grade", str(nb), "-a", "01-very-basics", "-o", str(out), "--format", "classroom"]) == 1
    report = json.loads((out / "a.json").read_text())
    assert report["status"] == "error" and "internal grader error (RuntimeError: simulated bug" in report["error"]
    assert len(report["checks"]) == 11
