"""Tamper signals: code that goes looking for the grader's records, named by cell (no kernel)."""

from __future__ import annotations

import nbformat

from grader.tamper import signals


def notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# gc.get_objects() in prose is not code"),
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    return nb


def test_each_reach_for_the_records_is_named_with_its_cell():
    nb = notebook(
        "import torch",
        "import gc\nfor o in gc.get_objects():\n    pass",
        "import sys\nrec = sys.modules['_grader_kernel']",
        "import ctypes",
        "import builtins\nbuiltins.sum = lambda *a: 44",
        "torch.nn.modules.module._global_forward_hooks.clear()",
        "f = sys._getframe(1)",
    )
    assert signals(nb) == [
        "cell 3: scans the garbage collector's objects (gc.get_objects)",
        "cell 4: looks into sys.modules (sys.modules)",
        "cell 4: names the grader's kernel module (_grader_kernel)",
        "cell 5: uses ctypes (raw memory and system calls) (import ctypes)",
        "cell 6: patches builtins (builtins.sum =)",
        "cell 7: clears torch's global hooks (_global_forward_hooks)",
        "cell 8: walks the interpreter's frames (sys._getframe)",
    ]


def test_an_ordinary_notebook_has_none():
    nb = notebook("import torch, numpy as np\nx = np.sum([1, 2])\nif x == 3:\n    print(sum([1]))",
                  "model = torch.nn.Linear(2, 1)\nprint(model.weight.data)")
    assert signals(nb) == []
