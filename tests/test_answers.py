"""Written answers: finding, splitting and scoring the README's five questions (no kernel)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from grader.api import grade
from grader.evidence import Evidence
from grader.pipeline import gather_answers, run_checks
from grader.spec import ConfigError

HERE = Path(__file__).parent
READMES = HERE / "readmes"
ROOT = HERE.parent
ITEMS = [f"readme_q{n}" for n in range(1, 6)]


def score_folder(folder: Path, grading) -> dict:
    questions, answers = gather_answers(root=folder, assignment=grading.assignment)
    ev = Evidence(facts_error="not run", execution_status="not_run", questions=questions, answers=answers)
    results = run_checks(evidence=ev, rubric=grading.rubric, params=grading.params)
    return {c.id: c for c in results if c.id in ITEMS}


def submission(tmp_path: Path, readme: str | Path, name: str = "README.md") -> Path:
    folder = tmp_path / "sub"
    folder.mkdir(exist_ok=True)
    text = readme.read_text() if isinstance(readme, Path) else readme
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("layout", ["headings", "numbered_bold", "quoted_task_list_then_answers",
                                    "plain_lines", "prose", "misspelled_prose", "misspelled_headings"])
def test_layouts_find_all_five(tmp_path, grading, layout):
    results = score_folder(submission(tmp_path, READMES / f"{layout}.md"), grading)
    for item in ITEMS:
        r = results[item]
        assert r.evidence["found"] and r.evidence["in_readme"], (item, r.message)
        assert r.evidence["words"] >= 15, (item, r.evidence["excerpt"])
        assert r.status == "pass", (item, r.message)
        assert len(r.evidence["concepts_matched"]) >= 2


def test_task_list_then_answers_takes_the_answered_copy(tmp_path, grading):
    results = score_folder(submission(tmp_path, READMES / "quoted_task_list_then_answers.md"), grading)
    ev = results["readme_q2"].evidence
    assert "too high" in ev["excerpt"] and ev["under"] == "> What is the use of the learning rate?"


def test_answers_do_not_bleed_into_each_other(tmp_path, grading):
    results = score_folder(submission(tmp_path, READMES / "numbered_bold.md"), grading)
    assert "learning rate" not in results["readme_q1"].evidence["excerpt"]
    assert results["readme_q2"].evidence["excerpt"].startswith("It scales the gradient step")


@pytest.mark.parametrize("readme", ["other_project.md", "title_only.md", "near_words.md"])
def test_unrelated_or_empty_readme_gets_nothing(tmp_path, grading, readme):
    results = score_folder(submission(tmp_path, READMES / readme), grading)
    assert all(r.score == 0 and r.status == "fail" for r in results.values())
    assert "no answer found" in results["readme_q1"].message


def test_misspelled_prose_is_matched_by_topic_and_concepts(tmp_path, grading):
    """No headings, "nueron", "weigths", "learnig rate", "derivitive": a TA reads them all."""
    results = score_folder(submission(tmp_path, READMES / "misspelled_prose.md"), grading)
    q1 = results["readme_q1"].evidence
    assert q1["excerpt"].startswith("A nueron is the small unit")
    assert "weighted sum" in q1["concepts_matched"] and q1["concepts_fuzzy"] == {"weighted sum": "weigths"}
    assert results["readme_q2"].evidence["excerpt"].startswith("The learnig rate sets the step size")
    assert results["readme_q3"].evidence["excerpt"].startswith("The weigths are initialised randomely")
    assert "random" in results["readme_q3"].evidence["concepts_matched"]
    q5 = results["readme_q5"]
    assert {"derivatives", "backpropagation"} <= set(q5.evidence["concepts_matched"])
    assert q5.evidence["concepts_fuzzy"] == {"product of derivatives": "derivitive",
                                             "derivatives": "derivitive"}
    assert "derivatives (read from “derivitive”)" in q5.message
    assert all(r.evidence["concepts_fuzzy"] == {} for r in (results[i] for i in ("readme_q2", "readme_q4")))


def test_misspelled_and_short_headings(tmp_path, grading):
    results = score_folder(submission(tmp_path, READMES / "misspelled_headings.md"), grading)
    under = {item: r.evidence["under"] for item, r in results.items()}
    assert under == {"readme_q1": "## What is a nueron?", "readme_q2": "## Learnig rate",
                     "readme_q3": "## How are weigths intialised?", "readme_q4": "## What is loss?",
                     "readme_q5": "## Chain rule in gradeint flow"}
    assert "learning rate" not in results["readme_q1"].evidence["excerpt"]


def test_short_question_inside_an_answer_does_not_split_it(tmp_path, grading):
    # The question is restated as a heading: a shorter question further down is text.
    text = ('## What is the "chain rule" in gradient flow?\n\nFirst, what a gradient is: the '
            "direction of the fastest increase of the loss, made of partial derivatives.\n\n"
            "But what is this chain rule?\n\nThe derivative of a composition is the product of "
            "the derivatives, so backpropagation passes gradients back layer by layer.\n")
    r = score_folder(submission(tmp_path, text), grading)["readme_q5"]
    assert r.evidence["under"].startswith("## What is the")
    assert "fastest increase" in r.evidence["excerpt"] and "layer by layer" in r.evidence["excerpt"]


def test_readme_mutants_keep_their_verdicts(tmp_path, grading):
    """The spec's README mutants fail exactly their items, the reference README none."""
    assignment = grading.assignment
    cases = [(assignment.spec.validation.readme, [])] + [
        (m.readme, m.fails) for m in assignment.spec.validation.mutants if m.readme]
    for n, (readme, fails) in enumerate(cases):
        folder = tmp_path / str(n)
        folder.mkdir()
        results = score_folder(submission(folder, assignment.path(readme)), grading)
        failed = {item for item, r in results.items() if r.status != "pass"}
        assert failed == set(fails) & set(ITEMS), readme


def test_questions_copied_without_answers(tmp_path, grading):
    text = "\n\n".join(f"### {q.text}" for q in grading.assignment.spec.answers.questions)
    results = score_folder(submission(tmp_path, text), grading)
    assert sum(r.score for r in results.values()) == 0


def test_untouched_template_gets_nothing(tmp_path, grading):
    results = score_folder(submission(tmp_path, ROOT / "student_template" / "README.md"), grading)
    assert sum(r.score for r in results.values()) == 0


def test_question_restated_as_answer(tmp_path, grading):
    text = "## What is a neural network neuron?\nA neuron is a neuron in a neural network.\n"
    r = score_folder(submission(tmp_path, text), grading)["readme_q1"]
    assert r.score == 0 and "restates the question" in r.message


def test_keyword_stuffing_is_flagged_and_scores_less(tmp_path, grading):
    stuffed = score_folder(submission(tmp_path, READMES / "keyword_stuffing.md"), grading)
    prose = score_folder(submission(tmp_path / "p", READMES / "prose.md") if (tmp_path / "p").mkdir() is None else None, grading)
    for item in ITEMS:
        ev = stuffed[item].evidence
        assert ev["needs_review"] and "keywords without sentences" in ev["review_reasons"]
        assert stuffed[item].score <= 0.6 * stuffed[item].max_score < prose[item].score


def test_conflict_markers_and_non_english_need_review(tmp_path, grading):
    r = score_folder(submission(tmp_path, READMES / "conflict.md"), grading)["readme_q1"]
    assert "git merge-conflict markers in the file" in r.evidence["review_reasons"]
    r = score_folder(submission(tmp_path / "x" if (tmp_path / "x").mkdir() is None else None,
                                READMES / "non_english.md"), grading)["readme_q1"]
    assert "may not be in English" in r.evidence["review_reasons"]


@pytest.mark.parametrize("name", ["readme.md", "Readme.md", "Session1_README.md"])
def test_readme_file_names(tmp_path, grading, name):
    results = score_folder(submission(tmp_path, READMES / "headings.md", name=name), grading)
    assert all(r.evidence["found"] for r in results.values())
    assert results["readme_q1"].evidence["source"] == name


def test_answers_in_a_second_notebook(tmp_path, grading):
    folder = submission(tmp_path, "# My repo\n\nSee the notebook.\n")
    cells = [nbformat.v4.new_markdown_cell(f"## Q{n}: {q.text}\n\n{a}")
             for n, (q, a) in enumerate(zip(grading.assignment.spec.answers.questions, [
                 "A neuron sums its weighted inputs with a bias and applies an activation to give an output.",
                 "The learning rate is the step size of gradient descent; too large overshoots, too small is slow.",
                 "Weights start random, from a normal distribution with small variance, to break symmetry.",
                 "The loss is the error between prediction and target, such as the mean squared error, minimised in training.",
                 "The chain rule multiplies derivatives of composed functions so backpropagation can pass gradients back through layers.",
             ]), start=1)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / "questions.ipynb")
    results = score_folder(folder, grading)
    for r in results.values():
        assert r.evidence["source"] == "questions.ipynb (markdown cells)"
        assert r.evidence["in_readme"] is False and r.evidence["needs_review"]
        assert r.score > 0


def broken_submission(parent: Path, name: str, readme: Path) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "XOR.ipynb").write_text("{")  # not run: these tests look at the README only
    shutil.copy(readme, folder / "README.md")
    return folder


def test_same_text_in_a_batch_is_flagged_not_deducted(tmp_path, grading):
    a = broken_submission(tmp_path, "ann", READMES / "headings.md")
    b = broken_submission(tmp_path, "ben", READMES / "headings.md")
    c = broken_submission(tmp_path, "cid", READMES / "prose.md")
    out = tmp_path / "out"
    reports = grade(paths=[a, b, c], grading=grading, out_dir=out)
    assert reports["ann"].score == reports["ben"].score > 0
    pairs = json.loads((out / "duplicates.json").read_text())
    assert [(p["a"], p["b"]) for p in pairs] == [("ann", "ben")]
    assert set(pairs[0]["items"]) == set(ITEMS)
    rows = (out / "summary.csv").read_text().splitlines()
    assert "possible_duplicate" in rows[0]
    assert next(r for r in rows if r.startswith("ann,")).count("ben") == 1


def test_overrides_applied_and_kept_on_regrade(tmp_path, grading):
    sub = broken_submission(tmp_path, "ann", READMES / "keyword_stuffing.md")
    out = tmp_path / "out"
    overrides = tmp_path / "overrides.toml"
    overrides.write_text('schema_version = 1\n[[override]]\nsubmission = "ann"\nitem = "readme_q2"\n'
                         'points = 28\nby = "TA Jane"\ncomment = "good list, discussed in class"\n')
    first = grade(paths=[sub], grading=grading, out_dir=out, overrides=overrides)["ann"]
    q2 = next(c for c in first.checks if c.id == "readme_q2")
    assert q2.score == 28 and q2.auto_score < 28 and q2.override.by == "TA Jane"
    assert first.score == sum(c.score for c in first.checks)
    again = grade(paths=[sub], grading=grading, out_dir=out)["ann"]  # no --overrides this time
    assert next(c for c in again.checks if c.id == "readme_q2").score == 28
    assert next(c for c in again.checks if c.id == "readme_q2").auto_score == q2.auto_score
    assert "readme_q2" in (out / "summary.csv").read_text().splitlines()[1]


def test_bad_override_names_field(tmp_path, grading):
    bad = tmp_path / "o.toml"
    bad.write_text('[[override]]\nsubmission = "a"\nitem = "readme_q9"\npoints = 1\nby = "x"\n')
    with pytest.raises(ConfigError, match=r"override\[0\]\.item"):
        grade(paths=[], grading=grading, overrides=bad)
    bad.write_text('[[override]]\nsubmission = "a"\nitem = "readme_q1"\npoints = 31\nby = "x"\n')
    with pytest.raises(ConfigError, match="more than the 30 points"):
        grade(paths=[], grading=grading, overrides=bad)


def test_outside_readme_factor_from_rubric(tmp_path, grading):
    from grader.checks import get_check
    from grader.answers import Answer

    check = get_check("written_answer")
    text = "A neuron sums its weighted inputs with a bias and applies an activation to give an output."
    ans = Answer("q1", text, "questions.ipynb (markdown cells)", "notebook", "## Q1", 17)
    ev = Evidence(questions={"q1": "What is a neural network neuron?"}, answers={"q1": ans})
    params = grading.params["readme_q1"]
    full = check.func(ev, params).fraction
    halved = check.func(ev, params.model_copy(update={"outside_readme_factor": 0.5})).fraction
    assert halved == pytest.approx(full / 2)


def test_removed_override_restores_the_automatic_score(tmp_path, grading):
    sub = broken_submission(tmp_path, "ann", READMES / "keyword_stuffing.md")
    out = tmp_path / "out"
    overrides = tmp_path / "overrides.toml"
    overrides.write_text('[[override]]\nsubmission = "ann"\nitem = "readme_q2"\npoints = 28\nby = "TA"\n')
    first = grade(paths=[sub], grading=grading, out_dir=out, overrides=overrides)["ann"]
    auto = next(c for c in first.checks if c.id == "readme_q2").auto_score
    overrides.write_text("schema_version = 1\n")
    again = grade(paths=[sub], grading=grading, out_dir=out, overrides=overrides)["ann"]
    q2 = next(c for c in again.checks if c.id == "readme_q2")
    assert q2.score == auto and q2.override is None and q2.auto_score is None
    assert again.score == sum(c.score for c in again.checks)


def test_answers_that_cannot_be_read_are_a_warning_not_silence(tmp_path, grading, monkeypatch):
    import grader.pipeline

    def broken(**kwargs):
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    monkeypatch.setattr(grader.pipeline, "gather_answers", broken)
    sub = broken_submission(tmp_path, "ann", READMES / "prose.md")
    report = grade(paths=[sub], grading=grading, out_dir=tmp_path / "out")["ann"]
    assert report.status == "error"
    assert report.execution.warnings == [
        "the written answers could not be read: UnicodeDecodeError: 'utf-8' codec can't decode "
        "byte 0xff in position 0: invalid start byte"]


def test_an_override_made_on_another_version_is_not_applied(tmp_path, grading):
    sub = broken_submission(tmp_path, "ann", READMES / "keyword_stuffing.md")
    out = tmp_path / "out"
    first = grade(paths=[sub], grading=grading, out_dir=out)["ann"]
    overrides = tmp_path / "overrides.toml"
    overrides.write_text('schema_version = 1\n[[override]]\nsubmission = "ann"\nitem = "readme_q2"\n'
                         f'points = 28\nby = "TA Jane"\nsha256 = "{first.submission.sha256}"\n')
    judged = grade(paths=[sub], grading=grading, out_dir=out, overrides=overrides)["ann"]
    assert next(c for c in judged.checks if c.id == "readme_q2").score == 28
    (sub / "XOR.ipynb").write_text("{ }")  # the student pushed again
    warnings: list[str] = []
    again = grade(paths=[sub], grading=grading, out_dir=out, on_warning=warnings.append)["ann"]
    q2 = next(c for c in again.checks if c.id == "readme_q2")
    assert q2.override is None and q2.score < 28
    assert any(f"was made on notebook sha256 {first.submission.sha256[:12]}" in w and "not applied" in w
               for w in warnings)
