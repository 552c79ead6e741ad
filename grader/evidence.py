"""Host-side evidence: facts from the kernel plus what the host recomputes itself.

Pure functions, no kernel: the parameter count is recounted from the saved tensors
(loaded with ``weights_only=True``, never unpickled), epochs are derived from the
samples each optimizer step consumed, and per-epoch loss means from the losses seen
at each backward. Checks read only the ``Evidence`` built here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from grader.answers import Answer
from grader.facts import Facts, RunFacts


@dataclass(frozen=True)
class CellFailure:
    cell: int
    error: str
    message: str


@dataclass(frozen=True)
class ParamTally:
    """Unique trainable parameters of the trained model, counted on the host."""

    total: int
    layers: list[tuple[str, str, int]]  # (module path, module type, parameters counted there)
    shared: list[tuple[str, str]]  # (alias, name it aliases): counted once
    frozen: int = 0


@dataclass(frozen=True)
class EpochStats:
    samples: int
    dataset_size: int
    epochs_run: int
    partial_samples: int
    epoch_losses: list[float | None]


@dataclass(frozen=True)
class Evidence:
    """Everything checks may look at. Built once per submission."""

    facts: Facts | None = None
    facts_error: str | None = None
    run: RunFacts | None = None
    tally: ParamTally | None = None
    tally_error: str | None = None
    cell_failures: list[CellFailure] = field(default_factory=list)
    execution_status: str = "ok"
    execution_reason: str | None = None
    cells_total: int = 0
    cells_run: int = 0
    questions: dict[str, str] = field(default_factory=dict)  # question id -> text
    answers: dict[str, Answer] = field(default_factory=dict)  # question id -> best answer found


def select_trained_run(facts: Facts) -> RunFacts | None:
    """The run whose optimizer stepped last: "if several were trained, the last one"."""
    trained = [r for r in facts.runs if r.steps > 0 and r.model_class is not None]
    return max(trained, key=lambda r: r.last_seq) if trained else None


def _storage_key(t) -> tuple:
    return (
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        tuple(t.shape),
        tuple(t.stride()),
    )


def tally_params(path: Path, run: RunFacts) -> ParamTally:
    """Recount unique trainable parameters from the saved tensors.

    Tensors that share storage (a layer reused, a tied weight) count once; the first
    name in module order owns them and later names are reported as aliases.
    """
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, forged or foreign file
        raise ValueError(f"saved tensors unreadable: {type(exc).__name__}") from None
    if not isinstance(saved, dict) or not {"trainable", "frozen", "optimizer_only"} <= set(saved):
        raise ValueError("saved tensors have an unexpected layout")
    types = {m.name: m.type for m in run.modules}
    seen: dict[tuple, str] = {}
    per_layer: dict[str, int] = {}
    shared: list[tuple[str, str]] = []
    total = 0
    trainable = dict(saved["trainable"])
    trainable.update(saved["optimizer_only"])
    for name, tensor in trainable.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"saved entry '{name}' is not a tensor")
        key = _storage_key(tensor)
        if key in seen:
            shared.append((name, seen[key]))
            continue
        seen[key] = name
        layer = name.rsplit(".", 1)[0] if "." in name else ""
        per_layer[layer] = per_layer.get(layer, 0) + tensor.numel()
        total += tensor.numel()
    frozen = sum(t.numel() for t in saved["frozen"].values() if isinstance(t, torch.Tensor))
    layers = [(name, types.get(name, "tensor"), n) for name, n in per_layer.items()]
    return ParamTally(total=total, layers=layers, shared=shared, frozen=frozen)


def epoch_stats(run: RunFacts, *, dataset_size: int | None = None) -> EpochStats:
    """Epochs that ran = training samples consumed / size of the data set.

    Per-sample, mini-batch and full-batch loops all consume ``dataset_size`` samples
    per epoch, so the count does not depend on how the loop is written; forwards that
    never reached an optimizer step (evaluation, a summary, a printed log) were not
    counted in the kernel.
    """
    size = dataset_size or run.unique_rows
    samples = sum(run.step_samples)
    if size <= 0:
        return EpochStats(samples, 0, 0, samples, [])
    sums: dict[int, list[float]] = {}
    consumed = 0
    for n, loss in zip(run.step_samples, run.step_losses):
        epoch = consumed // size
        consumed += n
        if loss is not None:
            sums.setdefault(epoch, []).append(loss)
    n_epochs = max(samples // size, 1 if samples else 0)
    epoch_losses: list[float | None] = []
    for e in range(max(n_epochs, (max(sums) + 1) if sums else 0)):
        values = sums.get(e)
        epoch_losses.append(sum(values) / len(values) if values else None)
    return EpochStats(samples, size, samples // size, samples % size, epoch_losses)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
