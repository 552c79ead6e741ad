"""Host-side recomputation: parameter tally from saved tensors, epochs, facts files."""

from __future__ import annotations

import json

import pytest
import torch

from grader.evidence import epoch_stats, select_trained_run, tally_params
from grader.facts import FactsError, load_facts
from tests.helpers import facts, run


def save(path, trainable, frozen=None, optimizer_only=None):
    torch.save({"trainable": trainable, "frozen": frozen or {}, "optimizer_only": optimizer_only or {}}, path)
    return path


def test_tally_counts_shared_storage_once(tmp_path):
    w = torch.zeros(4, 4)
    path = save(tmp_path / "t.pt", {"lin1.weight": torch.zeros(4, 2), "h1.weight": w, "h2.weight": w,
                                    "out.weight": torch.zeros(1, 4)})
    tally = tally_params(path, run())
    assert tally.total == 8 + 16 + 4
    assert tally.shared == [("h2.weight", "h1.weight")]
    assert ("lin1", "Linear", 8) in tally.layers


def test_tally_includes_optimizer_only_tensors_and_reports_frozen(tmp_path):
    path = save(tmp_path / "t.pt", {"lin1.weight": torch.zeros(2, 2)},
                frozen={"lin0.weight": torch.zeros(3)},
                optimizer_only={"optimizer.param_groups[0][1]": torch.zeros(5)})
    tally = tally_params(path, run())
    assert tally.total == 9 and tally.frozen == 3


class Evil:
    """Any non-tensor object: weights_only loading must refuse to unpickle it."""


def test_tally_refuses_pickled_objects(tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"trainable": {"x": Evil()}, "frozen": {}, "optimizer_only": {}}, path)
    with pytest.raises(ValueError, match="unreadable"):
        tally_params(path, run())


def test_tally_rejects_wrong_layout(tmp_path):
    path = tmp_path / "t.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="layout"):
        tally_params(path, run())
    (tmp_path / "junk.pt").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="saved tensors unreadable"):
        tally_params(tmp_path / "junk.pt", run())


def test_last_trained_run_is_selected():
    a, b = run(index=0, last_seq=100), run(index=1, last_seq=200, model_class="Second")
    assert select_trained_run(facts(a, b)).model_class == "Second"
    assert select_trained_run(facts()) is None


def test_epoch_stats_partial_epoch():
    st = epoch_stats(run(steps_samples=[1] * 10))
    assert (st.epochs_run, st.partial_samples, st.dataset_size) == (2, 2, 4)


def test_load_facts_checks_nonce_and_shape(tmp_path):
    good = facts(run()).model_dump()
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(good))
    assert load_facts(path, nonce="n").runs[0].steps == 2001
    with pytest.raises(FactsError, match="nonce"):
        load_facts(path, nonce="other")
    path.write_text(json.dumps({**good, "verdict": "pass"}))
    with pytest.raises(FactsError, match="malformed"):
        load_facts(path, nonce="n")
    path.write_text("{not json")
    with pytest.raises(FactsError, match="malformed"):
        load_facts(path, nonce="n")
    with pytest.raises(FactsError, match="missing"):
        load_facts(tmp_path / "absent.json", nonce="n")


def test_a_built_model_is_judged_when_nothing_was_trained():
    """Trained beats built; among built models: handed to an optimizer, then called on
    data, then the only one in the namespace."""
    from grader.evidence import select_model_run

    def built(rule, name):
        return run(steps_samples=[], model_class=name).model_copy(update={"picked_by": rule})

    ns, fwd, opt = built("namespace", "N"), built("forward", "F"), built("optimizer", "O")
    assert select_model_run(facts(ns, fwd, opt)) == (opt, "optimizer")
    assert select_model_run(facts(ns, fwd)) == (fwd, "forward")
    assert select_model_run(facts(ns)) == (ns, "namespace")
    assert select_model_run(facts()) == (None, "trained")
    trained = run(model_class="T")
    assert select_model_run(facts(trained, opt)) == (trained, "trained")
    assert select_trained_run(facts(opt)) is None  # a built model has no training to judge


def _loader_facts(the_run, passes):
    from grader.facts import LoaderPass

    return facts(the_run).model_copy(update={"loader_passes": [
        LoaderPass(batches=b, complete=c, dataset_len=4) for b, c in passes]})


def test_an_epoch_is_one_dataloader_pass():
    """Batch size 1, shuffled, fresh noise each step: distinct inputs would count 8004
    rows, but each complete pass over the loader is one epoch."""
    the_run = run(steps_samples=[1] * 12, unique_rows=12).model_copy(
        update={"step_passes": [0] * 4 + [1] * 4 + [2] * 4})
    st = epoch_stats(the_run, facts=_loader_facts(the_run, [(4, True), (4, True), (4, False)]))
    assert (st.epochs_run, st.partial_samples, st.dataset_size, st.rule) == (2, 4, 4, "DataLoader passes")
    assert len(st.epoch_losses) == 3
    # the rubric's dataset_size still wins
    assert epoch_stats(the_run, dataset_size=4, facts=_loader_facts(the_run, [(4, True)] * 3)).epochs_run == 3


def test_steps_without_a_loader_keep_the_distinct_inputs_rule():
    the_run = run(steps_samples=[4] * 10).model_copy(update={"step_passes": [-1] * 10})
    st = epoch_stats(the_run, facts=_loader_facts(the_run, [(4, True)]))
    assert (st.epochs_run, st.rule) == (10, "distinct inputs")


def test_recording_limits_are_errors_not_counts():
    capped = run(steps_samples=[4] * 10).model_copy(update={"steps": 250_000})
    st = epoch_stats(capped)
    assert st.limit_error and "only the first 10 of 250,000 steps were recorded" in st.limit_error
    rows = run(steps_samples=[4] * 10, unique_rows=100_000).model_copy(update={"rows_capped": True})
    assert "distinct input rows" in epoch_stats(rows).limit_error
    assert epoch_stats(rows, dataset_size=4).limit_error is None
