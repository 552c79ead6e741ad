"""Misspelled key words, read as the word the student meant: "nueron" is "neuron".

Written answers use it twice: to tell which question a heading or a paragraph is about
(``grader.answers``) and which rubric concepts an answer names (``written_answer``).
A false match costs more than a missed one (it hands out points), so a word is read as
a misspelling of a target only when all of these hold:

- it is not a real word: not one of the targets (an exact match always wins), not a
  word the caller knows (the questions' words), not in the English dictionary of
  pyspellchecker. "produce" is never "product", "leaning" never "learning", "weighs"
  never "weight" — real words that sit one letter away from a term are common;
- it has at least ``MIN_LENGTH`` letters, and so has the target: short words are too
  close to each other ("lose"/"loss", "wait"/"weight") to be told apart;
- it starts with the target's letter: slips rarely hit the first letter, and this keeps
  names and code identifiers away;
- it is within ``max_edits(len(target))`` Damerau-Levenshtein edits, where two swapped
  neighbours ("nueron", "weigths") are one edit. A wildcard target ("weight*") is
  compared with the word's prefix of about its own length, so any ending still goes;
- one target is closest: a word as close to two different targets is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from rapidfuzz.distance import DamerauLevenshtein

if TYPE_CHECKING:
    from spellchecker import SpellChecker

MIN_LENGTH = 5
# Runs of letters, digits and the characters of URLs and base64: a run is a word only if
# it is all letters in one case pattern, so "iVBORw0KGgo", "nn.init" and "learningRate"
# are never read as misspellings.
_CHUNK = re.compile(r"[A-Za-z0-9+/=_@.]+")


@dataclass(frozen=True)
class Target:
    text: str  # lower-case letters only
    prefix: bool = False  # a rubric term ending in "*": any ending matches


def max_edits(length: int) -> int:
    """Edits allowed against a target of this length: 1 up to 9 letters, 2 from 10.

    Long words have few neighbours, so "derivtiev" (two slips from "derivative") is still
    read; at five to nine letters one slip is already what separates real words."""
    if length < MIN_LENGTH:
        return 0
    return 1 if length < 10 else 2


def tokens(text: str) -> list[str]:
    """The text's words in lower case, "" in place of code, URLs and encoded data.

    The placeholders keep positions, so that a phrase never spans a URL."""
    return [_as_word(c) for c in _CHUNK.findall(text)]


def _as_word(chunk: str) -> str:
    chunk = chunk.strip(".")  # end of a sentence, not part of the word
    if chunk.isascii() and chunk.isalpha() and (chunk.islower() or chunk.isupper() or chunk.istitle()):
        return chunk.lower()
    return ""


@lru_cache(maxsize=1)
def _dictionary() -> SpellChecker:
    # Loaded once per process (~0.3 s), and only once a word is near a target: a batch
    # of answers with no misspellings never pays for it.
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


def is_english(word: str) -> bool:
    return bool(_dictionary().known([word]))


def edits(word: str, target: Target) -> int | None:
    """Damerau-Levenshtein edits from word to target, or None beyond max_edits."""
    limit = max_edits(len(target.text))
    if not limit or len(word) < MIN_LENGTH or word[0] != target.text[0]:
        return None
    if target.prefix:  # "weigths" -> "weigth" vs "weight"; one letter more or less too
        n = len(target.text)
        forms = [word[:m] for m in (n - 1, n, n + 1) if MIN_LENGTH <= m <= len(word)]
    else:
        forms = [word]
    best = min((DamerauLevenshtein.distance(f, target.text, score_cutoff=limit) for f in forms),
               default=limit + 1)
    return best if best <= limit else None


class Speller:
    """Reads misspelled words as one of a fixed set of targets; build once, ask often."""

    def __init__(self, targets: Iterable[Target], known: Iterable[str] = ()) -> None:
        targets = set(targets)
        self._exact = {t.text for t in targets if not t.prefix} | set(known)
        self._prefixes = tuple(sorted(t.text for t in targets if t.prefix))
        self._by_letter: dict[str, list[Target]] = {}
        for t in sorted(targets, key=lambda t: (t.text, t.prefix)):
            if len(t.text) >= MIN_LENGTH:
                self._by_letter.setdefault(t.text[0], []).append(t)
        self._memo: dict[str, Target | None] = {}

    def exact(self, word: str) -> bool:
        """The word is a target as written (a wildcard target's prefix counts)."""
        return word in self._exact or word.startswith(self._prefixes)

    def meant(self, word: str) -> Target | None:
        """The target a misspelled word stands for; None for real words and no match."""
        if word not in self._memo:
            self._memo[word] = self._closest(word)
        return self._memo[word]

    def _closest(self, word: str) -> Target | None:
        candidates = self._by_letter.get(word[:1], ())
        if len(word) < MIN_LENGTH or not candidates or self.exact(word):
            return None
        scored = [(d, t) for t in candidates if (d := edits(word, t)) is not None]
        if not scored:
            return None
        best = min(d for d, _ in scored)
        closest = {t for d, t in scored if d == best}
        # "functions" and "function*" are one word, not two to choose between
        family = [p for p in closest if p.prefix and all(t.text.startswith(p.text) for t in closest)]
        if len({t.text for t in closest}) > 1 and not family:
            return None  # as close to two different words: not ours to guess
        if is_english(word):  # checked last: the dictionary is the slow part
            return None
        return family[0] if family else next(iter(closest))
