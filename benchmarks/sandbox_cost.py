"""What the sandbox costs: per kernel, and on a batch.

    python benchmarks/sandbox_cost.py [--n 16] [--batch-runs 2]

1. Kernel start (``timings.kernel_start``: from asking for a kernel to its first reply)
   of N forked kernels one after another, no pre-warming, the sandbox on and off in
   alternation; medians and the difference.
2. The sandbox's own set-up, measured apart: the launcher running ``true``-like Python
   in a sandbox vs the same Python outside (what a cold kernel adds).
3. Batch wall time of N variants of the solution with ``--jobs 2``, on and off, in ABBA
   order over ``--batch-runs`` pairs; scores must be identical.

Prints a table and writes benchmarks/results/sandbox.json. Not a test: measured, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader import forkserver
from grader.api import grade, load_grading, with_sandbox
from grader.sandbox import launcher, policy
from grader.spec import Execution

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import variants  # noqa: E402  (the same N solution variants as speed.py)

ROOT = Path(__file__).resolve().parent.parent


def kernel_starts(paths: list[Path], grading, mode: str) -> tuple[list[float], dict]:
    g = with_sandbox(grading, mode)
    reports = grade(paths=paths, grading=g, jobs=1, prewarm=False)
    return [r.timings["kernel_start"] for r in reports.values()], {n: r.score for n, r in reports.items()}


def setup_cost(runs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        pol = launcher(policy(workspace=Path(tmp), budget=Execution()), tmp)
        plain, boxed = [], []
        for _ in range(runs):
            for target, cmd in ((plain, [sys.executable, "-S", "-c", "pass"]),
                                (boxed, [*pol, sys.executable, "-S", "-c", "pass"])):
                t = time.perf_counter()
                subprocess.run(cmd, check=True)
                target.append(time.perf_counter() - t)
    return statistics.median(plain), statistics.median(boxed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch-runs", type=int, default=2)
    args = ap.parse_args(argv)
    grading = load_grading(assignment="01-very-basics")
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        paths = variants(args.n, Path(tmp))
        starts = {"on": [], "off": []}
        scores = {}
        for mode in ("on", "off", "on", "off"):
            got, scores[mode] = kernel_starts(paths[: args.n // 2], grading, "require" if mode == "on" else "off")
            starts[mode] += got[1:]  # the first waits for the fork server to start
        on, off = statistics.median(starts["on"]), statistics.median(starts["off"])
        result["kernel_start_ms"] = {"sandbox": round(1000 * on, 1), "none": round(1000 * off, 1),
                                     "added": round(1000 * (on - off), 1), "kernels": len(starts["on"])}
        plain, boxed = setup_cost(20)
        result["launcher_ms"] = {"plain": round(1000 * plain, 1), "sandbox": round(1000 * boxed, 1),
                                 "added": round(1000 * (boxed - plain), 1)}
        walls = {"on": [], "off": []}
        batch_scores = {}
        order = [m for i in range(args.batch_runs) for m in (("on", "off") if i % 2 == 0 else ("off", "on"))]
        for mode in order:
            forkserver.close_all()  # each batch starts its own fork server, as a fresh run does
            t = time.perf_counter()
            reports = grade(paths=paths, grading=with_sandbox(grading, "require" if mode == "on" else "off"), jobs=2)
            walls[mode].append(time.perf_counter() - t)
            batch_scores.setdefault(mode, {n: r.score for n, r in reports.items()})
        result["batch"] = {"n": args.n, "jobs": 2, "order": order,
                           "sandbox_s": [round(w, 2) for w in walls["on"]],
                           "none_s": [round(w, 2) for w in walls["off"]],
                           "ratio_of_medians": round(statistics.median(walls["on"]) / statistics.median(walls["off"]), 3)}
        result["scores_identical"] = batch_scores["on"] == batch_scores["off"]
    k, l, b = result["kernel_start_ms"], result["launcher_ms"], result["batch"]
    print(f"kernel start (forked, median of {k['kernels']}): sandbox {k['sandbox']} ms, none {k['none']} ms, "
          f"added {k['added']} ms")
    print(f"launcher (python -S -c pass): sandbox {l['sandbox']} ms, plain {l['plain']} ms, added {l['added']} ms")
    print(f"batch of {b['n']} --jobs 2 ({' '.join(b['order'])}): sandbox {b['sandbox_s']} s, none {b['none_s']} s, "
          f"ratio of medians {b['ratio_of_medians']}; scores identical: {result['scores_identical']}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
