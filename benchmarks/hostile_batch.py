"""Grade every hostile/broken case in one batch and print the table for the record.

    python benchmarks/hostile_batch.py [--jobs 2]

Uses the cases of tests/fixtures/hostile.py with the tight budgets of the tests
(8 s per cell, 60 s per notebook), then reports per case: report status, execution
status, reason, code and total score, wall time, and what survived (marked processes,
grader temp folders). Writes benchmarks/results/hostile.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import forkserver  # noqa: E402
from grader.api import grade, unique_names  # noqa: E402
from tests.fixtures.hostile import CASES  # noqa: E402
from tests.fixtures.notebooks import code_score  # noqa: E402
from tests.test_hostile import grader_temp_dirs, marker_processes, tight_assignment  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/hostile.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        grading = tight_assignment(base / "grader")
        (base / "subs").mkdir()
        paths = []
        for case in CASES:
            built = case.build(base / "subs" / case.name)
            paths.append(built if built.is_dir() else built.parent)
        before = grader_temp_dirs()
        started = time.monotonic()
        reports = grade(paths=paths, grading=grading, out_dir=base / "out", jobs=args.jobs)
        wall = time.monotonic() - started
        left = marker_processes()
        forkserver.close_all()  # as the grader's exit does
        stray_dirs = sorted(grader_temp_dirs() - before)
        rows = []
        for case, name in zip(CASES, unique_names(paths)):
            r = reports[name]
            rows.append({
                "case": case.name, "status": r.status, "execution": r.execution.status,
                "reason": (r.error or r.execution.reason or "")[:90],
                "code": code_score(r), "score": r.score, "seconds": r.timings.get("total", 0.0),
                "peak_mb": r.execution.peak_memory_mb,
            })
    print("| case | status | execution | reason | code pts | wall s | peak MB |\n|---|---|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['case']} | {row['status']} | {row['execution']} | {row['reason']} | "
              f"{row['code']:g} | {row['seconds']:.1f} | {row['peak_mb'] or '-'} |")
    print(f"\nbatch wall time {wall:.0f} s with --jobs {args.jobs}; processes left: {len(left)}; "
          f"grader temp folders left: {len(stray_dirs)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "wall": wall, "left": left, "stray_dirs": stray_dirs}, indent=2))
    return 0 if not left and not stray_dirs else 1


if __name__ == "__main__":
    sys.exit(main())
