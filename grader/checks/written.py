"""`written_answer`: points for an answer to one of the assignment's questions.

Transparent on purpose: the rubric holds the formula's weights, the word targets and
the concept lists with their synonyms; the evidence shows what was found, where, and
which concepts matched, and flags answers a TA should read (``needs_review``).

    fraction = w_exists * answered
             + w_development * min(words / target_words, 1)
             + w_concepts * min(concepts matched / concepts_for_full, 1)

A misspelled term still shows its concept ("derivitive" for "derivative*"); the evidence
names the word in ``concepts_fuzzy`` so a TA can see it. What counts as a misspelling,
and what never does (real words, short words), is in ``grader.spelling``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.answers import content_words, fingerprint
from grader.checks import Outcome, register
from grader.evidence import Evidence
from grader.spelling import Speller, Target, tokens


class Concept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Shown to students as covered / not yet covered.")
    terms: list[str] = Field(
        min_length=1,
        description="Words or phrases that show the concept; a trailing * matches any ending.",
    )


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exists: float = Field(0.3, ge=0, description="Share of the points for any real answer.")
    development: float = Field(0.3, ge=0, description="Share for length up to target_words.")
    concepts: float = Field(0.4, ge=0, description="Share for the concepts covered.")

    @model_validator(mode="after")
    def _sum_to_one(self) -> "Weights":
        total = self.exists + self.development + self.concepts
        if abs(total - 1) > 1e-6:
            raise ValueError(f"weights must add up to 1, not {total:g}")
        return self


class WrittenParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="Question id from the assignment spec's [answers].")
    target_words: int = Field(60, ge=1, description="Words for full development credit.")
    min_words: int = Field(12, ge=0, description="Shorter answers are flagged for review.")
    concepts: list[Concept] = Field(default_factory=list)
    concepts_for_full: int = Field(3, ge=1, description="Concepts needed for full concept credit.")
    weights: Weights = Field(default_factory=Weights)
    pass_fraction: float = Field(0.6, ge=0, le=1, description="Shown as passed from this fraction.")
    keyword_list_factor: float = Field(
        0.5, ge=0, le=1, description="Concept credit kept when the answer is keywords, not sentences."
    )
    outside_readme_factor: float = Field(
        1.0, ge=0, le=1,
        description="Share of the points kept when the answer is not in a README (another "
                    "Markdown file, a notebook's markdown cells); it is flagged for review either way.",
    )


@lru_cache(maxsize=512)
def _pattern(term: str) -> re.Pattern:
    wild = term.endswith("*")
    body = re.escape(term.rstrip("*").lower()).replace(r"\ ", r"\s+")
    return re.compile(rf"(?<![a-z0-9]){body}{'[a-z-]*' if wild else ''}(?![a-z0-9])")


@dataclass
class ConceptMatch:
    hit: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    fuzzy: dict[str, str] = field(default_factory=dict)  # concept -> the misspelled words


def matched_concepts(text: str, concepts: list[Concept]) -> tuple[list[str], list[str]]:
    """Concepts named as written, and the rest (no misspellings: see match_concepts)."""
    low = text.lower()
    hit, miss = [], []
    for c in concepts:
        (hit if any(_pattern(t).search(low) for t in c.terms) else miss).append(c.name)
    return hit, miss


def match_concepts(
    text: str, concepts: list[Concept], *, known: frozenset[str] = frozenset()
) -> ConceptMatch:
    """Concepts named in the text, as written or misspelled; `known` are words never read
    as a misspelling of a term (the questions' words: "neuron" is not a typo of anything)."""
    hit, missed = matched_concepts(text, concepts)
    result = ConceptMatch(hit=hit)
    toks = tokens(text)
    speller = _concept_speller(tuple(tuple(c.terms) for c in concepts), known)
    misspelled: dict[Target, list[str]] = {}  # target -> the answer's words read as it
    for tok in dict.fromkeys(toks):
        if tok and (target := speller.meant(tok)):
            misspelled.setdefault(target, []).append(tok)
    for c in concepts:
        if c.name in hit:
            continue  # an exact match always wins over a fuzzy one
        shown = next((w for term in c.terms if (w := _fuzzy_term(term, toks, misspelled))), None)
        if shown:
            result.hit.append(c.name)
            result.fuzzy[c.name] = shown
    order = {c.name: i for i, c in enumerate(concepts)}
    result.hit.sort(key=order.__getitem__)
    result.missed = [name for name in missed if name not in result.fuzzy]
    return result


def _term_words(term: str) -> list[Target] | None:
    """A term as targets, one per word ("dot product" -> dot, product; "backprop*" ->
    backprop with any ending); None for terms with more than letters ("f(g", "dy/dx")."""
    wild = term.endswith("*")
    parts = re.split(r"[\s-]+", term.rstrip("*").lower().strip())
    if not parts or not all(re.fullmatch(r"[a-z]+", p) for p in parts):
        return None
    return [Target(p, wild and i == len(parts) - 1) for i, p in enumerate(parts)]


@lru_cache(maxsize=256)
def _concept_speller(terms: tuple[tuple[str, ...], ...], known: frozenset[str]) -> Speller:
    """Every word of every term of one rubric item: built once per item, not per answer."""
    targets = {t for group in terms for term in group for t in (_term_words(term) or [])}
    return Speller(targets, known)


def _fuzzy_term(term: str, toks: list[str], misspelled: dict[Target, list[str]]) -> str | None:
    """The answer's words that spell out this term with at least one misspelling."""
    targets = _term_words(term)
    if not targets or not any(t in misspelled for t in targets):
        return None
    if len(targets) == 1:
        return misspelled[targets[0]][0]
    n = len(targets)
    for i in range(len(toks) - n + 1):
        window = toks[i : i + n]
        ways = [_spelled(tok, t, misspelled) for tok, t in zip(window, targets)]
        if all(ways) and "fuzzy" in ways:
            return " ".join(window)
    return None


def _spelled(tok: str, target: Target, misspelled: dict[Target, list[str]]) -> str | None:
    if tok == target.text or (target.prefix and tok.startswith(target.text)):
        return "exact"
    return "fuzzy" if tok in misspelled.get(target, ()) else None


def _shown(concept: str, fuzzy: dict[str, str]) -> str:
    return f"{concept} (read from “{fuzzy[concept]}”)" if concept in fuzzy else concept


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@register("written_answer", WrittenParams)
def written_answer(ev: Evidence, p: WrittenParams) -> Outcome:
    """An answer to question `question`, scored on presence, length and concepts."""
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
    concepts = match_concepts(ans.text, p.concepts, known=known)
    hit, miss = concepts.hit, concepts.missed
    keyword_list = "keywords without sentences" in ans.flags
    development = 0.0 if keyword_list else min(ans.words / p.target_words, 1.0)
    concept_share = min(len(hit) / min(p.concepts_for_full, len(p.concepts)), 1.0) if p.concepts else 1.0
    if keyword_list:
        concept_share *= p.keyword_list_factor
    w = p.weights
    fraction = w.exists + w.development * development + w.concepts * concept_share
    if ans.source_kind != "readme":
        fraction *= p.outside_readme_factor
    reasons = list(ans.flags)
    if ans.words < p.min_words and "very short" not in reasons:
        reasons.append("very short")
    if ans.source_kind != "readme":
        reasons.append(f"answer is in {ans.source}, not in the README")
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
        "needs_review": bool(reasons),
        "review_reasons": reasons,
        "fingerprint": fingerprint(ans.text),
    }
    where = f"in {ans.source}" + (f" under “{ans.marker.strip('#*> ')}”" if ans.marker else "")
    shown = [_shown(c, concepts.fuzzy) for c in hit]
    covered = f"covers {', '.join(shown)}" if hit else "names none of the key ideas yet"
    missing = f"; not yet: {', '.join(miss)}" if miss and p.concepts else ""
    message = f"answer found {where} — {ans.words} words; {covered}{missing}"
    if reasons:
        message += f" (for review: {'; '.join(reasons)})"
    if fraction >= p.pass_fraction:
        return Outcome("pass", message, fraction, evidence)
    return Outcome("fail", message, fraction, evidence)
