"""Built-in checks on the trained model and its training, judged from host evidence."""

from __future__ import annotations

from pydantic import Field

from grader.checks import Outcome, register
from grader.evidence import BUILT_RULES, Evidence, epoch_stats, finite
from grader.models import Strict

# Autograd op names (see grader/kernel/instrument.py::_node_name) that are activations.
DEFAULT_ACTIVATIONS = [
    "tanh", "sigmoid", "relu", "leaky_relu", "elu", "gelu", "silu", "mish", "softplus",
    "hardtanh", "hardsigmoid", "hardswish", "log_sigmoid", "softmax", "log_softmax",
    "prelu", "rrelu", "threshold", "clamp", "clamp_min", "clamp_max", "softshrink",
    "hardshrink", "tanhshrink", "glu", "logit",
]


class ParamCountParams(Strict):
    expected: int = Field(ge=0, description="Required number of unique trainable parameters.")


class ActivationParams(Strict):
    activations: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ACTIVATIONS),
        description="Autograd op names that count as activations (e.g. 'tanh', 'relu').",
    )


class EpochsParams(Strict):
    expected: int = Field(ge=0, description="Required number of training epochs.")
    dataset_size: int | None = Field(
        None, ge=1, description="Samples in one epoch; default: distinct inputs seen in training."
    )


class LossParams(Strict):
    max_ratio: float = Field(
        0.9, gt=0, description="Pass if last-epoch mean loss <= max_ratio x first-epoch mean."
    )
    dataset_size: int | None = Field(None, ge=1, description="As for the epochs check.")


class NoParams(Strict):
    pass


def _no_training(ev: Evidence) -> Outcome | None:
    """The shared early exits: evidence absent, or nothing was trained."""
    if ev.facts is None:
        return Outcome.errored(
            f"could not check: {ev.facts_error or 'evidence missing'}",
            reason=ev.facts_error or "evidence missing",
        )
    if ev.run is None:
        return Outcome.failed(
            "no model was trained: no optimizer step ran on a model's parameters "
            "(did the training cell run? see the cell errors)",
            reason="no optimizer step",
        )
    return None


def _no_model(ev: Evidence) -> Outcome | None:
    """Early exits of the architecture items: they judge a model that was trained, or
    failing that, one that was built (see ``select_model_run``)."""
    if ev.facts is None:
        return _no_training(ev)
    if ev.model_run is None:
        return Outcome.failed(
            "no model was found: nothing was trained, no model was handed to an optimizer "
            "or called on data, and the notebook does not define exactly one model "
            "(did the cells that build it run? see the cell errors)",
            reason="no model",
        )
    return None


def _judged_on(ev: Evidence) -> str:
    """How the architecture items chose their model, when it was not trained."""
    if ev.model_rule == "trained":
        return ""
    return f" (judged on {BUILT_RULES[ev.model_rule]}: no training step ran)"


def _how(ev: Evidence) -> dict:
    return {"model_rule": ev.model_rule}


@register("param_count", ParamCountParams)
def param_count(ev: Evidence, p: ParamCountParams) -> Outcome:
    """Unique trainable parameters of the trained model equal `expected` (host recount)."""
    early = _no_model(ev)
    if early:
        return early
    if ev.tally is None:
        return Outcome.errored(
            f"could not count parameters: {ev.tally_error or 'evidence missing'}",
            reason=ev.tally_error or "evidence missing",
        )
    t = ev.tally
    layers = ", ".join(f"{name or '(root)'} ({kind}) {n}" for name, kind, n in t.layers)
    shared = "".join(f"; {alias} is shared with {orig} (counted once)" for alias, orig in t.shared)
    evidence = {
        "trainable_params": t.total,
        "layers": {name or "(root)": n for name, _, n in t.layers},
        "layer_types": {name or "(root)": kind for name, kind, _ in t.layers},
        "shared": [f"{a} = {b}" for a, b in t.shared],
        "frozen_params": t.frozen,
        "model_class": ev.model_run.model_class,
        **_how(ev),
    }
    detail = f"layers: {layers}{shared}{_judged_on(ev)}"
    if t.total == p.expected:
        return Outcome.passed(f"{t.total} trainable parameters, as asked — {detail}", **evidence)
    return Outcome.failed(
        f"your model has {t.total} trainable parameters; the task asks for {p.expected} — {detail}",
        **evidence,
    )


def _activations_in(ops: list[str], names: list[str]) -> list[str]:
    wanted = set(names)
    return [op for op in ops if op in wanted]


@register("final_activation_removed", ActivationParams)
def final_activation_removed(ev: Evidence, p: ActivationParams) -> Outcome:
    """No activation is applied after the model's last layer."""
    early = _no_model(ev)
    if early:
        return early
    graph = ev.model_run.graph
    if graph is None:
        return Outcome.errored("could not check: the model's output graph was not recorded",
                               reason="evidence missing")
    found = _activations_in(graph.final_ops, p.activations)
    evidence = {
        "final_op": found[0] if found else None,
        "ops_after_last_layer": graph.final_ops,
        "last_layer_op": graph.last_layer_op,
        **_how(ev),
    }
    if found:
        return Outcome.failed(
            f"your model applies {found[0]} to the output of its last layer; remove that "
            f"activation so the last layer's output is returned as is{_judged_on(ev)}",
            **evidence,
        )
    return Outcome.passed(f"no activation after the last layer{_judged_on(ev)}", **evidence)


@register("hidden_activation_kept", ActivationParams)
def hidden_activation_kept(ev: Evidence, p: ActivationParams) -> Outcome:
    """At least one nonlinearity remains between layers."""
    early = _no_model(ev)
    if early:
        return early
    graph = ev.model_run.graph
    if graph is None:
        return Outcome.errored("could not check: the model's output graph was not recorded",
                               reason="evidence missing")
    found = sorted(set(_activations_in(list(graph.inner_ops), p.activations)))
    evidence = {"hidden_activations": found, "inner_ops": graph.inner_ops, **_how(ev)}
    if found:
        return Outcome.passed(f"hidden activation kept: {', '.join(found)}{_judged_on(ev)}",
                              **evidence)
    return Outcome.failed(
        "no activation is left between your layers, so the network is linear and cannot "
        f"learn XOR; keep a nonlinearity (e.g. tanh) after the hidden layers{_judged_on(ev)}",
        **evidence,
    )


@register("epochs", EpochsParams)
def epochs(ev: Evidence, p: EpochsParams) -> Outcome:
    """The trained model ran exactly `expected` epochs (counted from training steps)."""
    early = _no_training(ev)
    if early:
        return early
    st = epoch_stats(ev.run, dataset_size=p.dataset_size, facts=ev.facts)
    evidence = {
        "epochs_run": st.epochs_run,
        "optimizer_steps": ev.run.steps,
        "samples_seen": st.samples,
        "dataset_size": st.dataset_size,
        "partial_epoch_samples": st.partial_samples,
        "epoch_rule": st.rule,
        "optimizer": ev.run.optimizer,
        "training_cells": sorted({ev.cell_positions[c] for c in ev.run.step_cells
                                  if c in ev.cell_positions}),
    }
    if st.limit_error:
        return Outcome.errored(f"could not count epochs: {st.limit_error}",
                               reason="recording limit", **evidence)
    steps = (f"{ev.run.steps} hand-written updates" if ev.run.optimizer.startswith("manual")
             else f"{ev.run.steps} optimizer steps")
    if st.rule == "DataLoader passes":
        partial = f" plus an unfinished pass ({st.partial_samples} samples)" if st.partial_samples else ""
        ran = (f"{st.epochs_run} epochs ran{partial} ({st.epochs_run} complete passes over the "
               f"DataLoader, {steps} over {st.samples} samples)")
    else:
        partial = (
            f" plus {st.partial_samples} of {st.dataset_size} samples of an unfinished epoch"
            if st.partial_samples else ""
        )
        ran = (
            f"{st.epochs_run} epochs ran{partial} ({steps} over "
            f"{st.samples} samples of a {st.dataset_size}-sample data set)"
        )
    if st.epochs_run == p.expected and not st.partial_samples:
        return Outcome.passed(ran, **evidence)
    return Outcome.failed(f"{ran}; the task asks for {p.expected} epochs", **evidence)


def loss_curve(losses: list[float | None], *, points: int = 200) -> list[list[float]]:
    """[epoch (1-based), mean loss] at most ``points`` times, evenly spread, first and
    last epoch always kept: enough to draw the curve, small enough for every report."""
    kept = [(i, v) for i, v in enumerate(losses, start=1) if finite(v)]
    if len(kept) > points:
        step = (len(kept) - 1) / (points - 1)
        kept = [kept[round(k * step)] for k in range(points)]
    return [[i, float(f"{v:.6g}")] for i, v in kept]


@register("loss_decreased", LossParams)
def loss_decreased(ev: Evidence, p: LossParams) -> Outcome:
    """Mean loss of the last epoch <= max_ratio x the first epoch's; NaN fails."""
    early = _no_training(ev)
    if early:
        return early
    st = epoch_stats(ev.run, dataset_size=p.dataset_size, facts=ev.facts)
    if st.limit_error:
        return Outcome.errored(f"could not compare the loss per epoch: {st.limit_error}",
                               reason="recording limit")
    losses = st.epoch_losses
    first = losses[0] if losses else None
    last = losses[-1] if losses else None
    evidence = {
        "loss_first": first,
        "loss_last": last,
        "epochs_with_loss": sum(1 for v in losses if v is not None),
        "nonfinite_losses": ev.run.nonfinite_losses,
        "max_ratio": p.max_ratio,
        "loss_curve": loss_curve(losses),
    }
    if ev.run.nonfinite_losses:
        return Outcome.failed(
            f"the loss became NaN or infinite at {ev.run.nonfinite_losses} steps; lower the "
            "learning rate or check the loss function",
            **evidence,
        )
    if not finite(first) or not finite(last):
        return Outcome.failed("no loss was recorded at a backward() call during training",
                              **evidence)
    if len(losses) < 2:
        return Outcome.failed("only one epoch ran, so no decrease can be seen", **evidence)
    ratio = last / first if first else float("inf")
    evidence["ratio"] = ratio
    text = f"mean loss went from {first:.4f} (first epoch) to {last:.4f} (last epoch)"
    if last <= first * p.max_ratio:
        return Outcome.passed(text, **evidence)
    return Outcome.failed(
        f"{text}; it should fall to at most {p.max_ratio:g}x the first epoch's", **evidence
    )


@register("runs_cleanly", NoParams)
def runs_cleanly(ev: Evidence, p: NoParams) -> Outcome:
    """Every cell ran without raising, within the time budget."""
    failures = [
        {"cell": f.cell, "error": f.error, "message": f.message} for f in ev.cell_failures
    ]
    evidence = {"cell_errors": failures, "execution_status": ev.execution_status}
    if ev.execution_status in ("not_run", "not_started"):
        return Outcome.errored(f"could not check: {ev.execution_reason}", **evidence)
    if ev.execution_status not in ("ok", "errors"):
        return Outcome.failed(
            f"the notebook did not finish: {ev.execution_reason or ev.execution_status}", **evidence
        )
    if not failures:
        return Outcome.passed(f"all {ev.cells_run} code cells ran without errors", **evidence)
    listed = "; ".join(f"cell {f.cell}: {f.error}: {f.message}" for f in ev.cell_failures[:5])
    more = f" (+{len(failures) - 5} more)" if len(failures) > 5 else ""
    return Outcome.failed(f"{len(failures)} cell(s) raised — {listed}{more}", **evidence)
