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
    with pytest.raises(ValueError):
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
