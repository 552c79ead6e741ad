"""Written answers: the grader's points against a TA's, answer by answer (no kernel).

    python benchmarks/readme_agreement.py --corpus ../shared/corpus [--show]

The corpus holds ``real/<submission>/`` and ``readme-ta-points.json`` (per submission,
q1..q5: a careful TA's points, 0-30). Prints, per answer, the grader's points, the
TA's and the difference; then the mean absolute difference, the answers off by more
than 8 points, the time per answer, and what `grader calibrate` would do if the TA's
points were overrides: fitted with grouped cross-validation (each student's answers
are scored by weights fitted on the other students only), so the figure is not a fit
to the corpus itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from grader.api import load_grading
from grader.calibrate import Sample, calibrate, SIGNALS
from grader.evidence import Evidence
from grader.pipeline import gather_answers, run_checks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--assignment", default="01-very-basics")
    ap.add_argument("--show", action="store_true", help="print every answer, not only those off by more than 5")
    ap.add_argument("--embedding-model", default=None, metavar="FOLDER",
                    help="also use this local sentence-embedding model (model2vec or sentence-transformers)")
    ap.add_argument("--embedding-weight", type=float, default=0.2,
                    help="its weight, taken from the reference signal's (default 0.2)")
    args = ap.parse_args(argv)

    ta = json.loads((args.corpus / "readme-ta-points.json").read_text(encoding="utf-8"))
    grading = load_grading(assignment=args.assignment)
    written = [i for i in grading.rubric.items if i.check == "written_answer"]
    rubric = grading.rubric.model_copy(update={"items": written})
    qid = {i.id: grading.params[i.id].question for i in written}
    params = dict(grading.params)
    if args.embedding_model:
        for i in written:
            p = params[i.id]
            w = p.weights.model_copy(update={"embedding": args.embedding_weight,
                                             "reference": max(p.weights.reference - args.embedding_weight, 0)})
            params[i.id] = p.model_copy(update={"embedding_model": args.embedding_model, "weights": w})

    rows, samples, seconds = [], [], []  # seconds: per submission
    for name, points in ta.items():
        start = time.perf_counter()
        questions, found = gather_answers(root=args.corpus / "real" / name, assignment=grading.assignment)
        results = run_checks(evidence=Evidence(questions=questions, answers=found),
                             rubric=rubric, params=params)
        seconds.append((time.perf_counter() - start, len(results)))
        for r in results:
            want = points[qid[r.id]]
            rows.append((name, qid[r.id], r.score, want, r.evidence.get("concepts_matched", [])))
            sig = r.evidence.get("signals")
            if sig:
                factor = 1.0 if r.evidence.get("in_readme") else grading.params[r.id].outside_readme_factor
                samples.append(Sample(name, r.id, tuple(float(sig.get(s) or 0) for s in SIGNALS),
                                      factor, want, r.score, r.max_score))

    print(f"{'submission':38} {'q':3} {'grader':>6} {'TA':>4} {'diff':>6}  concepts stated")
    for name, q, got, want, concepts in rows:
        if args.show or abs(got - want) > 5:
            print(f"{name[:38]:38} {q:3} {got:6.1f} {want:4} {got - want:+6.1f}  {', '.join(concepts)}")
    diffs = [got - want for _, _, got, want, _ in rows]
    mae = statistics.mean(abs(d) for d in diffs)
    off = sum(abs(d) > 8 for d in diffs)
    print(f"\nrubric as written: mean |grader - TA| {mae:.2f} points per answer; "
          f"{off}/{len(diffs)} off by more than 8; mean signed {statistics.mean(diffs):+.2f}")
    (first, n_first), rest = seconds[0], seconds[1:]
    per_answer = 1000 * sum(t for t, _ in rest) / max(sum(n for _, n in rest), 1)
    print(f"time: {per_answer:.1f} ms per answer, finding and scoring (the first submission, which "
          f"loads the dictionary and scikit-learn once: {1000 * first / n_first:.0f} ms per answer)")

    current = params[written[0].id].weights.model_dump()
    cal = calibrate(samples, current=current, folds=len(ta), step=grading.rubric.score_step)
    b, a = cal.agreement_before, cal.agreement_after
    print(f"calibrated on the TA's points, leave-one-student-out: mean |grader - TA| "
          f"{a.mean_abs:.2f}; {a.off_by_more_than_8}/{a.answers} off by more than 8 "
          f"(before: {b.mean_abs:.2f}, {b.off_by_more_than_8})")
    print("weights fitted on all of them: " + ", ".join(f"{k} {v:.3f}" for k, v in cal.after.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
