"""Model trees and autograd graphs, read inside the student's kernel.

Loaded first into the kernel's private grader module (see
``grader.kernels.init_source``), so the builtins bound below are the ones every
grader function in the kernel uses. Standard library and torch only.
"""

from __future__ import annotations

import gc
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


def _walk(root):
    """Yield (qualified_name, module, first_visit) over the registered tree: a module
    registered under two names is yielded under both, but its children only once.

    Walks the instance dicts directly so that an overridden ``named_modules`` or
    ``parameters`` on the student's class cannot hide anything.
    """
    seen = set()
    stack = [("", root)]
    while stack:
        prefix, mod = stack.pop()
        first = id(mod) not in seen
        yield prefix, mod, first
        if not first:
            continue
        seen.add(id(mod))
        children = vars(mod).get("_modules", {}) or {}
        for name, child in reversed(list(children.items())):
            if child is not None:
                stack.append((f"{prefix}.{name}" if prefix else name, child))


def _module_tree(root):
    """(qualified_name, module), each module once."""
    return [(prefix, mod) for prefix, mod, first in _walk(root) if first]


def _named_tensors(root):
    """Every registered parameter, under every name it is reachable by (aliases kept)."""
    out = []
    for prefix, mod, _ in _walk(root):
        for name, p in (vars(mod).get("_parameters", {}) or {}).items():
            if p is not None:
                out.append((f"{prefix}.{name}" if prefix else name, p))
    return out


def _checksum(p) -> int:
    """A cheap fingerprint of a parameter's values: `p.data.sub_(...)` changes neither
    its version counter nor its storage, only its values. The first 4096 values are
    enough, since a gradient step moves (nearly) all of them."""
    try:
        t = p.detach().reshape(-1)[:4096]
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return zlib.crc32(t.contiguous().numpy().tobytes())
    except Exception:
        return 0


def _optimizer_params(optimizer):
    params = []
    for group in getattr(optimizer, "param_groups", []):
        params.extend(p for p in group.get("params", []) if isinstance(p, torch.Tensor))
    return params


def owner_of(param_ids: set, hint=None):
    """The module that owns these parameters (those an optimizer stepped).

    Prefers the module with the largest overlap, then the one with the fewest
    parameters outside the set (a container of several models loses to the model
    itself), then ``hint``, the module the training loop actually called.
    """
    candidates = {}
    if hint is not None:
        candidates[id(hint)] = hint
    for obj in gc.get_objects():
        try:
            if isinstance(obj, torch.nn.Module):
                candidates[id(obj)] = obj
        except Exception:
            continue
    best, best_key = None, None
    for mod in candidates.values():
        own = {id(p) for _, p in _named_tensors(mod)}
        overlap = len(own & param_ids)
        if not overlap:
            continue
        key = (overlap, -len(own - param_ids), mod is hint)
        if best_key is None or key > best_key:
            best, best_key = mod, key
    return best


def graph_facts(grad_fn, param_ids: set) -> dict | None:
    """Ops between the model's output and its last parameterised op, and below it."""
    if grad_fn is None:
        return None

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
    queue = [grad_fn]
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


def _namespace_models() -> list:
    """Models with parameters bound to names in the notebook, minus those that are a
    part of another one (``model.lin1`` is part of ``model``)."""
    try:
        ns = get_ipython().user_ns  # noqa: F821 -- defined in an IPython kernel
    except Exception:
        return []
    mods = {}
    for name, value in list(ns.items()):
        try:
            if (not name.startswith("_") and isinstance(value, torch.nn.Module)
                    and _named_tensors(value)):
                mods[id(value)] = value
        except Exception:
            continue
    inner = set()
    for mod in mods.values():
        inner.update(id(m) for name, m in _module_tree(mod) if name)
    return [m for key, m in mods.items() if key not in inner]


def _input_width(model) -> int | None:
    """Features the model's first layer takes (``in_features``, else the second
    dimension of its first matrix), to feed it one batch of random inputs."""
    for _, mod in _module_tree(model):
        width = vars(mod).get("in_features")
        if isinstance(width, int) and width > 0:
            return width
    for _, p in _named_tensors(model):
        if p.dim() == 2:
            return int(p.shape[1])
    return None
