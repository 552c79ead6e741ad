"""The one base of every config, params, facts and report model: unknown fields are
errors. A typo in a rubric ("concept_for_full") fails at load time, naming the field,
instead of silently meaning the default; check plugins use it for their params too."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
