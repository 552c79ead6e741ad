"""Autograder for PyTorch notebook assignments.

Import ``grader.api`` for the library (keyword-only functions); the CLI in
``grader.cli`` is a thin layer over it. This module stays light because it is
imported by every entry point, and by students' notebooks (``grader.self_check()``).
"""

__version__ = "0.1.0"


def self_check(*, assignment: str | None = None, display: bool = True):
    """Grade the notebook this is called from (as saved), in a fresh kernel, exactly as
    ``grader check`` would; show the result in the notebook and return the ``Report``.
    The assignment defaults to the one named in the notebook's metadata."""
    import sys

    if "_grader_kernel" in sys.modules:  # the grader runs this notebook (in its sandbox, the
        print("self_check(): skipped, this notebook is being graded")  # package may be out of sight)
        return None
    from grader.selfcheck import self_check as run

    return run(assignment=assignment, display=display)


def load_ipython_extension(ipython) -> None:
    """``%load_ext grader``: the ``%grader_check [ASSIGNMENT]`` line magic."""
    from grader.selfcheck import register_magic

    register_magic(ipython)
