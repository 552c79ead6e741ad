"""TA overrides: a small TOML file of (submission, item, points, comment, by).

    schema_version = 1
    [[override]]
    submission = "alice"          # the report's name (file name without .json)
    item = "readme_q2"
    points = 25
    by = "TA Jane"
    comment = "explains overshoot with an example the keyword list missed"
    sha256 = "9f2c…"              # optional: only while the notebook is the one judged

Applied on the host after automatic scoring; the report keeps both the automatic and
the final points and says who changed them and why. ``grader grade --overrides FILE``
copies the file to ``OUT/overrides.toml``, and every later grading into ``OUT`` applies
it again, so re-grading never loses a TA's decision.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field, ValidationError

from grader.models import Strict
from grader.report import CheckResult, Override, Report
from grader.rubric import Rubric
from grader.spec import ConfigError, format_validation_error, read_toml

STORED_NAME = "overrides.toml"


class OverrideEntry(Strict):
    submission: str = Field(description="Report name: the submission folder or notebook stem.")
    item: str = Field(description="Rubric item id.")
    points: float = Field(ge=0, description="Final points for the item.")
    by: str = Field(description="Who decided.")
    comment: str = Field("", description="Why; shown in the report.")
    sha256: str | None = Field(
        None, description="The notebook's sha256 the decision was made on (the report's "
                          "submission.sha256); once the submission changes, the override is "
                          "no longer applied and a warning says so.",
    )

    def holds_for(self, report: Report) -> bool:
        return self.sha256 is None or self.sha256 == report.submission.sha256


class OverridesFile(Strict):
    schema_version: int = 1
    override: list[OverrideEntry] = Field(default_factory=list)


def load_overrides(path: Path, *, rubric: Rubric) -> list[OverrideEntry]:
    data = read_toml(path)
    try:
        parsed = OverridesFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
    items = {i.id: i for i in rubric.items}
    for n, entry in enumerate(parsed.override):
        if entry.item not in items:
            raise ConfigError(
                f"{path}: field 'override[{n}].item' is '{entry.item}', not an item of the "
                f"rubric; use one of: {', '.join(items)}"
            )
        if entry.points > items[entry.item].points:
            raise ConfigError(
                f"{path}: field 'override[{n}].points' is {entry.points:g}, more than the "
                f"{items[entry.item].points:g} points of '{entry.item}'; lower it"
            )
    return parsed.override


def resolve(*, given: Path | None, out_dir: Path | None,
            on_warning: Callable[[str], None] | None = None) -> Path | None:
    """The overrides in force: the given file (stored in OUT), else OUT's stored copy.
    A stored copy with other decisions (made with ``grader review``, say) is never lost:
    it is kept beside it, dated, and a warning says where."""
    if given is not None:
        if out_dir is not None:
            stored = out_dir / STORED_NAME
            out_dir.mkdir(parents=True, exist_ok=True)
            if stored.exists() and not stored.samefile(given) \
                    and stored.read_bytes() != given.read_bytes():
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                kept = stored.with_name(f"overrides.{stamp}.toml")
                stored.replace(kept)
                if on_warning:
                    on_warning(f"{stored} held other decisions than {given}: kept as {kept.name}; "
                               f"merge what you need into {given}, or grade without --overrides")
            if not stored.exists() or not stored.samefile(given):
                shutil.copyfile(given, stored)
        return given
    if out_dir is not None and (out_dir / STORED_NAME).is_file():
        return out_dir / STORED_NAME
    return None


def apply_overrides(report: Report, name: str, entries: list[OverrideEntry]) -> Report:
    """Idempotent: every item starts again from its automatic score, so a saved report
    (re-used on resume) never takes a TA's points for the grader's, and an override
    removed from the file is removed from the report."""
    mine = {e.item: e for e in entries if e.submission == name and e.holds_for(report)}
    if not mine and all(c.override is None for c in report.checks):
        return report
    checks: list[CheckResult] = []
    for c in report.checks:
        auto = c.auto_score if c.override is not None and c.auto_score is not None else c.score
        e = mine.get(c.id)
        if e is None:
            checks.append(c.model_copy(update={"score": auto, "auto_score": None, "override": None}))
            continue
        checks.append(c.model_copy(update={
            "auto_score": auto,
            "score": e.points,
            "override": Override(points=e.points, by=e.by, comment=e.comment),
        }))
    return report.model_copy(update={"checks": checks,
                                     "score": round(sum(c.score for c in checks), 2)})


def save_override(path: Path, entry: OverrideEntry, *, rubric: Rubric) -> None:
    """Add ``entry`` to the overrides file at ``path`` (made if missing), replacing an
    earlier decision on the same submission and item; the file's other entries and its
    comments are kept (tomlkit). Raises ConfigError, writing nothing, if the result would
    not load (an item not in the rubric, more points than the item has)."""
    import tomlkit

    from grader.api import write_atomic

    if path.is_file():
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("TA decisions: applied on every `grader grade` into this folder"))
        doc["schema_version"] = 1
    tables = doc.get("override")
    if tables is None:
        tables = tomlkit.aot()
        doc["override"] = tables
    for n in reversed([n for n, t in enumerate(tables)
                       if t.get("submission") == entry.submission and t.get("item") == entry.item]):
        del tables[n]
    table = tomlkit.table()
    for key, value in entry.model_dump(exclude_none=True).items():
        table[key] = value
    tables.append(table)
    text = tomlkit.dumps(doc)
    staged = path.with_name(f".{path.name}.check")
    staged.write_text(text, encoding="utf-8")
    try:
        load_overrides(staged, rubric=rubric)  # never write a file the next grading rejects
    finally:
        staged.unlink(missing_ok=True)
    write_atomic(path, text)
