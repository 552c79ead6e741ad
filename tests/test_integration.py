"""Real kernels on fixture notebooks written for the project (see fixtures/notebooks.py)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from grader.report import Report
from tests.fixtures.notebooks import ALL, BY_NAME, FIXTURES, MODEL_ITEMS, code_score

pytestmark = pytest.mark.kernel
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.name)
def test_fixture_verdicts(graded, fixture):
    report: Report = graded[fixture.name]
    assert report.status == "graded", report.error
    statuses = {c.id: c.status for c in report.checks}
    assert [c.id for c in report.checks][: len(ALL)] == ALL
    for item in ALL:
        if item in fixture.fails:
            assert statuses[item] in ("fail", "error"), (item, report.checks)
        else:
            assert statuses[item] == "pass", (item, [c.message for c in report.checks if c.id == item])
    by_id = {c.id: c for c in report.checks}
    for item, expected in fixture.evidence.items():
        for key, value in expected.items():
            assert by_id[item].evidence.get(key) == value, (item, key, by_id[item].evidence)
    for text in fixture.warnings:
        assert text in report.execution.warnings
    assert report.score == sum(c.score for c in report.checks)
    assert report.max_score == 300


def test_no_training_says_why(graded):
    architecture, training = MODEL_ITEMS[:3], MODEL_ITEMS[3:]
    by_id = {c.id: c for c in graded["no_model"].checks}
    for item in architecture:
        assert by_id[item].status == "fail" and "no model was found" in by_id[item].message
    for name in ("no_model", "printed_log_no_training", "crash_before_first_step"):
        by_id = {c.id: c for c in graded[name].checks}
        for item in training:
            assert by_id[item].status == "fail" and "no model was trained" in by_id[item].message


@pytest.mark.parametrize("name, rule", [
    ("printed_log_no_training", "the only model defined in the notebook"),
    ("crash_before_first_step", "the model handed to the optimizer"),
    ("built_called_never_trained", "the model last called on data"),
])
def test_architecture_judged_on_the_model_built(graded, name, rule):
    """A TA gives the architecture points when training did not run: the message says
    which model was judged and why."""
    by_id = {c.id: c for c in graded[name].checks}
    for item in MODEL_ITEMS[:3]:
        assert f"judged on {rule}: no training step ran" in by_id[item].message
    assert by_id["param_count"].score == 40


def test_import_error_is_named_and_model_still_graded(graded):
    report = graded["import_error_early"]
    [err] = report.execution.cell_errors
    assert err.cell == 2 and err.error == "ModuleNotFoundError"
    assert "a_module_that_does_not_exist" in err.message
    assert code_score(report) == 140


def test_param_message_lists_layers(graded):
    msg = next(c for c in graded["params_45_learned_scale"].checks if c.id == "param_count").message
    assert "45 trainable parameters; the task asks for 44" in msg
    assert "lin1 (Linear) 15" in msg and "lin2 (Linear) 24" in msg
    shared = next(c for c in graded["layer_registered_twice"].checks if c.id == "param_count")
    assert "h2.weight = h1.weight" in shared.evidence["shared"]


def test_same_notebook_twice_gives_identical_results(graded):
    a, b = graded["solution_full_batch"], graded["solution_again"]
    assert [c.model_dump() for c in a.checks] == [c.model_dump() for c in b.checks]
    assert a.score == b.score and code_score(a) == 150


def test_reports_and_gradebook_written(graded):
    out: Path = graded["_out_dir"]
    for fixture in FIXTURES:
        data = json.loads((out / f"{fixture.name}.json").read_text())
        assert Report.model_validate(data).assignment == "01-very-basics"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == len(FIXTURES) + 1
    row = next(r for r in rows if r["submission"] == "epochs_2000")
    assert row["epochs"] == "0.0" and row["param_count"] == "40.0" and row["status"] == "graded"
    assert row["readme_q1"] == "0.0"  # fixtures have no README


def normalised(report: Report) -> dict:
    """Drop what legitimately varies between runs and machines."""
    data = report.model_dump(mode="json")
    for key in ("timings", "graded_at", "versions"):
        data.pop(key)
    data["submission"] = {"notebook": data["submission"]["notebook"]}
    data["execution"].pop("peak_memory_mb", None)
    for cell in data["execution"]["cell_errors"]:
        cell.pop("traceback", None)
    for check in data["checks"]:  # the curve's size and ends; all of it would drown the file
        curve = check["evidence"].get("loss_curve")
        if curve is not None:
            check["evidence"]["loss_curve"] = {"points": len(curve), "first": curve[:1],
                                               "last": curve[-1:]}

    def rounded(value):
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    return rounded(data)


# Written from each fixture's source, not from the grader's output, so that a wrong
# golden file cannot pass: (unique trainable parameters, epochs run, final activation,
# loss). Parameters: Linear(a, b) has a*b + b. "converges": the last epoch's loss is
# under 1% of the first; "falls": lower; None: no loss recorded. 1.678 is the first MSE
# of HEAD + net() + train() (seed 0, net built first), from the same code run as a plain
# script.
FIRST_LOSS = 1.678
KEY_EVIDENCE = {
    "solution_full_batch": (44, 2001, None, ("converges", FIRST_LOSS)),
    "per_sample_variable_summary": (44, 2001, None, ("falls", None)),  # L1, per sample
    "final_module_sequential": (44, 2001, "tanh", ("converges", None)),
    "final_F_tanh": (44, 2001, "tanh", ("converges", None)),
    "final_torch_sigmoid": (44, 2001, "sigmoid", ("converges", None)),
    "final_tensor_method": (44, 2001, "tanh", ("converges", None)),
    "params_45_learned_scale": (45, 2001, None, ("converges", FIRST_LOSS)),  # ones(): no RNG draw
    "layer_registered_twice": (12 + 20 + 5, 2001, None, ("converges", None)),  # h2 is h1
    "parameters_override_hides": (15 + 24 + 5 + 2, 2001, None, ("converges", None)),
    "epochs_2000": (44, 2000, None, ("converges", FIRST_LOSS)),
    "epochs_variable_loop_10": (44, 10, None, ("falls", FIRST_LOSS)),
    "loop_breaks_early": (44, 500, None, ("converges", FIRST_LOSS)),
    "printed_log_no_training": (44, None, None, None),  # the model built, never trained
    "mini_batch_dataloader": (44, 2001, None, ("converges", None)),
    "two_models_second_trained": (44, 2001, None, ("converges", None)),
    "nan_loss": (44, 2001, None, None),  # every loss is NaN: no mean to compare
    "import_error_early": (44, 2001, None, ("converges", FIRST_LOSS)),
    "no_model": (None, None, None, None),
    "cuda_habits": (44, 2001, None, ("converges", FIRST_LOSS)),
}


def test_every_golden_fixture_has_independent_expectations():
    assert set(KEY_EVIDENCE) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(KEY_EVIDENCE))
def test_key_evidence_matches_the_fixture_source(graded, name):
    params, epochs, final_op, loss = KEY_EVIDENCE[name]
    ev = {c.id: c.evidence for c in graded[name].checks}
    assert ev["param_count"].get("trainable_params") == params
    assert ev["epochs"].get("epochs_run") == epochs
    assert ev["final_activation_removed"].get("final_op") == final_op
    first, last = ev["loss_decreased"].get("loss_first"), ev["loss_decreased"].get("loss_last")
    if loss is None:
        assert first is None and last is None
        return
    trend, expected_first = loss
    assert last < (0.01 * first if trend == "converges" else first)
    if expected_first is not None:
        assert first == pytest.approx(expected_first, abs=1e-3)


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_golden_report(graded, name):
    """Set GRADER_UPDATE_GOLDEN=1 to rewrite tests/golden after an intended change."""
    path = GOLDEN / f"{name}.json"
    current = normalised(graded[name])
    if os.environ.get("GRADER_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert path.is_file(), f"no golden report for {name}: run with GRADER_UPDATE_GOLDEN=1"
    assert current == json.loads(path.read_text())


@pytest.mark.skipif((os.cpu_count() or 1) < 2,
                    reason="one core: there is no idle core to pre-warm a kernel on")
def test_prewarmed_kernels_give_the_same_reports(tmp_path, grading):
    """jobs=1 on a multi-core machine grades on pre-warmed kernels: same evidence."""
    from grader.api import grade

    names = ["solution_full_batch", "per_sample_variable_summary", "import_error_early"]
    paths = [BY_NAME[n].write(tmp_path) for n in names]
    reports = grade(paths=paths, grading=grading, jobs=1)
    for name in names:
        assert "prewarm" in reports[name].timings
        assert normalised(reports[name]) == json.loads((GOLDEN / f"{name}.json").read_text())


def test_written_reports_split_the_time_by_stage(graded):
    report = json.loads((graded["_out_dir"] / "solution_full_batch.json").read_text())
    stages = {"locate", "kernel_start", "cells", "probe", "checks", "total", "report"}
    assert stages <= set(report["timings"])
    timings = report["timings"]
    assert all(timings[s] >= 0 for s in stages)
    assert timings["kernel_start"] + timings["cells"] + timings["probe"] <= timings["total"] + 0.01
