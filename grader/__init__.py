"""Autograder for PyTorch notebook assignments.

Import ``grader.api`` for the library (keyword-only functions); the CLI in
``grader.cli`` is a thin layer over it. This module stays light because it is
imported by every entry point.
"""

__version__ = "0.1.0"
