"""Find a submission's written answers: which document, which question, what text.

Host-side and pure: documents are read from the submission folder (Markdown files and
the markdown cells of notebooks), each is split per question, and for every question
the best answer is kept with where it came from. Scoring lives in the
``written_answer`` check; this module only finds and measures.

Splitting works on "question markers": lines that look like a question (a heading, bold
text, a list item, a quote, an interrogative or a trailing "?") and carry most of the
question's content words. A question listed twice (a task list, then the answers) gets
the marker followed by the most text. A document with no markers at all is read as
prose: each paragraph goes to the question whose words it uses most. In both, a
misspelled question word counts as the word ("What is a nueron?", "learnig rate"):
see ``grader.spelling`` for what is and is not read as a misspelling.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from grader.spelling import MIN_LENGTH, Speller, Target, tokens

STOPWORDS = frozenset("""a an the is are was were be been being am of to in on at by for with as
from that this these those it its and or but not no nor so than then there their they them we
you your i he she his her our us what which who whom whose how why when where do does did done
can could should would will shall may might must have has had having into over under about
also just only very more most such each other some any all both few many much own same too
if because while during before after above below up down out off again further once here
use used using""".split())
_WORD = re.compile(r"[A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF\u0900-\u097F\u4E00-\u9FFF]+(?:'[a-z]+)?")
_INTERROGATIVE = re.compile(r"^(what|how|why|which|who|when|where|explain|describe|define|q\d+)\b", re.I)
_DEFINITION = re.compile(r"^(what|which)\s+(is|are)\b|^(define|explain)\b", re.I)
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s*|>\s*|[-*+]\s+|\(?\d+[.):]\s*|q\d+[.):]?\s*)+", re.I)
_HEADING = re.compile(r"^\s*(#{1,6})\s")
_CONFLICT = re.compile(r"^(<{7}|={7}|>{7})( |$)", re.M)
_PLACEHOLDER = re.compile(r"^\s*[*_]*\s*(your answer|answer here|todo|tbd)\s*[*_]*\s*$", re.I)


@dataclass(frozen=True)
class Question:
    id: str
    text: str


@dataclass(frozen=True)
class Document:
    name: str  # relative path, plus " (markdown cells)" for notebooks
    kind: str  # "readme" | "markdown" | "notebook"
    text: str


@dataclass
class Answer:
    question: str
    text: str = ""
    source: str | None = None
    source_kind: str | None = None
    marker: str | None = None  # the line the answer was found under
    words: int = 0
    flags: list[str] = field(default_factory=list)  # reasons for review

    @property
    def found(self) -> bool:
        return self.words > 0


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 2}


def _stem(word: str) -> str:
    for suffix in ("izations", "ization", "isation", "ations", "ation", "ized", "ised", "izes",
                   "ises", "ize", "ise", "ing", "ies", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _stems(text: str, speller: Speller | None = None) -> set[str]:
    """Stems of the content words; with a speller, misspelled question words count as
    the question's own ("nueron" -> "neuron", "intialised" -> "initial")."""
    if speller is None:
        return {_stem(w) for w in content_words(text)}
    clean = set(tokens(text))  # words as written: no code, URLs or encoded images
    return {_read_as(w, speller) if w in clean else _stem(w) for w in content_words(text)}


def _read_as(word: str, speller: Speller) -> str:
    stem = _stem(word)
    if len(word) < MIN_LENGTH or speller.exact(word) or speller.exact(stem):
        return stem
    # The word ("learnig" ~ "learning"), else its stem ("nuerons" -> "nueron" ~ "neuron").
    meant = speller.meant(word) or (speller.meant(stem) if stem != word else None)
    return _stem(meant.text) if meant else stem


@lru_cache(maxsize=16)
def question_speller(questions: tuple[Question, ...]) -> Speller:
    """The questions' content words and their stems, the targets misspellings are read as.

    Cached per question set: built once per assignment, not per line of a README."""
    targets = set()
    for q in questions:
        for w in content_words(q.text):
            targets |= {Target(w), Target(_stem(w))}
    return Speller(targets)


# -- collecting documents -------------------------------------------------------------
def collect_documents(
    root: Path, *, only: list[tuple[Path, str]] | None = None, max_bytes: int = 2_000_000
) -> list[Document]:
    """README files first (any case), then other Markdown, then notebooks' markdown.

    ``only``: the submission's own files as (path, name), when it is a part of a shared
    folder (a flat LMS export) rather than the whole folder ``root``."""
    if only is not None:
        files = sorted(only, key=lambda pair: pair[1])
    elif not root.is_dir():
        return []
    else:
        files = sorted(
            (p, str(p.relative_to(root))) for p in root.rglob("*")
            if p.is_file() and not p.is_symlink()
            and not any(part.startswith(".") or part in ("node_modules", "__pycache__")
                        for part in p.relative_to(root).parts)
        )
    docs = [doc for path, rel in files if (doc := _document(path, rel, max_bytes)) is not None]
    order = {"readme": 0, "markdown": 1, "notebook": 2}
    return sorted(docs, key=lambda d: (order[d.kind], d.name.count("/"), d.name))


def _document(path: Path, rel: str, max_bytes: int) -> Document | None:
    suffix = Path(rel).suffix.lower()
    try:
        if path.stat().st_size > max_bytes:
            return None
        if suffix in (".md", ".markdown", ".txt") and (suffix != ".txt" or "readme" in rel.lower()):
            kind = "readme" if Path(rel).stem.lower() == "readme" else "markdown"
            return Document(rel, kind, path.read_text(encoding="utf-8", errors="replace"))
        if suffix == ".ipynb":
            data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            cells = [c for c in data.get("cells", []) if c.get("cell_type") == "markdown"]
            text = "\n\n".join("".join(c.get("source", "")) for c in cells)
            if text.strip():
                return Document(f"{rel} (markdown cells)", "notebook", text)
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return None


# -- splitting one document -----------------------------------------------------------
def _strip(line: str) -> str:
    text = _MARKUP.sub("", line)
    return text.replace("**", "").replace("__", "").replace("`", "").strip(" *_\"'")


def distinctive(questions: list[Question]) -> dict[str, set[str]]:
    """Per question, the stems no other question uses ("neuron", "chain", "rule"...)."""
    stems = {q.id: _stems(q.text) for q in questions}
    return {qid: {s for s in own if all(s not in other for o, other in stems.items() if o != qid)}
            for qid, own in stems.items()}


SHORT_FORM = 0.5  # marker score of a short form ("What is a neuron?"): below any restatement


def _marker_score(line: str, question: Question, key: set[str], speller: Speller | None = None) -> float:
    """How well a line reads as this question's heading (0 when it does not)."""
    raw = line.strip()
    text = _strip(raw)
    if "?" in text:  # "**Question?** answer on the same line": judge the question part
        text = text.split("?", 1)[0].strip(" *_") + "?"
    q_words = _stems(question.text)
    if not raw or not text or not q_words:
        return 0.0
    if len(words(text)) > 2 * len(words(question.text)) + 6:
        return 0.0  # before the stems: a paragraph (or an inlined image) is no heading
    have = _stems(text, speller)
    if key and not key & have:
        return 0.0
    overlap = len(q_words & have) / len(q_words)
    if overlap < 0.6:
        return SHORT_FORM if _short_form(raw, text, question, key & have, key) else 0.0
    looks_like_question = (
        text.rstrip().endswith("?")
        or bool(_INTERROGATIVE.match(text))
        or bool(_HEADING.match(raw))
        or (raw.startswith("**") and raw.rstrip().endswith("**"))
    )
    return overlap if looks_like_question else 0.0


def _short_form(raw: str, text: str, question: Question, hits: set[str], key: set[str]) -> bool:
    """A short heading with the words that set this question apart: "## Chain rule", or
    "What is a neuron?" for "What is a neural network neuron?".

    Narrower than a restated question on purpose, since a sentence of an answer may
    mention a neuron: a Markdown heading or a "what is…?" line, no longer than the
    question, with all its distinctive words (or two of them)."""
    if not hits or len(words(text)) > len(words(question.text)):
        return False
    if not (_HEADING.match(raw) or (text.endswith("?") and _DEFINITION.match(text))):
        return False
    return hits == key or len(hits) >= 2


def _find_markers(lines: list[str], questions: list[Question]) -> list[tuple[int, str]]:
    """(line index, question id) of every line that reads as a question.

    A short form counts only for a question the document never restates: once
    "What is the chain rule in gradient flow?" is a heading, "But what is this chain
    rule?" further down is part of the answer."""
    keys = distinctive(questions)
    speller = question_speller(tuple(questions))
    found: list[tuple[int, str, float]] = []
    for i, line in enumerate(lines):
        scores = {q.id: _marker_score(line, q, keys[q.id], speller) for q in questions}
        best = max(scores, key=lambda k: scores[k])
        if scores[best] > 0:
            found.append((i, best, scores[best]))
    restated = {qid for _, qid, score in found if score > SHORT_FORM}
    return [(i, qid) for i, qid, score in found if score > SHORT_FORM or qid not in restated]


def _clean_answer(lines: list[str]) -> str:
    kept = [ln for ln in lines if not _PLACEHOLDER.match(ln)]
    return "\n".join(kept).strip()


def split_document(doc: Document, questions: list[Question]) -> dict[str, Answer]:
    lines = doc.text.splitlines()
    markers = _find_markers(lines, questions)
    if not markers:
        # Prose without question headings is read only from Markdown files: a notebook's
        # markdown cells usually restate the task, which is not an answer.
        return _split_prose(doc, questions) if doc.kind != "notebook" else {}
    marker_lines = {i for i, _ in markers}
    answers: dict[str, Answer] = {}
    for i, qid in markers:
        level = _HEADING.match(lines[i])
        end = i + 1
        while end < len(lines) and end not in marker_lines:
            head = _HEADING.match(lines[end])
            if head and (not level or len(head.group(1)) <= len(level.group(1))):
                break
            end += 1
        text = _clean_answer(lines[i + 1 : end])
        # "**Q?** answer on the same line": keep what follows the question
        tail = lines[i].split("?", 1)[1].strip(" *_:-") if "?" in lines[i] else ""
        if tail:
            text = f"{tail}\n{text}".strip()
        candidate = Answer(qid, text, doc.name, doc.kind, lines[i].strip()[:200], len(words(text)))
        best = answers.get(qid)
        if best is None or candidate.words > best.words:
            answers[qid] = candidate
    return answers


def _split_prose(doc: Document, questions: list[Question]) -> dict[str, Answer]:
    """No question markers: give each paragraph to the question it talks about most."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc.text) if p.strip()]
    keys = distinctive(questions)
    speller = question_speller(tuple(questions))
    chunks: dict[str, list[str]] = {}
    for para in paragraphs:
        if _HEADING.match(para) and len(words(para)) < 8:
            continue
        stems = _stems(para, speller)
        scores = {qid: (len(k & stems) / max(len(k), 1), len(k & stems)) for qid, k in keys.items()}
        ranked = sorted(scores, key=lambda k: scores[k], reverse=True)
        best = ranked[0]
        tied = len(ranked) > 1 and scores[ranked[1]] == scores[best]
        if scores[best][0] >= 0.5 and not tied:
            chunks.setdefault(best, []).append(para)
    out = {}
    for qid, paras in chunks.items():
        text = "\n\n".join(paras)
        out[qid] = Answer(qid, text, doc.name, doc.kind, None, len(words(text)), ["no question headings: matched by topic"])
    return out


# -- across documents -----------------------------------------------------------------
def find_answers(
    docs: list[Document], questions: list[Question], *, template: str | None = None
) -> dict[str, Answer]:
    """Per question, the best answer across documents; READMEs win ties."""
    template_answers = split_document(Document("template", "readme", template), questions) if template else {}
    found: dict[str, Answer] = {q.id: Answer(q.id) for q in questions}
    by_q = {q.id: q for q in questions}
    for doc in docs:
        conflict = bool(_CONFLICT.search(doc.text))
        for qid, ans in split_document(doc, questions).items():
            _measure(ans, by_q[qid], template_answers.get(qid))
            if conflict:
                ans.flags.append("git merge-conflict markers in the file")
            current = found[qid]
            better = ans.words > current.words and (current.source_kind != "readme" or not current.found
                                                    or ans.source_kind == "readme")
            if not current.found and ans.found or better:
                found[qid] = ans
            elif not current.found and not current.flags and ans.flags:
                found[qid] = ans  # nothing usable, but say why (restated, template text...)
    return found


def _measure(ans: Answer, question: Question, template: Answer | None) -> None:
    """Discount what is not an answer and flag what a TA should look at."""
    if template is not None and template.text and _norm(ans.text) == _norm(template.text):
        ans.text, ans.words = "", 0
        ans.flags.append("answer is the template's text")
        return
    own = content_words(ans.text) - content_words(question.text)
    if ans.words and len(own) < 3:
        ans.flags.append("the answer mostly restates the question")
        ans.words = 0
        return
    toks = words(ans.text)
    if len(toks) >= 6:
        stop_ratio = sum(1 for w in toks if w in STOPWORDS) / len(toks)
        if stop_ratio < 0.15:
            ans.flags.append("keywords without sentences")
        ascii_letters = sum(1 for ch in ans.text if ch.isascii() and ch.isalpha())
        letters = sum(1 for ch in ans.text if ch.isalpha())
        if len(toks) >= 15 and (letters and ascii_letters / letters < 0.7 or stop_ratio < 0.05):
            ans.flags.append("may not be in English")
    if 0 < ans.words < 12:
        ans.flags.append("very short")


def _norm(text: str) -> str:
    return " ".join(words(text))


def fingerprint(text: str, *, k: int = 3, size: int = 32) -> list[int]:
    """MinHash signature of word k-shingles: near-duplicate answers share most values."""
    toks = words(text)
    shingles = {" ".join(toks[i : i + k]) for i in range(max(len(toks) - k + 1, 0))}
    if not shingles:
        return []
    sig = []
    for seed in range(size):
        salt = seed.to_bytes(2, "little")
        sig.append(min(int.from_bytes(hashlib.blake2b(salt + s.encode(), digest_size=8).digest(), "little")
                       for s in shingles))
    return sig


def similarity(a: list[int], b: list[int]) -> float:
    if not a or not b or len(a) != len(b):
        return 0.0
    return sum(x == y for x, y in zip(a, b)) / len(a)
