"""The contract between the kernel and the host: what the probe writes, validated.

Everything here is *evidence*, written by code running in the student's kernel. The
host validates its shape (pydantic, ``extra="forbid"``) and its nonce, then decides
verdicts itself; a file that fails either test is treated as absent evidence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from grader.models import Strict

FACTS_SCHEMA_VERSION = 1


class ModuleInfo(Strict):
    name: str = Field(description="Qualified name in the module tree ('' for the root).")
    type: str = Field(description="Class name of the module.")
    params: list[str] = Field(description="Names of the parameters the module owns directly.")


class GraphFacts(Strict):
    final_ops: list[str] = Field(
        description="Autograd ops between the model's output and its last parameterised op."
    )
    last_layer_op: str | None = Field(description="The last parameterised op (e.g. 'addmm').")
    inner_ops: dict[str, int] = Field(description="Ops below the last layer, with counts.")


class RunFacts(Strict):
    """What one optimizer did, and the model whose parameters it stepped."""

    index: int
    optimizer: str
    model_class: str | None
    modules: list[ModuleInfo]
    steps: int = Field(ge=0)
    step_samples: list[int] = Field(description="Training samples consumed before each step.")
    step_losses: list[float | None] = Field(
        description="Mean loss of the backward calls before each step (None: none or NaN)."
    )
    nonfinite_losses: int = Field(ge=0)
    unique_rows: int = Field(ge=0, description="Distinct input rows seen in training.")
    rows_capped: bool
    last_seq: int = Field(ge=0, description="Global order of this run's last step.")
    graph: GraphFacts | None
    tensors_file: str | None
    step_passes: list[int] = Field(
        default_factory=list,
        description="Per step, the DataLoader pass its batch came from (-1: no DataLoader).",
    )
    step_cells: list[int] = Field(
        default_factory=list,
        description="Execution counts of the cells in which this run stepped, in order.",
    )
    picked_by: Literal["optimizer", "forward", "namespace"] | None = Field(
        None,
        description="Set when nothing was trained: why this built model was described "
        "(handed to an optimizer, called on data, the only model in the namespace).",
    )


class LoaderPass(Strict):
    batches: int = Field(ge=0, description="Batches the DataLoader served in this pass.")
    complete: bool = Field(description="The pass ran to the loader's end.")
    dataset_len: int | None = Field(description="len(loader.dataset), if it has one.")


class Facts(Strict):
    schema_version: int
    nonce: str
    notes: list[str]
    runs: list[RunFacts]
    loader_passes: list[LoaderPass] = Field(default_factory=list)
    rows_recorded_limit: int | None = Field(None, description="Distinct input rows kept at most.")


class FactsError(Exception):
    """The kernel-side evidence is missing or cannot be trusted."""


def load_facts(path: Path, *, nonce: str) -> Facts:
    """Read and validate ``facts.json``; raise FactsError with a reason otherwise."""
    if not path.is_file():
        raise FactsError("evidence missing: the probe cell wrote no facts file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        facts = Facts.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise FactsError(f"evidence malformed: {str(exc).splitlines()[0]}") from None
    if facts.nonce != nonce:
        raise FactsError("evidence rejected: the facts file does not carry this run's nonce")
    if facts.schema_version != FACTS_SCHEMA_VERSION:
        raise FactsError(f"evidence rejected: facts schema {facts.schema_version}")
    return facts
