"""How close an answer is to the rubric's model answers: the reference signal of
``written_answer``.

TF-IDF over word stems (Snowball) and their bigrams, cosine to each model answer, the
best one kept. Stems make "initialises", "initialized" and "initialization" one word;
bigrams reward saying things the way a correct answer says them ("small random",
"multiply derivative") over naming the words apart. The question's own words do not
count: every answer repeats them. Offline, and fitted once per rubric item.
"""

from __future__ import annotations

import re
from functools import lru_cache

from snowballstemmer import stemmer as snowball

from grader.answers import STOPWORDS

_WORD = re.compile(r"[a-z]+")
_STEMMER = snowball("english")


def stems(text: str, *, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Content words of the text as Snowball stems, in order, without `ignore`d stems."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]
    return [s for s in _STEMMER.stemWords(words) if s not in ignore]


def question_stems(question: str) -> frozenset[str]:
    return frozenset(stems(question))


class References:
    """The model answers of one question, vectorised once."""

    def __init__(self, references: tuple[str, ...], ignore: frozenset[str]) -> None:
        # imported here, not at module load: ~1 s that only a rubric with references pays
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.ignore = ignore
        self._vectorizer = TfidfVectorizer(
            analyzer=self._grams, sublinear_tf=True, norm="l2", smooth_idf=True
        )
        self._matrix = self._vectorizer.fit_transform(references)

    def _grams(self, text: str) -> list[str]:
        seq = stems(text, ignore=self.ignore)
        return seq + [f"{a} {b}" for a, b in zip(seq, seq[1:])]

    def similarity(self, answer: str) -> float:
        """Cosine to the closest model answer, 0..1."""
        from sklearn.metrics.pairwise import cosine_similarity

        vec = self._vectorizer.transform([answer])
        if vec.nnz == 0:
            return 0.0
        return float(cosine_similarity(vec, self._matrix).max())


@lru_cache(maxsize=64)
def references_for(references: tuple[str, ...], question: str) -> References | None:
    return References(references, question_stems(question)) if references else None
