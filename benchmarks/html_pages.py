"""Size and speed of the feedback pages and of the class dashboard, in headless Chromium.

    python benchmarks/html_pages.py [--n 200] [--runs 5] [--screenshots docs]

1. The solution (examples/alice) graded with ``--format html``: its page's size (goal
   <= 1 MB) and the seconds to render it.
2. A class of N submissions made from it (scores, statuses and loss curves varied, some
   that could not be graded): the seconds to write every page and the dashboard, the
   dashboard's size, and how long Chromium takes to open it (navigation start to the
   load event, and to the first contentful paint), median of ``--runs`` fresh tabs.
   Goal: the dashboard of 200 opens in under 2 s.
3. With ``--screenshots DIR``: DIR/feedback-page.png (examples/bob: one item lost),
   DIR/feedback-cells.png (its notebook, notes beside the cells) and DIR/dashboard.png.

Prints a table and writes benchmarks/results/html_pages.json. Measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.api import executed_path, grade, load_grading  # noqa: E402
from grader.html.write import write_folder  # noqa: E402
from grader.report import Report  # noqa: E402
from tests.browser import ARGS, CHROMIUM  # noqa: E402


def make_class(out: Path, solution: Report, n: int, seed: int = 7) -> None:
    """N reports (and executed notebooks) varied from the solution's."""
    rng = random.Random(seed)
    notebook = executed_path(out, "alice").read_text(encoding="utf-8")
    for k in range(n):
        name = f"student{k:03d}"
        checks = []
        for c in solution.checks:
            lost = rng.random() < 0.25
            ev = dict(c.evidence)
            if k not in (10, 11):  # one pair of near-identical answers, not a class of them
                ev.pop("fingerprint", None)
            if "loss_curve" in ev:
                scale = rng.uniform(0.3, 3)
                ev["loss_curve"] = [[e, v * scale * rng.uniform(0.9, 1.1)] for e, v in ev["loss_curve"]]
            checks.append(c.model_copy(update={
                "status": "fail" if lost else "pass", "evidence": ev,
                "score": round(c.max_score * rng.choice([0, 0.5]) if lost else c.max_score, 1)}))
        update = {"checks": checks, "score": round(sum(c.score for c in checks), 2)}
        if k % 25 == 24:
            update.update(status="error", error="XOR.ipynb: not a readable Jupyter notebook")
        report = solution.model_copy(update=update)
        (out / f"{name}.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
        executed_path(out, name).write_text(notebook, encoding="utf-8")


def open_times(browser, path: Path, runs: int) -> tuple[float, float, float]:
    """Medians: load event, first contentful paint, and every picture decoded (the lazy
    ones below the fold too), seconds from navigation start."""
    loads, paints, pictures = [], [], []
    for _ in range(runs):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(path.as_uri(), wait_until="load")
        timing = page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const fcp = performance.getEntriesByName('first-contentful-paint')[0];
            return [nav.loadEventEnd, fcp ? fcp.startTime : null];
        }""")
        loads.append(timing[0] / 1000)
        if timing[1] is not None:
            paints.append(timing[1] / 1000)
        pictures.append(page.evaluate("""async () => {
            const images = Array.from(document.images);
            images.forEach(i => { i.loading = 'eager'; });  // a lazy one off screen never loads
            await Promise.all(images.map(i => i.decode().catch(() => null)));
            return performance.now();
        }""") / 1000)
        page.close()
    return (statistics.median(loads), statistics.median(paints) if paints else float("nan"),
            statistics.median(pictures))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--screenshots", type=Path, default=None)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    grading = load_grading(assignment="01-very-basics")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="grader-html-bench-") as tmp:
        out = Path(tmp) / "out"
        grade(paths=[ROOT / "examples" / "alice", ROOT / "examples" / "bob"], grading=grading,
              out_dir=out, jobs=1)
        started = time.perf_counter()
        write_folder(out_dir=out, names=["alice"])
        results["solution_page_seconds"] = time.perf_counter() - started
        results["solution_page_kb"] = (out / "alice.html").stat().st_size / 1024
        solution = Report.model_validate_json((out / "alice.json").read_text(encoding="utf-8"))
        klass = Path(tmp) / "class"
        (klass / "executed").mkdir(parents=True)
        shutil.copy(executed_path(out, "alice"), executed_path(klass, "alice"))
        make_class(klass, solution, args.n)
        (klass / "alice.json").unlink(missing_ok=True)
        started = time.perf_counter()
        pages = write_folder(out_dir=klass)
        results["class_pages_written"] = len(pages) - 1
        results["class_write_seconds"] = time.perf_counter() - started
        results["dashboard_kb"] = (klass / "index.html").stat().st_size / 1024
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            load, paint, pictures = open_times(browser, klass / "index.html", args.runs)
            results["dashboard_open_load_event_s"] = load
            results["dashboard_first_paint_s"] = paint
            results["dashboard_all_pictures_s"] = pictures
            load, paint, pictures = open_times(browser, out / "alice.html", args.runs)
            results["solution_page_open_load_event_s"] = load
            results["solution_page_all_pictures_s"] = pictures
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                write_folder(out_dir=out, names=["bob"])
                shots = ((out / "bob.html", "", "feedback-page.png", 1100),
                         (out / "bob.html", "#cell-4", "feedback-cells.png", 1000),
                         (klass / "index.html", "", "dashboard.png", 1100))
                for source, anchor, target, height in shots:
                    page = browser.new_page(viewport={"width": 1280, "height": height})
                    page.goto(source.as_uri() + anchor, wait_until="load")
                    page.screenshot(path=str(args.screenshots / target))
                    page.close()
            browser.close()
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:10.3f}")
    target = ROOT / "benchmarks" / "results" / "html_pages.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"n": args.n, "runs": args.runs, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
