"""Colab habits on a CPU-only grader: CUDA calls run on the CPU, each noted once.

Runs *inside* the student's kernel, loaded with ``instrument.py`` into the same private
module (see ``grader.kernels.init_source``); it depends only on the standard library
and torch. Notebooks written on Colab move data to the GPU in many ways; the grader
has none, and `torch.cuda.is_available()` stays False so notebooks that ask take
their CPU branch. Those that do not ask are run as if they had.
"""

from __future__ import annotations

import functools

import torch

# torch functions that create a tensor and take a `device=` keyword (module
# constructors such as `nn.Linear(..., device="cuda")` call these too).
FACTORIES = (
    "tensor", "as_tensor", "scalar_tensor", "zeros", "ones", "empty", "full", "rand", "randn",
    "randint", "randperm", "arange", "range", "linspace", "logspace", "eye", "normal",
    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "randint_like", "empty_strided", "tril_indices", "triu_indices", "sparse_coo_tensor",
)
TENSOR_FACTORIES = ("new_tensor", "new_zeros", "new_ones", "new_empty", "new_full")
LEGACY_TYPES = ("FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor",
                "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor")


def is_cuda(device) -> bool:
    """'cuda', 'cuda:0', torch.device('cuda', 1) and a bare device index all name a GPU."""
    if isinstance(device, str):
        return device.strip().lower().startswith("cuda")
    if isinstance(device, torch.device):
        return device.type == "cuda"
    return isinstance(device, int) and not isinstance(device, bool)


def map_cuda(note) -> callable:
    """Patch torch so CUDA requests run on the CPU; ``note(text)`` records each kind.

    Returns a function that, called at the end, notes the settings that cannot be
    intercepted when they are made (`torch.backends.cudnn.*`)."""
    if torch.cuda.is_available():
        return lambda: None
    _map_to_and_cuda(note)
    _map_factories(note)
    _map_cuda_module(note)
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, cudnn.enabled)

    def late_notes() -> None:
        if (cudnn.benchmark, cudnn.deterministic, cudnn.enabled) != before:
            note("torch.backends.cudnn settings have no effect on the CPU")

    return late_notes


def _map_to_and_cuda(note) -> None:
    tensor_to, module_to = torch.Tensor.to, torch.nn.Module.to

    def _clean(args, kwargs):
        if any(is_cuda(a) for a in args) or is_cuda(kwargs.get("device")):
            note(".to('cuda') ran on the CPU")
            args = tuple("cpu" if is_cuda(a) else a for a in args)
            if is_cuda(kwargs.get("device")):
                kwargs = dict(kwargs, device="cpu")
        return args, kwargs

    def t_to(self, *args, **kwargs):
        args, kwargs = _clean(args, kwargs)
        return tensor_to(self, *args, **kwargs)

    def m_to(self, *args, **kwargs):
        args, kwargs = _clean(args, kwargs)
        return module_to(self, *args, **kwargs)

    def cuda(self, *args, **kwargs):  # `.cuda()`, `.cuda(0)`, `.cuda(non_blocking=True)`
        note(".cuda() ran on the CPU")
        return self

    def pin_memory(self, *args, **kwargs):
        note(".pin_memory() skipped (no GPU)")
        return self

    torch.Tensor.to, torch.nn.Module.to = t_to, m_to
    torch.Tensor.cuda, torch.nn.Module.cuda = cuda, cuda
    torch.Tensor.pin_memory = pin_memory


def _on_cpu(func, what: str, note):
    @functools.wraps(func)
    def call(*args, **kwargs):
        if is_cuda(kwargs.get("device")):
            note(f"{what}(device='cuda') ran on the CPU")
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)

    return call


def _map_factories(note) -> None:
    for name in FACTORIES:
        func = getattr(torch, name, None)
        if func is not None:
            setattr(torch, name, _on_cpu(func, f"torch.{name}", note))
    for name in TENSOR_FACTORIES:
        func = getattr(torch.Tensor, name, None)
        if func is not None:
            setattr(torch.Tensor, name, _on_cpu(func, f".{name}", note))
    set_default_device = torch.set_default_device

    def set_default(device):
        if is_cuda(device):
            note("torch.set_default_device('cuda') ran on the CPU")
            device = "cpu"
        return set_default_device(device)

    torch.set_default_device = set_default


def _map_cuda_module(note) -> None:
    def legacy(cpu_type, name):
        def make(*args, **kwargs):
            note(f"torch.cuda.{name} ran on the CPU")
            return cpu_type(*args, **kwargs)
        return make

    for name in LEGACY_TYPES:
        cpu_type = getattr(torch, name, None)
        if cpu_type is not None:
            setattr(torch.cuda, name, legacy(cpu_type, name))
    # `torch.cuda.manual_seed(_all)` and `empty_cache` already do nothing without a GPU
    # (torch.manual_seed itself calls the former), so they are left alone.

    def noted(func, text):
        def call(*args, **kwargs):
            note(text)
            return func(*args, **kwargs)
        return call

    torch.cuda.synchronize = noted(lambda *a, **k: None, "torch.cuda.synchronize skipped (no GPU)")
    torch.cuda.get_device_name = noted(lambda *a, **k: "CPU (graded without a GPU)",
                                       "torch.cuda.get_device_name answered 'CPU'")
    torch.cuda.current_device = noted(lambda: 0, "torch.cuda.current_device answered 0")
