"""Instrumentation that runs *inside* the student's kernel.

This file is never imported by the host: the executor reads it as text and runs it
in a fresh module in the kernel before any student cell (see ``grader.execute``).
It therefore depends only on the standard library and torch.

It records what happened -- forwards, backwards, optimizer steps, the autograd graph
of the trained model's output -- and writes those facts as JSON plus the trained
tensors with ``torch.save``. It never decides a verdict: the kernel is the student's
territory, so every judgement is made on the host from these facts.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import sys
import zlib

import torch

# Student code may patch builtins (`builtins.sum = ...`) before the probe runs; bind the
# ones used here now, while they are still the real ones.
import builtins as _builtins

(sum, len, max, min, any, next, isinstance, id, vars, type, float, int, str, list, dict,
 set, tuple, sorted, reversed, range, enumerate, zip, iter, hasattr, getattr, open) = (
    _builtins.sum, _builtins.len, _builtins.max, _builtins.min, _builtins.any, _builtins.next,
    _builtins.isinstance, _builtins.id, _builtins.vars, _builtins.type, _builtins.float,
    _builtins.int, _builtins.str, _builtins.list, _builtins.dict, _builtins.set,
    _builtins.tuple, _builtins.sorted, _builtins.reversed, _builtins.range,
    _builtins.enumerate, _builtins.zip, _builtins.iter, _builtins.hasattr, _builtins.getattr,
    _builtins.open,
)

FACTS_SCHEMA_VERSION = 1

# Autograd nodes that only move or reshape data: they are transparent when we look
# for "what op comes after the last layer".
_SHAPE_OPS = {
    "View", "UnsafeView", "Reshape", "Alias", "T", "Transpose", "Permute", "Expand",
    "Squeeze", "Unsqueeze", "Clone", "ToCopy", "Contiguous", "Select", "Slice",
    "AsStrided", "Flatten", "Unflatten", "Copy", "Detach",
}
_MAX_GRAPH_NODES = 5000


def _node_name(node) -> str:
    """'LeakyReluBackward0' -> 'leaky_relu'; 'AccumulateGrad' -> 'accumulate_grad'."""
    name = type(node).__name__
    cut = name.find("Backward")
    if cut > 0:
        name = name[:cut]
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _is_shape(node) -> bool:
    name = type(node).__name__
    cut = name.find("Backward")
    return (name[:cut] if cut > 0 else name) in _SHAPE_OPS


def _module_tree(root):
    """Yield (qualified_name, module) over the registered tree.

    Walks the instance dicts directly so that an overridden ``named_modules`` or
    ``parameters`` on the student's class cannot hide anything.
    """
    seen = set()
    stack = [("", root)]
    while stack:
        prefix, mod = stack.pop()
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        yield prefix, mod
        children = vars(mod).get("_modules", {}) or {}
        for name, child in reversed(list(children.items())):
            if child is not None:
                stack.append((f"{prefix}.{name}" if prefix else name, child))


def _named_tensors(root):
    """Every registered parameter, under every name it is reachable by (aliases kept)."""
    out = []
    seen_modules = set()
    stack = [("", root)]
    while stack:
        prefix, mod = stack.pop()
        params = vars(mod).get("_parameters", {}) or {}
        for name, p in params.items():
            if p is not None:
                out.append((f"{prefix}.{name}" if prefix else name, p))
        if id(mod) in seen_modules:
            continue
        seen_modules.add(id(mod))
        children = vars(mod).get("_modules", {}) or {}
        for name, child in reversed(list(children.items())):
            if child is not None:
                stack.append((f"{prefix}.{name}" if prefix else name, child))
    return out


def _optimizer_params(optimizer):
    params = []
    for group in getattr(optimizer, "param_groups", []):
        params.extend(p for p in group.get("params", []) if isinstance(p, torch.Tensor))
    return params


class _Forward:
    """One call of a top-level module (a forward not nested in another module's)."""

    __slots__ = ("module", "samples", "rows", "grad_fn", "used")

    def __init__(self, module, samples, rows, grad_fn):
        self.module = module
        self.samples = samples
        self.rows = rows
        self.grad_fn = grad_fn
        self.used = False  # set when gradient flows back through the output


class _Run:
    """Everything one optimizer did."""

    def __init__(self, optimizer, index):
        self.index = index
        self.optimizer = optimizer
        self.steps = 0
        self.step_samples: list[int] = []
        self.step_losses: list[float | None] = []
        self.rows: set[int] = set()
        self.rows_capped = False
        self.module = None
        self.grad_fn = None
        self.last_seq = 0


class Recorder:
    def __init__(self, config: dict):
        self.config = config
        self.max_steps = int(config.get("max_steps_recorded", 200_000))
        self.max_rows = int(config.get("max_rows", 100_000))
        self.max_pending = 10_000
        self.depth = 0
        self.seq = 0
        self.pending: list[_Forward] = []
        self.pending_losses: list[float] = []
        self.runs: dict[int, _Run] = {}
        self.notes: list[str] = []
        self.hook_handles = []
        self.in_backward = False
        self.rows_full = False
        self.owned_cache: dict[int, tuple] = {}
        self.opt_cache: dict[int, tuple] = {}

    # -- bookkeeping -------------------------------------------------------------
    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 50:
            self.notes.append(text)

    def root_forward(self, module, args, output):
        """A top-level module call ended (not nested in another module's forward)."""
        if not torch.is_grad_enabled():
            return
        state = module.__dict__
        if not state.get("_parameters") and not state.get("_modules"):
            return  # a loss or other parameterless module
        out = output
        if isinstance(out, (tuple, list)):
            out = next((o for o in out if isinstance(o, torch.Tensor)), None)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        # An input that carries a graph is an intermediate value (a layer called on
        # another layer's output): it brings no new samples.
        data_input = x is not None and x.grad_fn is None
        samples, rows = 0, ()
        if data_input:
            samples, rows = self._rows(x)
        fwd = _Forward(module, samples, rows, out.grad_fn)

        def _mark_used(grad, fwd=fwd):
            fwd.used = True

        try:
            out.register_hook(_mark_used)
        except RuntimeError:
            return
        if len(self.pending) >= self.max_pending:
            del self.pending[: self.max_pending // 2]
        self.pending.append(fwd)

    def _rows(self, x):
        """How many samples a batch holds, and a hash of each (to size the data set)."""
        t = x.detach()
        n = 1 if t.dim() <= 1 else int(t.shape[0])
        if self.rows_full:
            return n, ()
        try:  # runs on every training step: one copy to bytes, one checksum per row
            if t.device.type != "cpu":
                t = t.cpu()
            if not t.is_contiguous():
                t = t.contiguous()
            data = t.numpy().tobytes()
            if n == 1:
                return 1, (zlib.crc32(data),)
            size = len(data) // n
            view = memoryview(data)
            rows = tuple(zlib.crc32(view[i * size:(i + 1) * size]) for i in range(n))
        except Exception:  # exotic dtypes: size only
            rows = ()
        return n, rows

    def owned(self, module) -> set[int]:
        """ids of a module's parameters; cached, refreshed every 1024 steps."""
        key = id(module)
        hit = self.owned_cache.get(key)
        if hit is None or hit[0] is not module or self.seq - hit[2] > 1024:
            hit = (module, {id(p) for _, p in _named_tensors(module)}, self.seq)
            self.owned_cache[key] = hit
        return hit[1]

    def record_backward(self, tensor):
        try:
            t = tensor.detach()
            value = t.item() if t.numel() == 1 else float(t.float().mean())
        except Exception:
            value = float("nan")
        self.pending_losses.append(value)

    def on_step(self, optimizer, args, kwargs):
        run = self.runs.get(id(optimizer))
        if run is None or run.optimizer is not optimizer:
            run = _Run(optimizer, len(self.runs))
            self.runs[id(optimizer)] = run
        cached = self.opt_cache.get(id(optimizer))
        if cached is None or cached[0] is not optimizer or run.steps % 1024 == 0:
            cached = (optimizer, {id(p) for p in _optimizer_params(optimizer)})
            self.opt_cache[id(optimizer)] = cached
        opt_ids = cached[1]
        samples = 0
        for fwd in self.pending:
            if not fwd.used or not (self.owned(fwd.module) & opt_ids):
                continue
            samples += fwd.samples
            if len(run.rows) < self.max_rows:
                run.rows.update(fwd.rows)
            else:
                run.rows_capped = self.rows_full = True
            run.module = fwd.module
            run.grad_fn = fwd.grad_fn
        losses = [v for v in self.pending_losses]
        run.steps += 1
        if len(run.step_samples) < self.max_steps:
            run.step_samples.append(samples)
            run.step_losses.append(sum(losses) / len(losses) if losses else None)
        self.seq += 1
        run.last_seq = self.seq
        self.pending.clear()
        self.pending_losses.clear()

    def reset_cell(self, *args, **kwargs):
        self.depth = 0  # a KeyboardInterrupt between frames must not leave it raised

    # -- analysis at the end -------------------------------------------------------
    def pick_model(self, run):
        """The module that owns the parameters this optimizer stepped.

        Prefers the module with the largest overlap, then the one with the fewest
        parameters the optimizer did not step (a container of several models loses
        to the model itself), then the module the training loop actually called.
        """
        opt_ids = {id(p) for p in _optimizer_params(run.optimizer)}
        candidates = {}
        if run.module is not None:
            candidates[id(run.module)] = run.module
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.nn.Module):
                    candidates[id(obj)] = obj
            except Exception:
                continue
        best, best_key = None, None
        for mod in candidates.values():
            own = {id(p) for _, p in _named_tensors(mod)}
            overlap = len(own & opt_ids)
            if not overlap:
                continue
            key = (overlap, -len(own - opt_ids), mod is run.module)
            if best_key is None or key > best_key:
                best, best_key = mod, key
        return best

    def graph_facts(self, run, model):
        """Ops between the model's output and its last parameterised op, and below it."""
        if run.grad_fn is None or model is None:
            return None
        param_ids = {id(p) for _, p in _named_tensors(model)}
        param_ids |= {id(p) for p in _optimizer_params(run.optimizer)}

        def parameterised(node) -> bool:
            stack, seen = [node], set()
            while stack:
                n = stack.pop()
                for child, _ in getattr(n, "next_functions", ()):
                    if child is None or id(child) in seen:
                        continue
                    seen.add(id(child))
                    var = getattr(child, "variable", None)
                    if var is not None and id(var) in param_ids:
                        return True
                    if _is_shape(child):
                        stack.append(child)
            return False

        final_ops, frontier, seen = [], [], set()
        queue = [run.grad_fn]
        while queue and len(seen) < _MAX_GRAPH_NODES:
            node = queue.pop(0)
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if hasattr(node, "variable"):
                continue
            if parameterised(node):
                frontier.append(node)
                continue
            if not _is_shape(node):
                final_ops.append(_node_name(node))
            queue.extend(child for child, _ in node.next_functions)

        inner: dict[str, int] = {}
        last_layer_op = _node_name(frontier[0]) if frontier else None
        queue, seen_inner = list(frontier), set()
        while queue and len(seen_inner) < _MAX_GRAPH_NODES:
            node = queue.pop()
            if node is None or id(node) in seen_inner or hasattr(node, "variable"):
                continue
            seen_inner.add(id(node))
            if not _is_shape(node):
                name = _node_name(node)
                inner[name] = inner.get(name, 0) + 1
            queue.extend(child for child, _ in node.next_functions)
        if last_layer_op and inner.get(last_layer_op):
            inner[last_layer_op] -= 1
            if not inner[last_layer_op]:
                del inner[last_layer_op]
        return {"final_ops": final_ops, "last_layer_op": last_layer_op, "inner_ops": inner}

    def finish(self, out_dir: str, nonce: str) -> None:
        os.makedirs(out_dir, exist_ok=True)
        runs = []
        for run in sorted(self.runs.values(), key=lambda r: r.index):
            model = self.pick_model(run)
            tensors_file = None
            modules = []
            trainable, frozen = {}, {}
            if model is not None:
                for name, mod in _module_tree(model):
                    own = vars(mod).get("_parameters", {}) or {}
                    modules.append({
                        "name": name,
                        "type": type(mod).__name__,
                        "params": [k for k, v in own.items() if v is not None],
                    })
                for name, p in _named_tensors(model):
                    (trainable if p.requires_grad else frozen)[name] = p.detach()
            named_ids = {id(p) for _, p in (_named_tensors(model) if model is not None else [])}
            extra = {}
            for g, group in enumerate(getattr(run.optimizer, "param_groups", [])):
                for i, p in enumerate(group.get("params", [])):
                    if isinstance(p, torch.Tensor) and id(p) not in named_ids:
                        extra[f"optimizer.param_groups[{g}][{i}]"] = p.detach()
            if model is not None or extra:
                tensors_file = f"tensors-{run.index}.pt"
                torch.save(
                    {"trainable": trainable, "frozen": frozen, "optimizer_only": extra},
                    os.path.join(out_dir, tensors_file),
                )
            runs.append({
                "index": run.index,
                "optimizer": type(run.optimizer).__name__,
                "model_class": type(model).__name__ if model is not None else None,
                "modules": modules,
                "steps": run.steps,
                "step_samples": run.step_samples,
                "step_losses": [
                    None if (v is None or not math.isfinite(v)) else v for v in run.step_losses
                ],
                "nonfinite_losses": sum(
                    1 for v in run.step_losses if v is not None and not math.isfinite(v)
                ),
                "unique_rows": len(run.rows),
                "rows_capped": run.rows_capped,
                "last_seq": run.last_seq,
                "graph": self.graph_facts(run, model),
                "tensors_file": tensors_file,
            })
        facts = {
            "schema_version": FACTS_SCHEMA_VERSION,
            "nonce": nonce,
            "torch_version": torch.__version__,
            "python_version": sys.version.split()[0],
            "notes": self.notes,
            "runs": runs,
            "pending_forwards_after_last_step": sum(1 for f in self.pending if f.used),
        }
        tmp = os.path.join(out_dir, "facts.json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(facts, fh)
        os.replace(tmp, os.path.join(out_dir, "facts.json"))


# -- Colab habits on a CPU-only grader ------------------------------------------------
def _is_cuda(device) -> bool:
    if isinstance(device, str):
        return device.strip().lower().startswith("cuda")
    if isinstance(device, torch.device):
        return device.type == "cuda"
    return False


def _map_cuda(recorder: Recorder) -> None:
    """Run `.cuda()`, `.to("cuda")` and `torch.cuda.*Tensor` on the CPU, noting each."""
    if torch.cuda.is_available():
        return
    tensor_to, module_to = torch.Tensor.to, torch.nn.Module.to

    def _clean(args, kwargs, what):
        if any(_is_cuda(a) for a in args) or _is_cuda(kwargs.get("device")):
            recorder.note(f"{what}('cuda') ran on the CPU")
            args = tuple("cpu" if _is_cuda(a) else a for a in args)
            if _is_cuda(kwargs.get("device")):
                kwargs = dict(kwargs, device="cpu")
        return args, kwargs

    def t_to(self, *args, **kwargs):
        args, kwargs = _clean(args, kwargs, ".to")
        return tensor_to(self, *args, **kwargs)

    def m_to(self, *args, **kwargs):
        args, kwargs = _clean(args, kwargs, ".to")
        return module_to(self, *args, **kwargs)

    def t_cuda(self, *args, **kwargs):
        recorder.note(".cuda() ran on the CPU")
        return self

    def m_cuda(self, *args, **kwargs):
        recorder.note(".cuda() ran on the CPU")
        return self

    torch.Tensor.to, torch.nn.Module.to = t_to, m_to
    torch.Tensor.cuda, torch.nn.Module.cuda = t_cuda, m_cuda

    def _legacy(cpu_type, name):
        def make(*args, **kwargs):
            recorder.note(f"torch.cuda.{name} ran on the CPU")
            return cpu_type(*args, **kwargs)
        return make

    for name in ("FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor",
                 "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor"):
        cpu_type = getattr(torch, name, None)
        if cpu_type is not None:
            setattr(torch.cuda, name, _legacy(cpu_type, name))


def _seed(seed: int, threads: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:
        pass


RECORDER: Recorder | None = None


def install(config_json: str) -> None:
    global RECORDER
    config = json.loads(config_json)
    rec = Recorder(config)
    RECORDER = rec
    _seed(int(config.get("seed", 0)), int(config.get("threads", 1)))
    from torch.optim import optimizer as optim_module

    # Wrapping __call__ (rather than global module hooks, which push every module call
    # onto torch's slow path) costs one frame per call and tells top-level calls apart.
    module_call = torch.nn.Module.__call__

    def call(self, *args, **kwargs):
        rec.depth += 1
        try:
            out = module_call(self, *args, **kwargs)
        finally:
            rec.depth -= 1
        if not rec.depth:
            rec.root_forward(self, args, out)
        return out

    torch.nn.Module.__call__ = call
    rec.hook_handles.append(optim_module.register_optimizer_step_post_hook(rec.on_step))

    tensor_backward = torch.Tensor.backward
    autograd_backward = torch.autograd.backward

    def backward(self, *args, **kwargs):
        if not rec.in_backward:
            rec.record_backward(self)
        rec.in_backward = True
        try:
            return tensor_backward(self, *args, **kwargs)
        finally:
            rec.in_backward = False

    def autograd_bw(tensors, *args, **kwargs):
        if not rec.in_backward:
            first = tensors[0] if isinstance(tensors, (list, tuple)) and tensors else tensors
            if isinstance(first, torch.Tensor):
                rec.record_backward(first)
        rec.in_backward = True
        try:
            return autograd_backward(tensors, *args, **kwargs)
        finally:
            rec.in_backward = False

    torch.Tensor.backward = backward
    torch.autograd.backward = autograd_bw
    if config.get("map_cuda", True):
        _map_cuda(rec)
    try:
        ip = get_ipython()  # noqa: F821 -- defined in an IPython kernel
        ip.events.register("pre_run_cell", rec.reset_cell)
    except NameError:
        pass


def finish(out_dir: str, nonce: str) -> None:
    if RECORDER is None:
        raise RuntimeError("grader instrumentation was not installed")
    RECORDER.finish(out_dir, nonce)
