"""Which of a question's key ideas an answer states: the concept signal of ``written_answer``.

A concept is shown two ways, both declared in the rubric:

- ``terms``: a word or phrase that is the idea by itself ("overshoot", "Xavier");
- ``together``: groups of words that show the idea only when one word of every group
  stands in the same sentence. Naming "derivative" does not explain the chain rule;
  "multiply the derivatives" does. This is how paraphrases are caught without listing
  every phrasing: "how big each change to the weights is" is a size word with an
  update word; "training then takes far more epochs" with "small" is the slow case.

A misspelled word still counts ("derivitive" for "derivative*"); the evidence names it,
so a TA can see it. What is read as a misspelling is in ``grader.spelling``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import Field, model_validator

from grader.models import Strict
from grader.spelling import Speller, Target, tokens


class Concept(Strict):
    name: str = Field(description="Shown to students as covered / not yet covered.")
    terms: list[str] = Field(
        default_factory=list,
        description="Words or phrases that show the concept anywhere in the answer; a "
                    "trailing * matches any ending.",
    )
    together: list[list[str]] = Field(
        default_factory=list,
        description="Groups of terms: the concept is also shown by one term of every "
                    "group in the same sentence (a size word with an update word).",
    )
    weight: float = Field(
        1.0, ge=0, description="How much the concept counts towards concepts_for_full; "
                               "the question's central ideas weigh more.",
    )

    @model_validator(mode="after")
    def _shown_somehow(self) -> "Concept":
        if not self.terms and not self.together:
            raise ValueError(f"concept '{self.name}' needs terms or together groups")
        if self.together and (len(self.together) < 2 or not all(self.together)):
            raise ValueError(f"concept '{self.name}': together needs two or more non-empty groups")
        return self

    def all_terms(self) -> tuple[str, ...]:
        return (*self.terms, *(t for group in self.together for t in group))


@dataclass
class ConceptMatch:
    hit: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    fuzzy: dict[str, str] = field(default_factory=dict)  # concept -> the misspelled words
    sentences: dict[str, str] = field(default_factory=dict)  # concept -> the sentence (together)
    weight: float = 0.0  # summed weight of the concepts hit


_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCE.split(text)) if s]


@lru_cache(maxsize=1024)
def _pattern(term: str) -> re.Pattern:
    wild = term.endswith("*")
    body = re.escape(term.rstrip("*").lower()).replace(r"\ ", r"\s+")
    return re.compile(rf"(?<![a-z0-9]){body}{'[a-z-]*' if wild else ''}(?![a-z0-9])")


def match_concepts(
    text: str, concepts: list[Concept], *, known: frozenset[str] = frozenset()
) -> ConceptMatch:
    """Concepts the text shows, as written or misspelled; `known` are words never read
    as a misspelling of a term (the questions' words: "neuron" is not a typo of anything)."""
    speller = _concept_speller(tuple(c.all_terms() for c in concepts), known)
    whole = _Span(text, speller)
    spans = None  # sentences, split only when a concept needs them
    result = ConceptMatch()
    for c in concepts:
        shown = _first(whole, c.terms)
        if shown is None and c.together:
            spans = spans if spans is not None else [_Span(s, speller) for s in sentences(text)]
            for span in spans:
                ways = [_first(span, group) for group in c.together]
                if all(ways):
                    shown = next((w for w in ways if w != "exact"), "exact")
                    result.sentences[c.name] = span.text[:200]
                    break
        if shown is None:
            result.missed.append(c.name)
            continue
        result.hit.append(c.name)
        result.weight += c.weight
        if shown != "exact":
            result.fuzzy[c.name] = shown
    return result


def _first(span: "_Span", terms: list[str]) -> str | None:
    """How the first of `terms` shows in the span; a term as written wins over a misspelled one."""
    if any(span.exact(t) for t in terms):
        return "exact"
    return next((how for t in terms if (how := span.misspelled_as(t))), None)


class _Span:
    """A text (the answer, or one sentence of it) ready for term lookups."""

    def __init__(self, text: str, speller: Speller) -> None:
        self.text = text
        self.low = text.lower()
        self.toks = tokens(text)
        self.misspelled: dict[Target, list[str]] = {}  # target -> this text's words read as it
        for tok in dict.fromkeys(self.toks):
            if tok and (target := speller.meant(tok)):
                self.misspelled.setdefault(target, []).append(tok)

    def exact(self, term: str) -> bool:
        return bool(_pattern(term).search(self.low))

    def misspelled_as(self, term: str) -> str | None:
        """The words that spell the term with at least one misspelling, or None."""
        targets = _term_words(term)
        if not targets or not any(t in self.misspelled for t in targets):
            return None
        if len(targets) == 1:
            return self.misspelled[targets[0]][0]  # only this span's words are in the map
        n = len(targets)
        for i in range(len(self.toks) - n + 1):
            window = self.toks[i : i + n]
            ways = [_spelled(tok, t, self.misspelled) for tok, t in zip(window, targets)]
            if all(ways) and "fuzzy" in ways:
                return " ".join(window)
        return None


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


def _spelled(tok: str, target: Target, misspelled: dict[Target, list[str]]) -> str | None:
    if tok == target.text or (target.prefix and tok.startswith(target.text)):
        return "exact"
    return "fuzzy" if tok in misspelled.get(target, ()) else None
