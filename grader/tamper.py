"""Code that reaches for the grader's own records in the kernel: a flag for a TA.

The kernel is the student's; the instrumentation in it can be read and patched. The
host recounts what it can, and the sandbox keeps the rest of the machine away; what is
left is code that goes looking for the records themselves. Such code is rare in a
course notebook and easy to recognise, so it is named in the report for a TA to read,
cell by cell. A flag, never a deduction: ``gc`` and ``sys.modules`` have honest uses.
"""

from __future__ import annotations

import re

import nbformat

# (what it does, pattern over one code cell's source)
SIGNS: list[tuple[str, re.Pattern]] = [(what, re.compile(rx)) for what, rx in [
    ("scans the garbage collector's objects", r"\bgc\s*\.\s*get_(objects|referrers|referents)\b"),
    ("looks into sys.modules", r"\bsys\s*\.\s*modules\b"),
    ("names the grader's kernel module", r"_grader_kernel|\b_g_[a-z]"),
    ("uses ctypes (raw memory and system calls)", r"\bimport\s+ctypes\b|\bfrom\s+ctypes\b|\bctypes\s*\."),
    ("walks the interpreter's frames", r"\bsys\s*\.\s*_getframe\b|\binspect\s*\.\s*(currentframe|stack)\b"),
    ("patches builtins", r"\b(builtins|__builtins__)\s*(\.\s*\w+|\[[^\]]+\])\s*=(?!=)"),
    ("clears torch's global hooks", r"_global_(forward|backward|optimizer|module)\w*"),
    ("reads a function's closure or globals", r"\.__(closure|globals|code)__\b"),
]]


def signals(nb: nbformat.NotebookNode) -> list[str]:
    """"cell 4: scans the garbage collector's objects (gc.get_objects)" for each sign, in
    the order of the notebook (1-based cell positions, as in the report's cell errors)."""
    found = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        for what, pattern in SIGNS:
            if match := pattern.search(cell.source):
                found.append(f"cell {number}: {what} ({match.group(0).strip()})")
    return found
