"""Batch throughput: `grader grade` of N notebooks with --jobs 1 and --jobs 2.

    python benchmarks/batch.py [--n 32] [--runs 1]

Generates N variants of the reference solution (different seeds, so no two are the
same file), grades them with each --jobs setting (alternating when --runs > 1), and
reports wall time, rate, speed-up, peak resident memory of one kernel group, and
whether the scores are identical across --jobs. Writes benchmarks/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.api import grade, load_grading

ROOT = Path(__file__).resolve().parent.parent


def variants(n: int, folder: Path) -> list[Path]:
    nb = nbformat.read(ROOT / "assignments/01-very-basics/solution.ipynb", as_version=4)
    paths = []
    for i in range(n):
        copy = nbformat.from_dict(nb)
        for cell in copy.cells:
            if cell.cell_type == "code" and "torch.manual_seed(2)" in cell.source:
                cell.source = cell.source.replace("torch.manual_seed(2)", f"torch.manual_seed({i})")
        sub = folder / f"student{i:03d}"
        sub.mkdir(parents=True)
        nbformat.write(copy, sub / "XOR.ipynb")
        paths.append(sub)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/batch.json")
    args = ap.parse_args(argv)
    grading = load_grading(assignment=ROOT / "assignments/01-very-basics")
    walls: dict[int, list[float]] = {1: [], 2: []}
    scores: dict[int, dict] = {}
    peaks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = variants(args.n, Path(tmp) / "subs")
        for run in range(args.runs):
            for jobs in (1, 2):
                start = time.monotonic()
                reports = grade(paths=paths, grading=grading, out_dir=Path(tmp) / f"out-{jobs}-{run}", jobs=jobs)
                walls[jobs].append(time.monotonic() - start)
                scores[jobs] = {k: [c.score for c in r.checks] for k, r in reports.items()}
                peaks += [r.execution.peak_memory_mb or 0 for r in reports.values()]
                print(f"run {run + 1}, --jobs {jobs}: {walls[jobs][-1]:.1f} s for {args.n} notebooks")
    med = {j: statistics.median(w) for j, w in walls.items()}
    rate = {j: args.n / med[j] for j in med}
    result = {
        "n": args.n, "walls": walls, "median_wall": med, "per_notebook": {j: med[j] / args.n for j in med},
        "rate_per_min": {j: 60 * rate[j] for j in rate}, "speedup_jobs2": rate[2] / rate[1],
        "peak_kernel_mb": max(peaks), "same_scores": scores[1] == scores[2],
    }
    print(f"\n{'jobs':>4} {'wall s':>8} {'s/notebook':>11} {'notebooks/min':>14}")
    for j in (1, 2):
        print(f"{j:>4} {med[j]:8.1f} {med[j] / args.n:11.2f} {60 * rate[j]:14.1f}")
    print(f"speed-up --jobs 2 vs 1: {result['speedup_jobs2']:.2f}x; peak kernel group memory "
          f"{result['peak_kernel_mb']:.0f} MB; identical scores: {result['same_scores']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
