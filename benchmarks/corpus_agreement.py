"""Agreement of the grader with a labelled corpus of real submissions.

    python benchmarks/corpus_agreement.py --corpus ../shared/corpus [--reports DIR] [--jobs 2]

The corpus folder holds ``real/<submission>/`` and ``labels.json`` (per submission:
the notebook, the measured values and the verdict per code check). Grades every
submission (unless --reports points at existing reports), then prints a table of
measured vs labelled values and writes it as JSON next to the reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grader.api import grade, load_grading, read_reports

# label field -> (rubric item, evidence key)
MEASURES = {
    "trainable_params": ("param_count", "trainable_params"),
    "final_activation": ("final_activation_removed", "final_op"),
    "hidden_activation": ("hidden_activation_kept", "hidden_activations"),
    "epochs_run": ("epochs", "epochs_run"),
}
VERDICTS = {"param_count": "param_count", "final_activation_removed": "final_activation_removed",
            "epochs": "epochs"}


def measured(report, field: str):
    item, key = MEASURES[field]
    check = next((c for c in report.checks if c.id == item), None)
    if check is None:
        return None
    value = check.evidence.get(key)
    if field == "final_activation":
        return "present" if value else ("absent" if check.status in ("pass", "fail") else None)
    if field == "hidden_activation":
        return "present" if value else ("absent" if check.status in ("pass", "fail") else None)
    if field == "epochs_run" and value is None and check.status == "fail":
        return 0
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--assignment", default="01-very-basics")
    ap.add_argument("--reports", type=Path, default=Path("benchmarks/results/corpus"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reuse", action="store_true", help="use reports already in --reports")
    args = ap.parse_args(argv)

    labels = json.loads((args.corpus / "labels.json").read_text(encoding="utf-8"))
    grading = load_grading(assignment=args.assignment)
    if not args.reuse:
        paths = [args.corpus / "real" / entry["submission"] for entry in labels]
        grade(paths=paths, grading=grading, out_dir=args.reports, jobs=args.jobs)
    reports = read_reports(args.reports, assignment=grading.assignment.id)

    rows, agree, total = [], 0, 0
    for entry in labels:
        name = entry["submission"]
        rep = reports.get(name)
        row = {"submission": name, "score": rep.score if rep else None, "fields": {}, "verdicts": {}}
        for field in MEASURES:
            got = measured(rep, field) if rep else None
            row["fields"][field] = {"label": entry["expected"][field], "measured": got}
        readme = [c for c in rep.checks if c.check == "written_answer"] if rep else []
        found = sum(1 for c in readme if c.evidence.get("found"))
        in_readme = sum(1 for c in readme if c.evidence.get("in_readme"))
        row["readme"] = {
            "found": found, "in_readme": in_readme, "points": sum(c.score for c in readme),
            "max": sum(c.max_score for c in readme),
            "review": [c.id for c in readme if c.evidence.get("needs_review")],
        }
        want = entry["expected"]["readme_answers_all_five"]
        got = bool(readme) and in_readme == len(readme)
        row["verdicts"]["readme_answers_all_five"] = {"label": want, "measured": got, "agree": got == want}
        agree += got == want
        total += 1
        for label_key, item in VERDICTS.items():
            want = entry["code_checks_pass"][label_key]
            check = next((c for c in rep.checks if c.id == item), None) if rep else None
            got = check.status == "pass" if check else None
            row["verdicts"][label_key] = {"label": want, "measured": got, "agree": got == want}
            agree += got == want
            total += 1
        rows.append(row)

    head = (f"{'submission':40} {'params':>9} {'final act':>17} {'hidden act':>17} {'epochs':>11}"
            f"  {'README found/in README':>22} {'points':>8}  verdicts (readme/p/f/e)")
    print(head)
    print("-" * len(head))
    for row in rows:
        f = row["fields"]
        cells = [f"{f[k]['measured']}/{f[k]['label']}" for k in MEASURES]
        marks = "".join("=" if v["agree"] else "X" for v in row["verdicts"].values())
        rd = row["readme"]
        print(f"{row['submission'][:40]:40} {cells[0]:>9} {cells[1]:>17} {cells[2]:>17} {cells[3]:>11}"
              f"  {str(rd['found']) + '/5 ' + str(rd['in_readme']) + '/5':>22} {rd['points']:8.1f}  {marks}")
    print(f"\nverdicts agreeing with labels: {agree}/{total}  (cells: measured/label; "
          "README: all five answered in the README itself)")
    out = args.reports / "agreement.json"
    out.write_text(json.dumps({"agree": agree, "total": total, "rows": rows}, indent=2), encoding="utf-8")
    print(f"written: {out}")
    return 0 if agree == total else 1


if __name__ == "__main__":
    sys.exit(main())
