"""Fit the written answers' weights to a TA's own points: ``grader calibrate OUT``.

Every ``written_answer`` result records its signals (answered, development, concepts,
reference...) in its evidence. A TA's overrides of those items say what the answers
were worth to them. The fit is a ridge regression of the TA's fraction on the signals,
pulled towards the rubric's current weights (so 20 overrides adjust the weights, they
do not replace them), with weights kept at 0 or more: a signal never counts against an
answer. One set of weights serves all written items, which keeps the model small.

Agreement is measured on the overridden answers: before, the grader's automatic
points; after, points from weights fitted without that student's answers (grouped
k-fold cross-validation), so the figure is what the fit will do on answers it has not
seen. The fitted weights are written into a copy of the rubric (comments kept) for the
TA to review and keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.overrides import OverrideEntry
from grader.report import Report

SIGNALS = ("exists", "development", "concepts", "reference", "embedding")
MIN_ANSWERS = 6  # fewer overrides than this fit noise, not a standard


class CalibrationError(Exception):
    """Not enough to fit on; the message says what is missing and how to get it."""


@dataclass(frozen=True)
class Sample:
    submission: str
    item: str
    signals: tuple[float, ...]  # in SIGNALS order, a signal not computed as 0
    factor: float  # outside_readme_factor applied to this answer (1 in the README)
    ta_points: float
    auto_points: float
    max_points: float


@dataclass(frozen=True)
class Agreement:
    answers: int
    mean_abs: float  # points per answer
    off_by_more_than_8: int


@dataclass(frozen=True)
class Calibration:
    signals: tuple[str, ...]  # the signals fitted (the others keep their weight)
    before: dict[str, float]
    after: dict[str, float]
    agreement_before: Agreement
    agreement_after: Agreement  # cross-validated
    samples: int


def samples_from(reports: dict[str, Report], overrides: list[OverrideEntry], *,
                 written_items: dict[str, float]) -> tuple[list[Sample], list[str]]:
    """(samples, reasons for overrides not used). ``written_items``: item id -> the
    item's outside_readme_factor."""
    out, skipped = [], []
    for entry in overrides:
        if entry.item not in written_items:
            continue  # a code item: not the written answers' weights
        rep = reports.get(entry.submission)
        check = next((c for c in rep.checks if c.id == entry.item), None) if rep else None
        sig = check.evidence.get("signals") if check else None
        if check is None or not check.evidence.get("found"):
            skipped.append(f"{entry.submission}/{entry.item}: no answer was found, nothing to fit")
            continue
        if not isinstance(sig, dict):
            skipped.append(f"{entry.submission}/{entry.item}: the report has no signals "
                           "(graded by an older grader): grade it again with --force")
            continue
        auto = check.auto_score if check.auto_score is not None else check.score
        factor = 1.0 if check.evidence.get("in_readme", True) else written_items[entry.item]
        out.append(Sample(entry.submission, entry.item,
                          tuple(float(sig.get(s) or 0.0) for s in SIGNALS), factor,
                          entry.points, auto, check.max_score))
    return out, skipped


def _agreement(pred: list[float], samples: list[Sample]) -> Agreement:
    diffs = [abs(p - s.ta_points) for p, s in zip(pred, samples)]
    return Agreement(len(diffs), sum(diffs) / len(diffs), sum(d > 8 for d in diffs))


def _points(weights, x, samples: list[Sample], step: float):
    """What the written_answer check would award with these weights (clipped, rounded);
    ``x`` holds the signals with the outside-README factor applied already."""
    import numpy as np

    frac = np.clip(x @ weights, 0.0, 1.0)
    pts = np.array([s.max_points for s in samples]) * frac
    return list(np.round(pts / step) * step)


def _fit(x, y, prior, alpha: float):
    """Ridge towards ``prior``: minimise |y - x w|^2 + alpha |w - prior|^2, w >= 0."""
    import numpy as np
    from sklearn.linear_model import Ridge

    delta = Ridge(alpha=alpha, fit_intercept=False).fit(x, y - x @ prior).coef_
    return np.maximum(prior + delta, 0.0)


def calibrate(samples: list[Sample], *, current: dict[str, float], alpha: float = 1.0,
              folds: int = 5, step: float = 1.0) -> Calibration:
    import numpy as np
    from sklearn.model_selection import GroupKFold

    if len(samples) < MIN_ANSWERS:
        raise CalibrationError(
            f"{len(samples)} overridden written answer(s) with signals; at least {MIN_ANSWERS} "
            "are needed: override more answers' points in OUT/overrides.toml, then run "
            "`grader grade` into OUT again and calibrate")
    groups = [s.submission for s in samples]
    if len(set(groups)) < 2:
        raise CalibrationError("every override is of one submission; override answers of at "
                               "least two students so the fit can be cross-validated")
    # A signal that no overridden answer has (no embedding model) keeps its weight.
    used = [i for i, name in enumerate(SIGNALS)
            if any(s.signals[i] for s in samples) or name == "exists"]
    names = tuple(SIGNALS[i] for i in used)
    x = np.array([[s.signals[i] * s.factor for i in used] for s in samples])
    y = np.array([s.ta_points / s.max_points for s in samples])
    prior = np.array([current[n] for n in names])

    pred = np.zeros(len(samples))
    splitter = GroupKFold(n_splits=min(folds, len(set(groups))))
    for train, test in splitter.split(x, y, groups):
        w = _fit(x[train], y[train], prior, alpha)
        pred[test] = _points(w, x[test], [samples[i] for i in test], step)
    fitted = _fit(x, y, prior, alpha)
    after = dict(current) | {n: round(float(v), 4) for n, v in zip(names, fitted)}
    from grader.checks.written import Weights

    try:
        Weights(**after)
    except ValueError as exc:
        raise CalibrationError(f"the fitted weights cannot be used ({exc}); the overrides may "
                               "contradict each other: raise --alpha to stay nearer the rubric") from None
    return Calibration(
        signals=names, before=dict(current), after=after,
        agreement_before=_agreement([s.auto_points for s in samples], samples),
        agreement_after=_agreement(list(pred), samples),
        samples=len(samples),
    )


def write_rubric(*, source: Path, target: Path, weights: dict[str, float], items: list[str],
                 note: str) -> None:
    """A copy of the rubric at ``source`` with ``weights`` set on every item in ``items``;
    its comments and layout are kept (tomlkit), the note goes on top."""
    import tomlkit

    doc = tomlkit.parse(source.read_text(encoding="utf-8"))
    for item in doc["items"]:
        if item["id"] in items:
            table = tomlkit.inline_table()
            table.update(weights)
            item.setdefault("params", tomlkit.table())["weights"] = table
    header = "".join(f"# {line}\n" if line else "#\n" for line in note.splitlines())
    target.write_text(header + tomlkit.dumps(doc), encoding="utf-8")
