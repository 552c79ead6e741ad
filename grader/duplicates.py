"""Near-identical written answers across a batch: flagged for a TA, never deducted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

from grader.answers import similarity
from grader.report import Report

THRESHOLD = 0.8  # estimated Jaccard similarity of word 3-shingles
MIN_WORDS = 20  # shorter answers are too generic to compare


@dataclass(frozen=True)
class DuplicatePair:
    a: str
    b: str
    items: dict[str, float]  # rubric item -> similarity

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "items": self.items, "flag": "possible_duplicate"}


def find_duplicates(reports: Mapping[str, Report], *, threshold: float = THRESHOLD) -> list[DuplicatePair]:
    prints: dict[str, dict[str, list[int]]] = {}
    for name, rep in reports.items():
        for c in rep.checks:
            fp = c.evidence.get("fingerprint")
            if fp and c.evidence.get("words", 0) >= MIN_WORDS:
                prints.setdefault(name, {})[c.id] = fp
    pairs = []
    for a, b in combinations(sorted(prints), 2):
        shared = {item: round(similarity(fp, prints[b][item]), 2)
                  for item, fp in prints[a].items() if item in prints[b]}
        close = {item: s for item, s in shared.items() if s >= threshold}
        if close:
            pairs.append(DuplicatePair(a, b, close))
    return pairs
