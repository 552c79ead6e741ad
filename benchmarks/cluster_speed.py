"""A batch on a Dask cluster vs the same batch with --jobs: measured in one run.

    python benchmarks/cluster_speed.py [--n 32] [--runs 2]

N variants of the solution (as in speed.py), graded with ``--jobs 2`` and on a cluster of
two single-core workers on this machine (``dask scheduler`` + 2 × ``dask worker
--nthreads 1 --resources kernel=1``), alternating (ABBA over ``--runs`` pairs). Prints
both wall times, their ratio, the per-task overhead ((cluster - local) / N x slots) and
whether the scores were identical; writes benchmarks/results/cluster.json. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from grader import forkserver  # noqa: E402
from grader.api import grade, load_grading  # noqa: E402
from speed import variants  # noqa: E402
from tests.helpers import LocalCluster  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args(argv)
    grading = load_grading(assignment="01-very-basics")
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        paths = variants(args.n, Path(tmp) / "subs")
        cluster = LocalCluster(Path(tmp) / "cluster", workers=2)
        walls: dict[str, list[float]] = {"local": [], "cluster": []}
        scores: dict[str, dict] = {}
        order = [m for i in range(args.runs) for m in (("local", "cluster") if i % 2 == 0 else ("cluster", "local"))]
        try:
            for mode in order:
                forkserver.close_all()  # a fresh run's own fork server, as `grader grade` has
                t = time.perf_counter()
                reports = grade(paths=paths, grading=grading, jobs=2,
                                cluster=cluster.address if mode == "cluster" else None)
                walls[mode].append(time.perf_counter() - t)
                scores.setdefault(mode, {n: (r.score, r.status, r.error) for n, r in reports.items()})
        finally:
            cluster.close()
    local, remote = statistics.median(walls["local"]), statistics.median(walls["cluster"])
    result = {
        "n": args.n, "order": order,
        "local_jobs_2_s": [round(w, 2) for w in walls["local"]],
        "cluster_2_workers_s": [round(w, 2) for w in walls["cluster"]],
        "ratio_of_medians": round(remote / local, 3),
        "overhead_per_task_s": round((remote - local) * 2 / args.n, 3),
        "rate_per_core_per_min": round(60 * args.n / local / 2, 2),
        "scores_identical": scores["local"] == scores["cluster"],
    }
    for name in sorted(scores["local"]):
        if scores["local"][name] != scores["cluster"].get(name):
            print(f"differs: {name}: --jobs 2 {scores['local'][name]}, cluster {scores['cluster'].get(name)}")
    print(f"{args.n} notebooks ({' '.join(order)}): --jobs 2 {result['local_jobs_2_s']} s, "
          f"cluster of 2 workers {result['cluster_2_workers_s']} s; cluster/local "
          f"{result['ratio_of_medians']}; overhead {result['overhead_per_task_s']} s a task; "
          f"{result['rate_per_core_per_min']} submissions a minute per core; scores identical: "
          f"{result['scores_identical']}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
