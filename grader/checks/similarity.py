"""How close an answer is to the rubric's model answers: the reference signal of
``written_answer``.

TF-IDF over word stems (Snowball) and their bigrams, cosine to each model answer, the
best one kept. Stems make "initialises", "initialized" and "initialization" one word;
bigrams reward saying things the way a correct answer says them ("small random",
"multiply derivative") over naming the words apart. The question's own words do not
count: every answer repeats them. Offline, and fitted once per rubric item.

An optional second signal, meaning rather than words: cosine similarity of sentence
embeddings from a model the instructor keeps on disk (``Embedder``).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

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


def embedding_kind(folder: Path) -> str:
    """Which library reads the model in ``folder``: a model2vec model is its vectors and
    tokenizer at the top (its modules.json is only for sentence-transformers' sake)."""
    top = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    if {"model.safetensors", "tokenizer.json"} <= top and "config_sentence_transformers.json" not in top:
        return "model2vec"
    return "sentence_transformers"


def embedding_problem(folder: Path) -> str | None:
    """Why the model in ``folder`` cannot be used here, or None."""
    from importlib.util import find_spec

    if not folder.is_dir():
        return f"no folder {str(folder)!r}: give the absolute path of a model saved on this machine"
    kind = embedding_kind(folder)
    if find_spec(kind) is None:
        return f"{folder} is a {kind} model and {kind} is not installed: pip install {kind.replace('_', '-')}"
    return None


class Embedder:
    """A sentence-embedding model from a local folder, for instructors who have one:
    model2vec (static embeddings, a few ms per answer) or sentence-transformers. Never
    downloads: the hub is switched off first."""

    def __init__(self, folder: Path) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"  # a local folder or nothing
        if embedding_kind(folder) == "model2vec":
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(folder, force_download=False)
        else:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self._cache: dict[tuple[str, ...], object] = {}

    def _encode(self, texts: list[str]):
        import numpy as np

        vecs = np.asarray(self._model.encode(texts), dtype=float)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.where(norms == 0, 1, norms)

    def similarity(self, answer: str, references: tuple[str, ...]) -> float:
        """Cosine to the closest model answer (the references are embedded once)."""
        if references not in self._cache:
            self._cache[references] = self._encode(list(references))
        refs = self._cache[references]
        return float(max((self._encode([answer]) @ refs.T).max(), 0.0))


@lru_cache(maxsize=4)
def embedder_for(folder: str) -> Embedder:
    return Embedder(Path(folder).expanduser())
