"""Spec and rubric loading: errors name the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.api import load_grading
from grader.spec import ConfigError

ROOT = Path(__file__).resolve().parent.parent

SPEC = """schema_version = 1
id = "{id}"
title = "t"
solution = "solution.ipynb"
{extra}
"""
RUBRIC = """schema_version = 1
assignment = "{id}"
{items}
"""
ITEM = """[[items]]
id = "{item}"
check = "{check}"
title = "x"
points = {points}
{params}
"""


def make(tmp_path: Path, *, spec_extra="", items=None, aid="02-test") -> Path:
    folder = tmp_path / "assignments" / aid
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC.format(id=aid, extra=spec_extra))
    (tmp_path / "rubrics").mkdir(exist_ok=True)
    items = items if items is not None else [ITEM.format(item="p", check="param_count", points=10,
                                                         params="params = { expected = 9 }")]
    (tmp_path / "rubrics" / f"{aid}.toml").write_text(RUBRIC.format(id=aid, items="".join(items)))
    return folder


def test_bundled_assignment_has_150_code_and_150_readme_points():
    g = load_grading(assignment=ROOT / "assignments" / "01-very-basics")
    assert g.rubric.max_score == 300
    code = [i for i in g.rubric.items if i.check != "written_answer"]
    readme = [i for i in g.rubric.items if i.check == "written_answer"]
    assert [i.id for i in code] == ["param_count", "final_activation_removed",
                                    "hidden_activation_kept", "epochs", "loss_decreased",
                                    "runs_cleanly"]
    assert sum(i.points for i in code) == 150
    assert [i.id for i in readme] == [f"readme_q{n}" for n in range(1, 6)]
    assert all(i.points == 30 for i in readme)
    assert {i.params["question"] for i in readme} == {q.id for q in g.assignment.spec.answers.questions}


def test_new_assignment_is_just_files(tmp_path):
    g = load_grading(assignment=make(tmp_path))
    assert g.assignment.id == "02-test" and g.rubric.max_score == 10


def test_unknown_spec_field_names_file_and_field(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_grading(assignment=make(tmp_path, spec_extra="colour = 'blue'"))
    assert "assignment.toml" in str(exc.value) and "'colour'" in str(exc.value)


def test_bad_budget_type(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_grading(assignment=make(tmp_path, spec_extra="[execution]\ncell_timeout = 'long'"))
    assert "execution.cell_timeout" in str(exc.value)


def test_unknown_check(tmp_path):
    items = [ITEM.format(item="p", check="params_count", points=1, params="")]
    with pytest.raises(ConfigError) as exc:
        load_grading(assignment=make(tmp_path, items=items))
    assert "items[0].check" in str(exc.value) and "param_count" in str(exc.value)


def test_bad_check_params(tmp_path):
    items = [ITEM.format(item="p", check="param_count", points=1, params="params = { expect = 44 }")]
    with pytest.raises(ConfigError) as exc:
        load_grading(assignment=make(tmp_path, items=items))
    text = str(exc.value)
    assert "02-test.toml" in text and "items[0].params" in text and "grader checks" in text


def test_duplicate_items_and_negative_points(tmp_path):
    dup = [ITEM.format(item="p", check="runs_cleanly", points=1, params="")] * 2
    with pytest.raises(ConfigError, match="duplicate item ids"):
        load_grading(assignment=make(tmp_path, items=dup))
    neg = [ITEM.format(item="p", check="runs_cleanly", points=-1, params="")]
    with pytest.raises(ConfigError, match="items.0.points"):
        load_grading(assignment=make(tmp_path / "b", items=neg))


def test_rubric_for_another_assignment(tmp_path):
    folder = make(tmp_path)
    rubric = tmp_path / "rubrics" / "02-test.toml"
    rubric.write_text(rubric.read_text().replace('assignment = "02-test"', 'assignment = "03"'))
    with pytest.raises(ConfigError, match="field 'assignment'"):
        load_grading(assignment=folder)


def test_missing_assignment_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        load_grading(assignment="does-not-exist")
    folder = make(tmp_path)
    (folder / "assignment.toml").write_text("id = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_grading(assignment=folder)


def test_a_broken_plugin_is_named_every_time(monkeypatch):
    """A plugin that fails to import is an error naming its entry point, on every call,
    and the built-in checks are not left half-registered behind it."""
    from importlib.metadata import EntryPoint

    import grader.checks as registry

    broken = EntryPoint(name="mine", value="a_plugin_module_that_does_not_exist", group="grader.checks")
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [broken])
    for _ in range(2):
        with pytest.raises(registry.PluginError, match="check plugin 'mine = a_plugin_module_that_does_not_exist'"):
            registry.get_check("param_count")
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    assert registry.get_check("param_count").name == "param_count"
