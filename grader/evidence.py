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
    rule: str = "distinct inputs"  # how an epoch was told: see epoch_stats
    limit_error: str | None = None  # a recording limit was reached: the count is unknown


@dataclass(frozen=True)
class Evidence:
    """Everything checks may look at. Built once per submission."""

    facts: Facts | None = None
    facts_error: str | None = None
    run: RunFacts | None = None  # the trained run: epochs and loss are judged on it
    model_run: RunFacts | None = None  # the model the architecture items are judged on
    model_rule: str = "trained"  # why model_run: see select_model_run
    tally: ParamTally | None = None  # unique parameters of model_run
    tally_error: str | None = None
    cell_failures: list[CellFailure] = field(default_factory=list)
    execution_status: str = "ok"
    execution_reason: str | None = None
    cells_total: int = 0
    cells_run: int = 0
    # execution count -> the cell's 1-based position: where the facts' step_cells are
    cell_positions: dict[int, int] = field(default_factory=dict)
    questions: dict[str, str] = field(default_factory=dict)  # question id -> text
    answers: dict[str, Answer] = field(default_factory=dict)  # question id -> best answer found


def select_trained_run(facts: Facts) -> RunFacts | None:
    """The run whose optimizer stepped last: "if several were trained, the last one"."""
    trained = [r for r in facts.runs
               if r.steps > 0 and r.model_class is not None and r.picked_by is None]
    return max(trained, key=lambda r: r.last_seq) if trained else None


# When nothing was trained, a TA still judges the architecture that was built: the
# model handed to an optimizer, else the one called on data, else the only one there.
BUILT_RULES = {
    "optimizer": "the model handed to the optimizer",
    "forward": "the model last called on data",
    "namespace": "the only model defined in the notebook",
}


def select_model_run(facts: Facts) -> tuple[RunFacts | None, str]:
    """The run the architecture items judge, and the rule that chose it ("trained" or a
    key of BUILT_RULES)."""
    trained = select_trained_run(facts)
    if trained is not None:
        return trained, "trained"
    built = {r.picked_by: r for r in facts.runs if r.picked_by and r.model_class is not None}
    for rule in BUILT_RULES:
        if rule in built:
            return built[rule], rule
    return None, "trained"


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


def epoch_stats(
    run: RunFacts, *, dataset_size: int | None = None, facts: Facts | None = None
) -> EpochStats:
    """Epochs that ran = training samples consumed / size of the data set.

    Per-sample, mini-batch and full-batch loops all consume ``dataset_size`` samples
    per epoch, so the count does not depend on how the loop is written; forwards that
    never reached an optimizer step (evaluation, a summary, a printed log) were not
    counted in the kernel. The size is the rubric's ``dataset_size``, else (when every
    step drew its batch from a DataLoader) an epoch is one complete pass over the
    loader, else the distinct input rows seen in training.
    """
    samples = sum(run.step_samples)
    if run.steps > len(run.step_samples):
        return _limited(samples, f"only the first {len(run.step_samples):,} of {run.steps:,} "
                        "steps were recorded (the grader's recording limit), so the epochs "
                        "cannot be counted; a TA must check this by hand")
    passes = facts.loader_passes if facts is not None else []
    if (dataset_size is None and passes and run.step_passes
            and all(0 <= p < len(passes) for p in run.step_passes)):
        return _loader_epochs(run, passes)
    if dataset_size is None and run.rows_capped:
        limit = facts.rows_recorded_limit if facts is not None and facts.rows_recorded_limit else None
        return _limited(samples, f"more than {limit or run.unique_rows:,} distinct input rows were "
                        "seen (the grader's recording limit), so the size of the data set is "
                        "unknown; set dataset_size for this item in the rubric")
    size = dataset_size or run.unique_rows
    rule = "dataset_size from the rubric" if dataset_size else "distinct inputs"
    if size <= 0:
        return EpochStats(samples, 0, 0, samples, [], rule)
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
    return EpochStats(samples, size, samples // size, samples % size, epoch_losses, rule)


def _limited(samples: int, why: str) -> EpochStats:
    return EpochStats(samples, 0, 0, 0, [], "unknown", why)


def _loader_epochs(run: RunFacts, passes: list) -> EpochStats:
    """An epoch is one complete pass over the DataLoader: batches may be shuffled,
    of any size, or carry fresh noise each step, and a pass is still one epoch."""
    order: list[int] = []
    losses: dict[int, list[float]] = {}
    samples: dict[int, int] = {}
    for pid, n, loss in zip(run.step_passes, run.step_samples, run.step_losses):
        if pid not in samples:
            order.append(pid)
            samples[pid] = 0
        samples[pid] += n
        if loss is not None:
            losses.setdefault(pid, []).append(loss)
    complete = [pid for pid in order if passes[pid].complete]
    partial = sum(samples[pid] for pid in order if not passes[pid].complete)
    size = next((passes[pid].dataset_len for pid in order if passes[pid].dataset_len), 0) or (
        samples[complete[0]] if complete else 0)
    epoch_losses = [sum(losses[pid]) / len(losses[pid]) if losses.get(pid) else None
                    for pid in order]
    return EpochStats(sum(samples.values()), size, len(complete), partial, epoch_losses,
                      "DataLoader passes")


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
