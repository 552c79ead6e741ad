"""Written answers scored by meaning: concepts stated in a sentence, similarity to the
model answers, an optional embedding model, and calibration to a TA (no kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.answers import Answer
from grader.calibrate import Sample, calibrate, CalibrationError
from grader.checks.concepts import Concept, match_concepts
from grader.checks.written import WrittenParams, written_answer
from grader.cli import main
from grader.evidence import Evidence
from grader.rubric import load_rubric
from grader.spec import ConfigError
from tests.test_answers import READMES, broken_submission

QUESTIONS = {"q1": "What is a neural network neuron?", "q2": "What is the use of the learning rate?",
             "q3": "How are weights initialized?", "q4": 'What is "loss" in a neural network?',
             "q5": 'What is the "chain rule" in gradient flow?'}


def outcome(grading, item: str, text: str, params: WrittenParams | None = None):
    qid = grading.params[item].question
    ans = Answer(qid, text, "README.md", "readme", "## heading", len(text.split()))
    ev = Evidence(questions=QUESTIONS, answers={qid: ans})
    return written_answer(ev, params or grading.params[item])


def stated(grading, item: str, text: str) -> list[str]:
    return match_concepts(text, grading.params[item].concepts).hit


def test_paraphrases_state_the_concept(grading):
    text = ("It decides how big each change to the weights is. When it is small, training then "
            "takes far more epochs; when it is large the loss jumps around the lowest point.")
    hit = stated(grading, "readme_q2", text)
    assert {"step size", "too small: slow", "too large: overshoot"} <= set(hit)
    # the words apart, in different sentences, state nothing
    apart = "It is small. Training needs epochs. A large model. The loss jumps."
    assert not {"too small: slow", "too large: overshoot"} & set(stated(grading, "readme_q2", apart))


def test_naming_the_words_is_not_explaining_them(grading):
    naming = ("There are several kinds of chain rule: the single-variable chain rule, the "
              "multivariable chain rule and the total-derivative chain rule, for functions of "
              "multiple variables. Each one has its own formula and its own derivative.")
    explaining = ("The chain rule gives the derivative of a composition of functions as the product "
                  "of the derivatives of its parts. Backpropagation applies it from the loss "
                  "backwards: each layer multiplies the gradient it receives by its local "
                  "derivative to get the gradients of its weights.")
    assert "product of derivatives" not in stated(grading, "readme_q5", naming)  # "multiple" is not "multiply"
    low, high = outcome(grading, "readme_q5", naming), outcome(grading, "readme_q5", explaining)
    assert low.fraction * 30 <= 13 and low.status == "fail"
    assert high.fraction * 30 >= 27 and high.status == "pass"
    assert high.evidence["concepts_sentences"]["product of derivatives"].startswith("The chain rule gives")


def test_similarity_to_the_model_answers_is_a_signal(grading):
    own_words = ("You start every weight at a small random value from a normal distribution, "
                 "because if all of them began at zero each neuron would learn the same thing.")
    off_topic = "Initialization happens in the constructor of the class, and initialized weights are printed."
    near = outcome(grading, "readme_q3", own_words).evidence["signals"]
    far = outcome(grading, "readme_q3", off_topic).evidence["signals"]
    assert near["reference"] > 0.5 > far["reference"]
    # the question's own words count for nothing: every answer repeats them
    restated = outcome(grading, "readme_q5", "chain rule gradient flow, the chain rule of gradient flow")
    assert restated.evidence["signals"]["reference"] == 0


def test_signals_are_recorded_and_a_missing_one_is_left_out(grading):
    text = "A neuron multiplies its inputs by weights, adds a bias and applies an activation."
    full = outcome(grading, "readme_q1", text)
    assert full.evidence["signals_used"] == ["exists", "development", "concepts", "reference"]
    assert set(full.evidence["signals"]) == {"exists", "development", "concepts", "reference", "embedding"}
    no_refs = grading.params["readme_q1"].model_copy(update={"references": []})
    alone = outcome(grading, "readme_q1", text, no_refs)
    s, w = alone.evidence["signals"], no_refs.weights
    assert s["reference"] is None and "reference" not in alone.evidence["signals_used"]
    expected = (w.exists * s["exists"] + w.development * s["development"] + w.concepts * s["concepts"]) \
        / (w.exists + w.development + w.concepts)
    assert alone.fraction == pytest.approx(expected)


def test_disagreeing_signals_and_images_ask_for_review(grading):
    loose = grading.params["readme_q1"].model_copy(update={"disagreement": 0.0})
    r = outcome(grading, "readme_q1", "A neuron has weights that it adds up and a bias, see the figure.", loose)
    assert any(reason.startswith("the signals disagree") for reason in r.evidence["review_reasons"])
    r = outcome(grading, "readme_q5", "It multiplies derivatives, as shown here: ![rule](chain.png) and "
                                      '<img src="backprop.png"> for the layers.')
    assert "2 image(s) in the answer, which the grader cannot read" in r.evidence["review_reasons"]


def test_concepts_and_weights_are_validated(tmp_path, grading):
    with pytest.raises(ValueError, match="together needs two or more non-empty groups"):
        Concept(name="x", together=[["a"]])
    with pytest.raises(ValueError, match="needs terms or together groups"):
        Concept(name="x")
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(grading.assignment.rubric_path.read_text().replace(
        'concepts_for_full = 4\n', 'concepts_for_full = 4\nweights = { exists = 0, development = 0, '
        'concepts = 0, reference = 0 }\n', 1))
    with pytest.raises(ConfigError, match=r"items\[6\]\.params\.weights.*add up to 0"):
        load_rubric(rubric, assignment_id="01-very-basics")
    rubric.write_text(grading.assignment.rubric_path.read_text().replace(
        'concepts_for_full = 4\n', 'concepts_for_full = 4\nembedding_model = "/no/such/model"\n', 1))
    with pytest.raises(ConfigError, match="embedding_model.*no folder '/no/such/model'"):
        load_rubric(rubric, assignment_id="01-very-basics")


# -- an embedding model from a local folder --------------------------------------------
def tiny_model2vec(folder: Path) -> Path:
    """A real model2vec model on disk: a word-level tokenizer and 3-d vectors in which
    "stride" and "step" point the same way, "banana" elsewhere."""
    import numpy as np
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[UNK]": 0, "[PAD]": 1, "step": 2, "stride": 3, "size": 4, "banana": 5, "weights": 6}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    vecs = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0.05, 0], [0.9, 0.1, 0],
                     [0, 0, 1], [0.2, 1, 0]], dtype=np.float32)
    StaticModel(vectors=vecs, tokenizer=tok).save_pretrained(folder)
    return folder


def test_an_embedding_model_from_a_local_folder_adds_a_signal(tmp_path, grading, monkeypatch):
    model = tiny_model2vec(tmp_path / "model")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    base = grading.params["readme_q2"]
    params = base.model_copy(update={
        "embedding_model": str(model), "references": ["the step size of the weights"],
        "weights": base.weights.model_copy(update={"embedding": 0.2}),
    })
    near = outcome(grading, "readme_q2", "the stride size of the weights", params)
    far = outcome(grading, "readme_q2", "banana banana banana", params)
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # nothing can be downloaded
    assert "embedding" in near.evidence["signals_used"]
    assert near.evidence["signals"]["embedding"] > 0.9 and far.evidence["signals"]["embedding"] == 0


# -- calibration -----------------------------------------------------------------------
def synthetic(n_students: int = 8) -> list[Sample]:
    """A strict TA: points follow the concept signal only, never more than 27."""
    out = []
    for s in range(n_students):
        for q in range(5):
            concepts = ((s * 5 + q) % 7) / 6
            dev = ((s + 2 * q) % 5) / 4
            ref = min(1.0, concepts * 0.8 + 0.1)
            out.append(Sample(f"s{s}", f"readme_q{q + 1}", (1.0, dev, concepts, ref, 0.0), 1.0,
                              round(3 + 24 * concepts), 0, 30))
    # the automatic points of the rubric's default weights, as a report would hold them
    return [Sample(x.submission, x.item, x.signals, 1.0, x.ta_points,
                   round(30 * min(1, 0.15 + 0.1 * x.signals[1] + 0.5 * x.signals[2] + 0.25 * x.signals[3])), 30)
            for x in out]


def test_calibration_fits_a_ta_and_says_so_cross_validated(grading):
    current = grading.params["readme_q1"].weights.model_dump()
    cal = calibrate(synthetic(), current=current)
    assert cal.agreement_after.mean_abs < cal.agreement_before.mean_abs / 2
    assert cal.after["development"] < current["development"]  # this TA does not pay for length
    assert all(v >= 0 for v in cal.after.values())
    assert cal.after["embedding"] == current["embedding"] and "embedding" not in cal.signals
    with pytest.raises(CalibrationError, match="at least 6 are needed"):
        calibrate(synthetic()[:5], current=current)


def test_calibrate_command_writes_a_rubric_the_grader_loads(tmp_path, grading, capsys):
    names = ["prose", "headings", "keyword_stuffing", "misspelled_prose", "numbered_bold", "plain_lines"]
    subs = [broken_submission(tmp_path, n, READMES / f"{n}.md") for n in names]
    out = tmp_path / "out"
    assert main(["calibrate", str(tmp_path), "-a", "01-very-basics"]) == 2
    assert "no overrides.toml" in capsys.readouterr().err
    rows = [f'[[override]]\nsubmission = "{n}"\nitem = "readme_q{q}"\npoints = {20 if n != "prose" else 29}\n'
            f'by = "TA"\n' for n in names for q in (1, 2)]
    (tmp_path / "overrides.toml").write_text("schema_version = 1\n" + "".join(rows))
    main(["grade", *map(str, subs), "-a", "01-very-basics", "-o", str(out),
          "--overrides", str(tmp_path / "overrides.toml")])
    capsys.readouterr()
    assert main(["calibrate", str(out), "-a", "01-very-basics"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "weights fitted to 12 overridden answers" in printed and "cross-validated" in printed
    written = out / "calibrated-rubric.toml"
    text = written.read_text()
    assert text.startswith("# Calibrated by `grader calibrate` on 12 overridden answers")
    assert "# Edit points, thresholds and hints here" in text  # the rubric's comments are kept
    rubric, params = load_rubric(written, assignment_id="01-very-basics")
    fitted = {params[f"readme_q{q}"].weights.model_dump()["concepts"] for q in range(1, 6)}
    assert len(fitted) == 1 and fitted != {grading.params["readme_q1"].weights.concepts}
    assert params["param_count"] == grading.params["param_count"]  # code items untouched


def test_calibrate_refuses_too_few_overrides(tmp_path, grading, capsys):
    sub = broken_submission(tmp_path, "ann", READMES / "prose.md")
    (tmp_path / "o.toml").write_text('schema_version = 1\n[[override]]\nsubmission = "ann"\n'
                                     'item = "readme_q1"\npoints = 20\nby = "TA"\n')
    main(["grade", str(sub), "-a", "01-very-basics", "-o", str(tmp_path / "out"),
          "--overrides", str(tmp_path / "o.toml")])
    capsys.readouterr()
    assert main(["calibrate", str(tmp_path / "out"), "-a", "01-very-basics"]) == 2
    assert "1 overridden written answer(s) with signals; at least 6" in capsys.readouterr().err
