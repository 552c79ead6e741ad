"""How fast grading is: one notebook and batches, measured in one run.

    python benchmarks/speed.py [--n 32] [--runs 5] [--batch-runs 1] [--cold]

1. Generates N variants of the reference solution (different seeds: no two files alike).
2. One notebook, alternating, `--runs` times on variants 0, 1, ...: the notebook as a
   plain `python` script, two such scripts started together (how far two cores scale
   on their own, the ceiling for `--jobs 2`), bare `jupyter nbconvert --to notebook
   --execute`, and `grader grade` (the CLI, a fresh process each time). Medians.
3. Batch wall time for all N with `--jobs 1` and `--jobs 2`, over `--batch-runs` in
   ABBA order (1 2, 2 1, 1 2, ...) so that a machine slowing down or speeding up over
   minutes weighs on both alike; each run starts its own fork server, as a fresh
   `grader grade` does. The speed-up is given per adjacent pair and as the ratio of
   medians, with the CPU time the hypervisor took ("steal") during each batch.
   `--cold` adds `--jobs 1` with kernels started from scratch (no fork server, no
   pre-warming), which is what a plain nbclient loop pays.
4. Peak resident memory of one kernel's process group, and whether every setting gave
   the same scores.

Prints a table and writes benchmarks/results/speed.json. Needs the `bench` extra
(nbconvert). Not a test: timings are measured here, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
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


def as_script(notebook: Path, target: Path) -> Path:
    """The notebook's code cells as a plain script (IPython magics dropped)."""
    nb = nbformat.read(notebook, as_version=4)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    target.write_text("\n".join(lines) + "\n")
    return target


def timed(cmd: list[str], *, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def timed_pair(cmd: list[str], *, env: dict[str, str]) -> float:
    """Wall time of two copies of ``cmd`` started together: how the cores scale."""
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
             for _ in range(2)]
    if any(p.wait() for p in procs):
        raise subprocess.CalledProcessError(1, cmd)
    return time.perf_counter() - start


def single(paths: list[Path], runs: int, tmp: Path) -> dict[str, list[float]]:
    bindir = Path(sys.executable).parent
    nbconvert = shutil.which("jupyter-nbconvert", path=str(bindir)) or "jupyter-nbconvert"
    grader = shutil.which("grader", path=str(bindir)) or "grader"
    env = {"PATH": str(bindir) + ":/usr/bin:/bin", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "HOME": str(tmp)}
    times: dict[str, list[float]] = {"python script": [], "two python scripts at once": [],
                                     "nbconvert --execute": [], "grader grade": []}
    for i in range(runs):
        nb = next(paths[i % len(paths)].glob("*.ipynb"))
        script = as_script(nb, tmp / f"script{i}.py")
        times["python script"].append(timed([sys.executable, str(script)], env=env))
        times["two python scripts at once"].append(timed_pair([sys.executable, str(script)], env=env))
        times["nbconvert --execute"].append(timed(
            [nbconvert, "--to", "notebook", "--execute", "--output", str(tmp / f"out{i}.ipynb"), str(nb)]))
        times["grader grade"].append(timed(
            [grader, "grade", str(nb), "-a", "01-very-basics", "--force", "-o", str(tmp / f"reports{i}")]))
        print("single run {}: ".format(i + 1) + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    return times


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def batch(paths: list[Path], runs: int, cold: bool, tmp: Path) -> tuple[dict, dict, list[float]]:
    grading = load_grading(assignment=ROOT / "assignments/01-very-basics")
    execution = grading.assignment.spec.execution
    settings = {"--jobs 1": (1, True), "--jobs 2": (2, True)}
    if cold:
        settings["--jobs 1, cold kernels"] = (1, False)
    walls: dict[str, list[float]] = {s: [] for s in settings}
    host_cpu: dict[str, list[float]] = {s: [] for s in settings}
    steal: dict[str, list[float]] = {s: [] for s in settings}
    scores: dict[str, dict] = {}
    peaks: list[float] = []
    for run in range(runs):
        order = list(enumerate(settings.items()))
        for i, (name, (jobs, warm)) in order if run % 2 == 0 else order[::-1]:
            forkserver.close_all()
            execution.fork_kernels = warm
            stolen = steal_seconds()
            cpu0, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            reports = grade(paths=paths, grading=grading, out_dir=tmp / f"out-{i}-{run}", jobs=jobs, prewarm=warm)
            walls[name].append(time.monotonic() - start)
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            host_cpu[name].append(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime)
            steal[name].append(steal_seconds() - stolen)
            scores[name] = {k: [c.score for c in r.checks] for k, r in reports.items()}
            peaks += [r.execution.peak_memory_mb or 0 for r in reports.values()]
            print(f"batch run {run + 1}, {name}: {walls[name][-1]:.1f} s for {len(paths)} notebooks "
                  f"(grader process CPU {host_cpu[name][-1]:.1f} s, steal {steal[name][-1]:.1f} s)", flush=True)
    forkserver.close_all()
    same = all(v == scores["--jobs 1"] for v in scores.values())
    return walls, {"host_cpu": host_cpu, "steal": steal, "same_scores": same}, peaks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5, help="single-notebook runs (medians)")
    ap.add_argument("--batch-runs", type=int, default=1)
    ap.add_argument("--cold", action="store_true", help="also time --jobs 1 with cold kernels")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speed.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = variants(args.n, Path(tmp) / "subs")
        one = single(paths, args.runs, Path(tmp)) if args.runs else {}
        walls, extra, peaks = batch(paths, args.batch_runs, args.cold, Path(tmp))
    med_one = {k: statistics.median(v) for k, v in one.items()}
    med = {s: statistics.median(w) for s, w in walls.items()}
    speedup = med["--jobs 1"] / med["--jobs 2"]
    pairs = [a / b for a, b in zip(walls["--jobs 1"], walls["--jobs 2"])]
    if med_one:
        print(f"\n{'one notebook':<24} {'median s':>9}  runs")
        for k, v in one.items():
            print(f"{k:<24} {med_one[k]:9.2f}  {', '.join(f'{x:.2f}' for x in v)}")
        print(f"grader grade / nbconvert --execute: {med_one['grader grade'] / med_one['nbconvert --execute']:.3f}")
        print(f"the machine's own scaling, two plain scripts at once vs one: "
              f"{2 * med_one['python script'] / med_one['two python scripts at once']:.2f}x")
    print(f"\n{'batch of ' + str(args.n):<24} {'wall s':>9} {'s/notebook':>11} {'notebooks/min':>14}")
    for s in walls:
        print(f"{s:<24} {med[s]:9.1f} {med[s] / args.n:11.2f} {60 * args.n / med[s]:14.1f}")
    print(f"speed-up --jobs 2 vs --jobs 1: {speedup:.2f}x (ratio of medians); per pair "
          f"{', '.join(f'{x:.2f}' for x in pairs)}, median {statistics.median(pairs):.2f}x")
    print(f"peak kernel group memory {max(peaks):.0f} MB; "
          f"identical scores: {extra['same_scores']}")
    result = {
        "n": args.n, "single_runs": one, "single_median": med_one,
        "ratio_grader_nbconvert": (med_one["grader grade"] / med_one["nbconvert --execute"]) if med_one else None,
        "machine_scaling_two_scripts": (2 * med_one["python script"] / med_one["two python scripts at once"])
        if med_one else None,
        "batch_walls": walls, "batch_median": med, "per_notebook": {s: med[s] / args.n for s in med},
        "speedup_jobs2": speedup, "speedup_jobs2_pairs": pairs,
        "speedup_jobs2_pairs_median": statistics.median(pairs), "peak_kernel_mb": max(peaks), **extra,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
