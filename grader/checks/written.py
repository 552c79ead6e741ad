"""`written_answer`: points for an answer to one of the assignment's questions.

Transparent on purpose: the rubric holds the weights, the word targets, the concepts
(with their weights, terms and same-sentence groups) and the model answers; the
evidence shows what was found, where, each signal, which concepts were stated and by
which sentence, and flags answers a TA should read (``needs_review``).

    fraction = w_exists      * answered
             + w_development * min(words / target_words, 1)
             + w_concepts    * min(weight of the concepts stated / concepts_for_full, 1)
             + w_reference   * min(similarity to the closest model answer / similarity_for_full, 1)

How a concept is shown (and misspelled) is in ``grader.checks.concepts``; the
similarity in ``grader.checks.similarity``. ``grader calibrate`` refits the weights to
a TA's overrides.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from grader.answers import content_words, fingerprint
from grader.checks import Outcome, register
from grader.checks.concepts import Concept, ConceptMatch, match_concepts
from grader.checks.similarity import embedder_for, embedding_problem, references_for
from grader.evidence import Evidence
from grader.models import Strict


class Weights(Strict):
    """How the signals combine: fraction = sum of weight x signal over the signals in
    use, each signal 0..1. A signal the item cannot compute (no model answers, no
    embedding model) is left out and the others are scaled up to the same total.
    ``grader calibrate`` fits these to a TA's overrides."""

    exists: float = Field(0.15, ge=0, description="Share of the points for any real answer.")
    development: float = Field(0.1, ge=0, description="Share for length up to target_words.")
    concepts: float = Field(0.5, ge=0, description="Share for the concepts covered (by weight).")
    reference: float = Field(
        0.25, ge=0, description="Share for similarity to the model answers (references)."
    )
    embedding: float = Field(
        0.0, ge=0, description="Share for meaning similarity from embedding_model, if one is given."
    )

    @model_validator(mode="after")
    def _total(self) -> "Weights":
        total = self.exists + self.development + self.concepts + self.reference + self.embedding
        if not 0 < total <= 2:
            raise ValueError(f"weights add up to {total:g}; keep the total above 0 and at most 2 "
                             "(1 gives full points to an answer with every signal at its best)")
        return self


class WrittenParams(Strict):
    @field_validator("embedding_model")
    @classmethod
    def _model_folder(cls, value: str | None) -> str | None:
        if value is not None and (why := embedding_problem(Path(value).expanduser())):
            raise ValueError(why)
        return value

    @model_validator(mode="after")
    def _embedding_needs_references(self) -> "WrittenParams":
        if self.embedding_model and not self.references:
            raise ValueError("embedding_model compares answers with the references: add references")
        return self

    question: str = Field(description="Question id from the assignment spec's [answers].")
    target_words: int = Field(60, ge=1, description="Words for full development credit.")
    min_words: int = Field(12, ge=0, description="Shorter answers are flagged for review.")
    concepts: list[Concept] = Field(
        default_factory=list, description="The key ideas of a good answer, each with its terms, "
                                          "same-sentence groups and weight.")
    concepts_for_full: float = Field(
        3, gt=0, description="Summed concept weight needed for full concept credit."
    )
    references: list[str] = Field(
        default_factory=list,
        description="Model answers in different words; similarity to the closest is a signal.",
    )
    similarity_for_full: float = Field(
        0.45, gt=0, le=1, description="Cosine similarity to a model answer that earns the full "
                                      "reference share (a good answer in other words reaches ~0.4).",
    )
    embedding_model: str | None = Field(
        None, description="Folder of a local sentence-embedding model (model2vec, or "
                          "sentence-transformers with its modules.json) that adds a meaning "
                          "signal against the references; nothing is downloaded.",
    )
    embedding_range: tuple[float, float] = Field(
        (0.3, 0.8), description="Embedding cosine that earns nothing, and the one that earns "
                                "the full embedding share.",
    )
    disagreement: float = Field(
        0.5, ge=0, le=1, description="Concept and reference signals further apart than this "
                                     "flag the answer for review.",
    )
    weights: Weights = Field(default_factory=Weights, description="How the signals add up "
                                                                 "(fitted by `grader calibrate`).")
    pass_fraction: float = Field(0.6, ge=0, le=1, description="Shown as passed from this fraction.")
    keyword_list_factor: float = Field(
        0.5, ge=0, le=1, description="Concept credit kept when the answer is keywords, not sentences."
    )
    outside_readme_factor: float = Field(
        1.0, ge=0, le=1,
        description="Share of the points kept when the answer is not in a README (another "
                    "Markdown file, a notebook's markdown cells); it is flagged for review either way.",
    )


def _shown(concept: str, fuzzy: dict[str, str]) -> str:
    return f"{concept} (read from “{fuzzy[concept]}”)" if concept in fuzzy else concept


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_IMAGE = re.compile(r"!\[[^\]]*\]\(|<img\b", re.I)  # a formula or a figure as a picture


@dataclass(frozen=True)
class Signals:
    """Each signal 0..1 (None: not computed for this item). Recorded in the evidence, so
    ``grader calibrate`` refits the weights from reports without grading again."""

    exists: float
    development: float
    concepts: float
    reference: float | None
    embedding: float | None = None

    def used(self, w: Weights) -> list[str]:
        """The signals that counted: computed, with a weight above 0."""
        return [k for k, v in asdict(self).items() if v is not None and getattr(w, k) > 0]

    def combine(self, w: Weights) -> float:
        pairs = [(w.exists, self.exists), (w.development, self.development),
                 (w.concepts, self.concepts), (w.reference, self.reference),
                 (w.embedding, self.embedding)]
        used = [(weight, value) for weight, value in pairs if value is not None]
        total = sum(weight for weight, _ in pairs)
        in_use = sum(weight for weight, _ in used)
        if in_use == 0:
            return 0.0
        return min(sum(weight * value for weight, value in used) * total / in_use, 1.0)


def signals(ans, p: WrittenParams, *, question: str, known: frozenset[str]) -> tuple[Signals, ConceptMatch]:
    """The signals of one found answer (pure: the answer, the item's params)."""
    concepts = match_concepts(ans.text, p.concepts, known=known)
    keyword_list = "keywords without sentences" in ans.flags
    development = 0.0 if keyword_list else min(ans.words / p.target_words, 1.0)
    if p.concepts:
        full = min(p.concepts_for_full, sum(c.weight for c in p.concepts))
        concept_share = min(concepts.weight / full, 1.0) if full else 1.0
    else:
        concept_share = 1.0
    if keyword_list:
        concept_share *= p.keyword_list_factor
    refs = references_for(tuple(p.references), question)
    reference = None
    if refs is not None:
        reference = min(refs.similarity(ans.text) / p.similarity_for_full, 1.0)
        if keyword_list:
            reference *= p.keyword_list_factor
    embedding = None
    if p.embedding_model and p.references:
        low, high = p.embedding_range
        cos = embedder_for(p.embedding_model).similarity(ans.text, tuple(p.references))
        embedding = min(max((cos - low) / max(high - low, 1e-9), 0.0), 1.0)
        if keyword_list:
            embedding *= p.keyword_list_factor
    return Signals(1.0, development, concept_share, reference, embedding), concepts


@register("written_answer", WrittenParams)
def written_answer(ev: Evidence, p: WrittenParams) -> Outcome:
    """An answer to question `question`, scored on presence, length, the concepts it
    states and its similarity to the model answers."""
    question = ev.questions.get(p.question)
    if question is None:
        return Outcome.errored(f"the assignment spec has no question '{p.question}'")
    ans = ev.answers.get(p.question)
    if ans is None or not ans.found:
        flags = ans.flags if ans else []
        why = f" ({'; '.join(flags)})" if flags else ""
        return Outcome.failed(
            f"no answer found to “{question}”{why}: write it in README.md under a heading "
            "that repeats the question",
            found=False, needs_review=bool(flags), review_reasons=flags, words=0,
        )
    known = frozenset(w for q in ev.questions.values() for w in content_words(q))
    sig, concepts = signals(ans, p, question=question, known=known)
    hit, miss = concepts.hit, concepts.missed
    fraction = sig.combine(p.weights)
    if ans.source_kind != "readme":
        fraction *= p.outside_readme_factor
    reasons = list(ans.flags)
    if ans.words < p.min_words and "very short" not in reasons:
        reasons.append("very short")
    if ans.source_kind != "readme":
        reasons.append(f"answer is in {ans.source}, not in the README")
    if images := len(_IMAGE.findall(ans.text)):
        reasons.append(f"{images} image(s) in the answer, which the grader cannot read")
    if sig.reference is not None and abs(sig.concepts - sig.reference) > p.disagreement:
        reasons.append(f"the signals disagree: key ideas {sig.concepts:.0%}, "
                       f"likeness to the model answers {sig.reference:.0%}")
    evidence = {
        "found": True,
        "source": ans.source,
        "in_readme": ans.source_kind == "readme",
        "under": ans.marker,
        "excerpt": _excerpt(ans.text),
        "words": ans.words,
        "concepts_matched": hit,
        "concepts_missed": miss,
        "concepts_fuzzy": concepts.fuzzy,  # concept -> the misspelled words that showed it
        "concepts_sentences": concepts.sentences,  # concept -> the sentence that stated it
        "signals": {k: (None if v is None else round(v, 4)) for k, v in asdict(sig).items()},
        "signals_used": sig.used(p.weights),
        "needs_review": bool(reasons),
        "review_reasons": reasons,
        "fingerprint": fingerprint(ans.text),
    }
    where = f"in {ans.source}" + (f" under “{ans.marker.strip('#*> ')}”" if ans.marker else "")
    shown = [_shown(c, concepts.fuzzy) for c in hit]
    covered = f"covers {', '.join(shown)}" if hit else "states none of the key ideas yet"
    missing = f"; not yet: {', '.join(miss)}" if miss and p.concepts else ""
    message = f"answer found {where} — {ans.words} words; {covered}{missing}"
    if reasons:
        message += f" (for review: {'; '.join(reasons)})"
    if fraction >= p.pass_fraction:
        return Outcome("pass", message, fraction, evidence)
    return Outcome("fail", message, fraction, evidence)
