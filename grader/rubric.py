"""Rubrics: ``rubrics/<id>.toml`` -- points, check parameters and hints per item.

An item names a registered check and gives it parameters; the check's own pydantic
model validates them when the rubric loads, so a typo fails at load time with the
file, the field and the fix, not halfway through a batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from grader.checks import get_check
from grader.models import Strict
from grader.spec import ConfigError, format_validation_error, read_toml

RUBRIC_SCHEMA_VERSION = 1
Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]


class RubricItem(Strict):
    id: str = Field(description="Stable id of the item; part of the report format.")
    check: str = Field(description="Registered check name (see `grader checks`).")
    title: str = Field(description="What the item asks, shown to students.")
    points: float = Field(ge=0, description="Points for a full pass.")
    hint: str = Field("", description="Shown to the student when the item does not pass.")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters of the check.")
    visibility: Visibility | None = Field(
        None, description="Gradescope: when students see this item (default: "
        "[gradescope] visibility).")


class GradescopeOptions(Strict):
    """How Gradescope shows the results (its results.json `visibility` values)."""

    visibility: Visibility = Field(
        "visible", description="When students see each item's points and message.")
    hint_visibility: Visibility = Field(
        "visible", description="When students see the hints: with the item ('visible'), or "
        "later, as a separate 0-point entry (e.g. 'after_due_date').")


class Rubric(Strict):
    schema_version: int = Field(description=f"Rubric format version; this grader reads {RUBRIC_SCHEMA_VERSION}.")
    assignment: str = Field(description="Assignment id this rubric belongs to.")
    score_step: float = Field(
        0.01, gt=0, description="Scores are rounded to a multiple of this (1: whole points)."
    )
    items: list[RubricItem]
    gradescope: GradescopeOptions = Field(
        default_factory=GradescopeOptions, description="Gradescope's visibility of the results.")

    @model_validator(mode="after")
    def _unique_ids(self) -> "Rubric":
        ids = [item.id for item in self.items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate item ids: {', '.join(dupes)}")
        return self

    @property
    def max_score(self) -> float:
        return sum(item.points for item in self.items)


def load_rubric(path: Path, *, assignment_id: str) -> tuple[Rubric, dict[str, BaseModel]]:
    """Load a rubric and validate every item's params against its check."""
    data = read_toml(path)
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
    if rubric.schema_version != RUBRIC_SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: field 'schema_version' is {rubric.schema_version}; this grader reads "
            f"{RUBRIC_SCHEMA_VERSION}"
        )
    if rubric.assignment != assignment_id:
        raise ConfigError(
            f"{path}: field 'assignment' is '{rubric.assignment}' but the spec's id is "
            f"'{assignment_id}'; make them the same"
        )
    params: dict[str, BaseModel] = {}
    for n, item in enumerate(rubric.items):
        try:
            check = get_check(item.check)
        except KeyError as exc:
            raise ConfigError(f"{path}: field 'items[{n}].check': {exc.args[0]}") from None
        try:
            params[item.id] = check.params_model.model_validate(item.params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"{path}: field 'items[{n}].params.{where}' (item '{item.id}'): "
                f"{first['msg']}; see `grader checks` for the parameters of '{item.check}'"
            ) from None
    return rubric, params
