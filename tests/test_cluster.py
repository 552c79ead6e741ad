"""Grading on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1
(no mocks, no threads in this process), each worker one core with one kernel slot."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import nbformat
import pytest

from grader.api import grade
from grader.cli import main
from tests.fixtures.notebooks import BY_NAME, HEAD, Fixture, net, train
from tests.helpers import LocalCluster
from tests.test_integration import normalised

pytestmark = pytest.mark.kernel
EIGHT = ["solution_full_batch", "epochs_2000", "final_F_tanh", "params_45_learned_scale",
         "layer_registered_twice", "import_error_early", "no_model", "mini_batch_dataloader"]


@pytest.fixture()
def cluster(tmp_path):
    c = LocalCluster(tmp_path / "cluster")
    yield c
    c.close()


def test_a_cluster_grades_like_jobs_2(tmp_path, cluster, graded, grading):
    paths = [BY_NAME[n].write(tmp_path / "subs") for n in EIGHT]
    out = tmp_path / "out"
    warnings: list[str] = []
    remote = grade(paths=paths, grading=grading, out_dir=out, cluster=cluster.address,
                   on_warning=warnings.append)
    assert warnings == []  # kernel slots declared, fork servers pre-started on the workers
    assert sorted(remote) == sorted(EIGHT)
    for name in EIGHT:  # `graded`: the same fixtures graded locally with --jobs 2
        assert normalised(remote[name]) == normalised(graded[name]), name
        assert remote[name].submission.path == str(paths[EIGHT.index(name)])
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 9
    # the notebooks as the workers ran them come back too (the feedback pages show them)
    local = graded["_out_dir"] / "executed"
    for name in EIGHT:
        mine = nbformat.read(out / "executed" / f"{name}.ipynb", as_version=4)
        theirs = nbformat.read(local / f"{name}.ipynb", as_version=4)
        def fates(nb):
            return [(c.cell_type, c.metadata.get("grader", {}).get("status"), len(c.get("outputs", [])))
                    for c in nb.cells]

        assert fates(mine) == fates(theirs), name
    # resume works as locally: nothing is sent to the cluster again
    again = grade(paths=paths, grading=grading, out_dir=out, cluster=cluster.address)
    assert all(again[n].graded_at == remote[n].graded_at for n in EIGHT)


def test_a_worker_killed_mid_batch_still_leaves_every_report(tmp_path, cluster, grading):
    paths = [Fixture(f"s{i}", [HEAD, net(), train(epochs=400)]).write(tmp_path / "subs") for i in range(8)]
    victim = cluster.workers[0]

    def kill_one(name, report):
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)  # mid-batch: the other worker is busy as well

    reports = grade(paths=paths, grading=grading, out_dir=tmp_path / "out",
                    cluster=cluster.address, on_report=kill_one)
    assert victim.poll() is not None
    assert len(reports) == 8 and len(list((tmp_path / "out").glob("s*.json"))) == 8
    assert all(r.status == "graded" and r.execution.status == "ok" for r in reports.values())
    assert len({r.score for r in reports.values()}) == 1  # which worker graded it does not matter


def test_a_bad_address_is_a_usage_error_within_seconds(tmp_path, capsys):
    nb = Fixture("plain", [HEAD, net(), train(epochs=5)]).write(tmp_path)
    started = time.monotonic()
    code = main(["grade", str(nb), "-a", "01-very-basics", "-o", str(tmp_path / "out"),
                 "--cluster", "tcp://127.0.0.1:9"])
    assert code == 2 and time.monotonic() - started < 15
    err = " ".join(capsys.readouterr().err.split())
    assert "no Dask scheduler answered at tcp://127.0.0.1:9 within 5 s" in err
    assert list((tmp_path / "out").glob("*.json")) == []  # nothing was graded


def test_without_the_dask_extra_the_message_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    nb = Fixture("plain", [HEAD, net(), train(epochs=5)]).write(tmp_path)
    assert main(["grade", str(nb), "-a", "01-very-basics", "-o", str(tmp_path / "out"),
                 "--cluster", "tcp://127.0.0.1:8786"]) == 2
    assert "--cluster needs Dask: pip install 'nbtorch-grader[dask]'" in capsys.readouterr().err
