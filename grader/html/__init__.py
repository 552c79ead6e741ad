"""HTML views of the reports: a feedback page per submission and the class dashboard.

Self-contained files (styles, scripts and pictures inline; nothing loaded from the
network), safe to open whatever a notebook contains: see ``grader.html.safety``.
"""

from grader.html.dashboard import render_dashboard
from grader.html.page import read_executed, render_page, render_page_safely
from grader.html.write import write_pages

__all__ = ["read_executed", "render_dashboard", "render_page", "render_page_safely", "write_pages"]
