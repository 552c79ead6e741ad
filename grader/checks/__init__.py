"""The check registry.

A check is a pure function ``(evidence, params) -> Outcome`` registered under a name
with a pydantic params model. Built-in checks and plugins (entry-point group
``grader.checks``, each entry a module that registers on import) use the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from grader.evidence import Evidence

Status = Literal["pass", "fail", "error", "skipped"]


@dataclass(frozen=True)
class Outcome:
    """A check's verdict. ``fraction`` of the item's points is awarded (0..1)."""

    status: Status
    message: str
    fraction: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, message: str, **evidence: Any) -> "Outcome":
        return cls("pass", message, 1.0, evidence)

    @classmethod
    def failed(cls, message: str, fraction: float = 0.0, **evidence: Any) -> "Outcome":
        return cls("fail", message, fraction, evidence)

    @classmethod
    def errored(cls, message: str, **evidence: Any) -> "Outcome":
        return cls("error", message, 0.0, evidence)


CheckFunc = Callable[["Evidence", Any], Outcome]


@dataclass(frozen=True)
class Check:
    name: str
    params_model: type[BaseModel]
    func: CheckFunc
    doc: str


_REGISTRY: dict[str, Check] = {}
_loaded = False


class PluginError(KeyError):
    """A plugin named in the ``grader.checks`` entry-point group failed to import."""


def register(name: str, params_model: type[BaseModel]) -> Callable[[CheckFunc], CheckFunc]:
    """Decorator: register ``func`` as check ``name`` taking ``params_model``."""

    def wrap(func: CheckFunc) -> CheckFunc:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"check '{name}' is registered twice")
        _REGISTRY[name] = Check(name, params_model, func, (func.__doc__ or "").strip())
        return func

    return wrap


def _load() -> None:
    """Import the built-in checks and every plugin. Marked loaded only once all of them
    registered: a broken plugin is an error naming it, every time, not a half-filled
    registry that later says "no check named …"."""
    global _loaded
    if _loaded:
        return
    import_module("grader.checks.code")
    import_module("grader.checks.written")
    for ep in entry_points(group="grader.checks"):
        try:
            import_module(ep.value.split(":")[0])
        except Exception as exc:
            raise PluginError(
                f"the check plugin '{ep.name} = {ep.value}' (entry-point group grader.checks, "
                f"from {ep.dist.name if ep.dist else 'an unknown distribution'}) failed to "
                f"import: {type(exc).__name__}: {exc}; fix or uninstall it"
            ) from None
    _loaded = True


def get_check(name: str) -> Check:
    _load()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"no check named '{name}'; known checks: {known}")
    return _REGISTRY[name]


def all_checks() -> dict[str, Check]:
    _load()
    return dict(sorted(_REGISTRY.items()))
