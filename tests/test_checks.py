"""Every built-in check on hand-built evidence: no kernel."""

from __future__ import annotations

import dataclasses
import math

import pytest

from grader.checks import get_check
from grader.evidence import CellFailure, Evidence
from tests.helpers import evidence, run


def check(name, ev, **params):
    c = get_check(name)
    return c.func(ev, c.params_model.model_validate(params))


def test_param_count_pass_and_fail_with_layers():
    assert check("param_count", evidence(run()), expected=44).status == "pass"
    out = check("param_count", evidence(run(), total=45), expected=44)
    assert out.status == "fail" and out.fraction == 0
    assert "45 trainable parameters; the task asks for 44" in out.message
    assert "lin1 (Linear) 45" in out.message
    assert out.evidence["trainable_params"] == 45


def test_missing_evidence_is_error_not_pass():
    ev = Evidence(facts_error="evidence missing: the probe cell wrote no facts file")
    for name, params in [("param_count", {"expected": 44}), ("final_activation_removed", {}),
                         ("hidden_activation_kept", {}), ("epochs", {"expected": 2001}),
                         ("loss_decreased", {})]:
        out = check(name, ev, **params)
        assert out.status == "error" and "evidence missing" in out.message


def test_no_training_fails_with_reason():
    out = check("epochs", evidence(None), expected=2001)
    assert out.status == "fail" and "no model was trained" in out.message


def test_tally_missing_is_error():
    ev = Evidence(facts=evidence(run()).facts, run=run(), model_run=run(), tally=None,
                  tally_error="saved tensors unreadable")
    assert check("param_count", ev, expected=44).status == "error"


@pytest.mark.parametrize("ops,status,final", [
    ([], "pass", None),
    (["tanh"], "fail", "tanh"),
    (["sigmoid"], "fail", "sigmoid"),
    (["mul", "add"], "pass", None),         # affine ops are not activations
    (["add", "relu"], "fail", "relu"),
])
def test_final_activation(ops, status, final):
    out = check("final_activation_removed", evidence(run(final_ops=ops)))
    assert out.status == status and out.evidence["final_op"] == final


def test_final_activation_list_comes_from_rubric():
    out = check("final_activation_removed", evidence(run(final_ops=["abs"])), activations=["abs"])
    assert out.status == "fail"


def test_hidden_activation():
    assert check("hidden_activation_kept", evidence(run())).status == "pass"
    out = check("hidden_activation_kept", evidence(run(inner={"addmm": 2, "mm": 1})))
    assert out.status == "fail" and "linear" in out.message


@pytest.mark.parametrize("samples,expected_epochs,status", [
    ([4] * 2001, 2001, "pass"),                 # full batch
    ([1] * 8004, 2001, "pass"),                 # per sample
    ([2] * 4002, 2001, "pass"),                 # mini-batches of 2
    ([4] * 2000, 2000, "fail"),
    ([1] * 8006, 2001, "fail"),                 # 2001 epochs and a half-finished one
    ([4] * 10, 10, "fail"),
])
def test_epochs(samples, expected_epochs, status):
    out = check("epochs", evidence(run(steps_samples=samples)), expected=2001)
    assert out.status == status, out.message
    assert out.evidence["epochs_run"] == expected_epochs


def test_epochs_dataset_size_from_rubric_overrides_inference():
    out = check("epochs", evidence(run(steps_samples=[8] * 2001, unique_rows=8)), expected=4002,
                dataset_size=4)
    assert out.status == "pass"


def test_loss_decreased():
    assert check("loss_decreased", evidence(run())).status == "pass"
    flat = run(losses=[0.5] * 2001)
    out = check("loss_decreased", evidence(flat))
    assert out.status == "fail" and "at most 0.9x" in out.message
    assert check("loss_decreased", evidence(flat), max_ratio=1.0).status == "pass"


def test_loss_nan_fails():
    r = run(losses=[None] * 2001, nonfinite=2001)
    out = check("loss_decreased", evidence(r))
    assert out.status == "fail" and "NaN" in out.message


def test_loss_per_epoch_means_not_single_steps():
    # per-sample steps: noisy within an epoch, but epoch means fall from 1.0 to 0.1
    losses = [1.5, 0.5, 1.0, 1.0] + [0.1] * 4
    out = check("loss_decreased", evidence(run(steps_samples=[1] * 8, losses=losses)))
    assert math.isclose(out.evidence["loss_first"], 1.0) and math.isclose(out.evidence["loss_last"], 0.1)


def test_runs_cleanly():
    ok = Evidence(cells_run=5)
    assert check("runs_cleanly", ok).status == "pass"
    bad = Evidence(cell_failures=[CellFailure(3, "NameError", "name 'x' is not defined")],
                   execution_status="errors")
    out = check("runs_cleanly", bad)
    assert out.status == "fail" and "cell 3: NameError" in out.message
    timeout = Evidence(execution_status="timeout", execution_reason="cell 4 exceeded the per-cell timeout of 1 s")
    out = check("runs_cleanly", timeout)
    assert out.status == "fail" and out.fraction == 0
    assert out.message == "the notebook did not finish: cell 4 exceeded the per-cell timeout of 1 s"


def test_unknown_check_lists_known():
    with pytest.raises(KeyError) as exc:
        get_check("nope")
    assert "param_count" in exc.value.args[0]


@pytest.mark.parametrize("item", ["epochs", "loss_decreased"])
def test_a_recording_limit_is_an_error_saying_so(item):
    capped = run(steps_samples=[4] * 10).model_copy(update={"steps": 250_000})
    params = {"expected": 2001} if item == "epochs" else {}
    out = check(item, evidence(capped), **params)
    assert out.status == "error" and "recording limit" in out.message


def test_architecture_items_say_which_built_model_they_judged():
    built = run(steps_samples=[]).model_copy(update={"picked_by": "optimizer"})
    ev = dataclasses.replace(evidence(built, model_rule="optimizer"), run=None)
    out = check("param_count", ev, expected=44)
    assert out.status == "pass" and "judged on the model handed to the optimizer" in out.message
    assert check("epochs", ev, expected=2001).status == "fail"
