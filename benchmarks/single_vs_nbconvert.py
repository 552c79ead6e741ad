"""Wall time of `grader grade` on one notebook vs bare `jupyter nbconvert --execute`.

    python benchmarks/single_vs_nbconvert.py [--notebook PATH] [--runs 5]

Runs the two commands alternately (so drift in machine load hits both), takes the
median of each, prints a table and writes benchmarks/results/single.json. Needs the
`bench` extra (nbconvert). Not a test: timings are measured here, never asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notebook", type=Path, default=ROOT / "assignments/01-very-basics/solution.ipynb")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/single.json")
    args = ap.parse_args(argv)
    bindir = Path(sys.executable).parent
    nbconvert = shutil.which("jupyter-nbconvert", path=str(bindir)) or "jupyter-nbconvert"
    grader = shutil.which("grader", path=str(bindir)) or "grader"
    times: dict[str, list[float]] = {"nbconvert": [], "grader": []}
    with tempfile.TemporaryDirectory() as tmp:
        nb = Path(tmp) / "nb.ipynb"
        shutil.copy(args.notebook, nb)
        for i in range(args.runs):
            times["nbconvert"].append(timed([nbconvert, "--to", "notebook", "--execute",
                                             "--output", str(Path(tmp) / "out.ipynb"), str(nb)]))
            times["grader"].append(timed([grader, "grade", str(nb), "-a", "01-very-basics", "--force",
                                          "-o", str(Path(tmp) / "reports")]))
            print(f"run {i + 1}: nbconvert {times['nbconvert'][-1]:.2f} s, grader {times['grader'][-1]:.2f} s")
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["grader"] / med["nbconvert"]
    print(f"\n{'command':12} {'median s':>9}  runs")
    for k, v in times.items():
        print(f"{k:12} {med[k]:9.2f}  {', '.join(f'{x:.2f}' for x in v)}")
    print(f"ratio grader / nbconvert: {ratio:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"notebook": str(args.notebook), "runs": times, "median": med,
                                    "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
