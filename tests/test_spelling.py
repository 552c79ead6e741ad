"""Misspelled key words: what is read as a misspelling, and what never is (no kernel)."""

from __future__ import annotations

import pytest

from grader.answers import Question, question_speller
from grader.checks.concepts import match_concepts
from grader.spelling import Speller, Target, tokens

QUESTIONS = (
    Question("q1", "What is a neural network neuron?"),
    Question("q2", "What is the use of the learning rate?"),
    Question("q3", "How are weights initialized?"),
    Question("q4", 'What is "loss" in a neural network?'),
    Question("q5", 'What is the "chain rule" in gradient flow?'),
)


def concept_speller_meant(grading, item: str, phrase: str) -> str | None:
    """The concept a misspelled word shows in this rubric item, if any."""
    found = match_concepts(f"It is about {phrase} here.", grading.params[item].concepts)
    return next(iter(found.fuzzy), None)


@pytest.mark.parametrize("word, meant", [
    ("nueron", "neuron"), ("neuorn", "neuron"), ("nueral", "neural"), ("learnig", "learning"),
    ("lerning", "learning"), ("weigths", "weights"), ("intialized", "initialized"),
    ("gradiant", "gradient"), ("neurone", "neuron"),
])
def test_misspelled_question_words(word, meant):
    target = question_speller(QUESTIONS).meant(word)
    assert target is not None and target.text == meant


@pytest.mark.parametrize("word", [
    "leaning", "neutral", "neutron", "weighs", "weighing", "learned", "rated", "ruler", "chained",
    "lose", "flows",
])
def test_real_words_are_not_question_words(word):
    # Real words (and the question's own words with an ending) are never "corrected".
    assert question_speller(QUESTIONS).meant(word) is None


@pytest.mark.parametrize("item, phrase, concept", [
    # a concept stated by a pair of words in one sentence needs its partner word
    ("readme_q1", "inputs multiplied by weigths", "weighted sum"),
    ("readme_q1", "activaton", "activation"),
    ("readme_q1", "inouts", "inputs and output"),
    ("readme_q2", "hypyerparameter", "hyperparameter"),
    ("readme_q2", "convergance", "convergence"),
    ("readme_q3", "ranodm", "random"),
    ("readme_q3", "distirbution", "distribution"),
    ("readme_q3", "symetry", "symmetry breaking"),
    ("readme_q4", "the error of the predcition", "prediction vs target"),
    ("readme_q4", "minimze", "minimised in training"),
    ("readme_q5", "derivitive", "derivatives"),
    ("readme_q5", "backprogation of the loss", "backpropagation"),
    ("readme_q5", "mutliply the derivatives", "product of derivatives"),
])
def test_misspelled_terms_show_their_concept(grading, item, phrase, concept):
    assert concept_speller_meant(grading, item, phrase) == concept


@pytest.mark.parametrize("item, word", [
    # one letter from a term, but a different real word: a TA would not give the concept
    ("readme_q1", "weighs"), ("readme_q1", "wait"), ("readme_q1", "impute"),
    ("readme_q2", "scope"), ("readme_q2", "option"), ("readme_q2", "diverse"),
    ("readme_q2", "decent"),
    ("readme_q3", "explore"), ("readme_q3", "ransom"),
    ("readme_q4", "lose"), ("readme_q4", "deceased"),
    ("readme_q5", "produce"), ("readme_q5", "component"), ("readme_q5", "particle"),
    ("readme_q5", "precious"), ("readme_q5", "player"), ("readme_q5", "derivation"),
    # too short to tell from another word
    ("readme_q1", "bais"), ("readme_q2", "stpe"),
])
def test_real_or_short_words_show_no_concept(grading, item, word):
    assert concept_speller_meant(grading, item, word) is None
    # nor beside the words that would complete a same-sentence concept
    partners = f"{word} of the weights, the derivative, the error, the update and the output"
    assert concept_speller_meant(grading, item, partners) is None


def test_exact_match_wins_and_is_not_reported_as_fuzzy(grading):
    text = "The derivative, or derivitive, of a composition is the product of the derivatives."
    found = match_concepts(text, grading.params["readme_q5"].concepts)
    assert "derivatives" in found.hit and found.fuzzy == {}


def test_misspelled_phrase(grading):
    found = match_concepts("For example the mean sqaured error.", grading.params["readme_q4"].concepts)
    assert found.fuzzy == {"examples": "mean sqaured"}
    assert "examples" in found.hit and "examples" not in found.missed


def test_hits_keep_the_rubric_order(grading):
    concepts = grading.params["readme_q1"].concepts
    found = match_concepts("Inputs times weigths plus a bias.", concepts)
    assert found.hit == ["weighted sum", "bias", "inputs and output"]  # "weights" read from "weigths"
    assert found.fuzzy == {"weighted sum": "weigths"}
    assert found.missed == [c.name for c in concepts if c.name not in found.hit]


def test_words_a_speller_knows_are_never_read_as_another():
    assert Speller([Target("tensor")]).meant("tenzor") == Target("tensor")
    assert Speller([Target("tensor")], known=["tenzor"]).meant("tenzor") is None
    assert Speller([Target("tensor")]).meant("tensor") is None  # exact, nothing to read
    assert Speller([Target("weight", prefix=True)]).meant("weightings") is None


def test_a_word_between_two_targets_is_left_alone():
    assert Speller([Target("fooxbar"), Target("fooybar")]).meant("foozbar") is None
    assert Speller([Target("fooxbar")]).meant("foozbar") == Target("fooxbar")


def test_first_letter_and_length_limits():
    speller = Speller([Target("gradient"), Target("derivative", prefix=True)])
    assert speller.meant("kradient") is None  # a different first letter
    assert speller.meant("graadeint") is None  # two slips in eight letters
    assert speller.meant("derivtiev") == Target("derivative", prefix=True)  # two in ten


def test_code_urls_and_encoded_data_are_not_words():
    text = ("See https://pytorch.org/docs/nn.init.html, learningRate, StepLR and "
            "iVBORw0KGgoeprorQwS8s; a neuron's Weigths.")
    words = [w for w in tokens(text) if w]
    assert words == ["see", "https", "and", "a", "neuron", "s", "weigths"]
