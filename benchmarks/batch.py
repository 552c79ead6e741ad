"""Batch throughput: `grader grade` of N notebooks with --jobs 1 and --jobs 2.

    python benchmarks/batch.py [--n 32] [--runs 1] [--cold]

Generates N variants of the reference solution (different seeds, so no two are the
same file), grades them with each setting (alternating when --runs > 1), and reports
wall time, rate, speed-up, peak resident memory of one kernel group, and whether the
scores are identical across settings. Every run starts its own fork server, as a fresh
`grader grade` would. --cold adds `--jobs 1` with kernels started from scratch (no fork
server, no pre-warming), the way a plain nbclient loop would. Writes
benchmarks/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader import forkserver
from grader.api import grade, load_grading

ROOT = Path(__file__).resolve().parent.parent
SEED = re.compile(r"torch\.manual_seed\(\d+\)")


def variants(n: int, folder: Path) -> list[Path]:
    nb = nbformat.read(ROOT / "assignments/01-very-basics/solution.ipynb", as_version=4)
    paths = []
    for i in range(n):
        copy = nbformat.from_dict(nb)
        for cell in copy.cells:
            if cell.cell_type == "code":
                cell.source = SEED.sub(f"torch.manual_seed({100 + i})", cell.source)
        sub = folder / f"student{i:03d}"
        sub.mkdir(parents=True)
        nbformat.write(copy, sub / "XOR.ipynb")
        paths.append(sub)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cold", action="store_true", help="also measure --jobs 1 with cold kernels")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/batch.json")
    args = ap.parse_args(argv)
    grading = load_grading(assignment=ROOT / "assignments/01-very-basics")
    execution = grading.assignment.spec.execution
    settings = {"jobs 1": (1, True), "jobs 2": (2, True)}
    if args.cold:
        settings["jobs 1, cold kernels"] = (1, False)
    walls: dict[str, list[float]] = {s: [] for s in settings}
    scores: dict[str, dict] = {}
    peaks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = variants(args.n, Path(tmp) / "subs")
        for run in range(args.runs):
            for i, (name, (jobs, warm)) in enumerate(settings.items()):
                forkserver.close_all()  # every run pays for starting its own server
                execution.fork_kernels = warm
                start = time.monotonic()
                reports = grade(paths=paths, grading=grading, out_dir=Path(tmp) / f"out-{i}-{run}",
                                jobs=jobs, prewarm=warm)
                walls[name].append(time.monotonic() - start)
                scores[name] = {k: [c.score for c in r.checks] for k, r in reports.items()}
                peaks += [r.execution.peak_memory_mb or 0 for r in reports.values()]
                print(f"run {run + 1}, {name}: {walls[name][-1]:.1f} s for {args.n} notebooks", flush=True)
    med = {s: statistics.median(w) for s, w in walls.items()}
    rate = {s: args.n / med[s] for s in med}
    result = {
        "n": args.n, "walls": walls, "median_wall": med, "per_notebook": {s: med[s] / args.n for s in med},
        "rate_per_min": {s: 60 * rate[s] for s in rate}, "speedup_jobs2": rate["jobs 2"] / rate["jobs 1"],
        "peak_kernel_mb": max(peaks), "same_scores": all(v == scores["jobs 1"] for v in scores.values()),
    }
    print(f"\n{'setting':<22} {'wall s':>8} {'s/notebook':>11} {'notebooks/min':>14}")
    for s in settings:
        print(f"{s:<22} {med[s]:8.1f} {med[s] / args.n:11.2f} {60 * rate[s]:14.1f}")
    print(f"speed-up --jobs 2 vs --jobs 1: {result['speedup_jobs2']:.2f}x; peak kernel group memory "
          f"{result['peak_kernel_mb']:.0f} MB; identical scores: {result['same_scores']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
