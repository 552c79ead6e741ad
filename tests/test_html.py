"""The feedback pages and the dashboard, opened in headless Chromium: the summary shows
the report's points, the loss plot is drawn, the failing cell is marked, nothing leaves
the page, a hostile notebook runs no script, and the review flow writes overrides.toml."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grader.api import grade, read_reports
from grader.html.write import write_folder
from grader.overrides import load_overrides
from tests.browser import launch

ROOT = Path(__file__).resolve().parent.parent
TITLE = "feedback"  # what a hostile notebook tries to change

HOSTILE_MD = """# Hostile
<script>document.title = 'pwned-script'; alert(1)</script>
<img src="x" onerror="document.title = 'pwned-onerror'">
<a class="jslink" href="javascript:document.title='pwned-link'">click me</a>
[markdown link](javascript:document.title='pwned-mdlink')
<iframe srcdoc="<script>parent.document.title='pwned-iframe'</script>"></iframe>
<svg onload="document.title='pwned-svg'"><circle r="4"/></svg>
<img src="http://127.0.0.1:9/remote.png">
<style>body { background: url(http://127.0.0.1:9/bg.png) }</style>
<form action="http://127.0.0.1:9/"><button>go</button></form>
<div onmouseover="document.title='pwned-hover'">hover</div>
<div class="note pass banner">✓ fake grader note</div>

Prose that names the <script> tag and leaves a <div class=" open must not hide later cells.
"""
HOSTILE_CODE = """from IPython.display import HTML, Javascript, SVG, display
display(HTML("<script>alert('html-output')</script><img src=x onerror=\\"document.title='pwned-out'\\">"))
display(Javascript("document.title = 'pwned-js'"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(3)</script><rect width="5" height="5"/></svg>'))
print("<script>alert('stream')</script>")
"""


@pytest.fixture(scope="module")
def browser():
    pw, chromium = launch()
    yield chromium
    chromium.close()
    pw.stop()


@pytest.fixture(scope="module")
def pages(graded):
    """The fixtures' batch (tests/conftest.py) with its pages and dashboard written."""
    out = graded["_out_dir"]
    write_folder(out_dir=out)
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, grading):
    folder = tmp_path_factory.mktemp("hostile") / "mallory"
    folder.mkdir()
    solution = nbformat.read(ROOT / "examples" / "alice" / "XOR.ipynb", as_version=4)
    solution.cells[:0] = [nbformat.v4.new_markdown_cell(HOSTILE_MD),
                          nbformat.v4.new_code_cell(HOSTILE_CODE)]
    nbformat.write(solution, folder / "XOR.ipynb")
    (folder / "README.md").write_text(HOSTILE_MD, encoding="utf-8")
    out = tmp_path_factory.mktemp("hostile-out")
    grade(paths=[folder], grading=grading, out_dir=out, jobs=1)
    write_folder(out_dir=out)
    return out


def _markup(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Every tag of a page with its attributes (the markup, not the text)."""
    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, {k: v or "" for k, v in attrs}))

    Parser().feed(path.read_text(encoding="utf-8"))
    return found


def _open(browser, path: Path):
    """A page opened from disk, with every request and dialog it makes recorded."""
    page = browser.new_page()
    seen = {"requests": [], "dialogs": [], "console": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("console", lambda m: seen["console"].append(m.text))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, seen


def test_summary_shows_the_reports_points(browser, pages, graded):
    report = graded["solution_full_batch"]
    page, seen = _open(browser, pages / "solution_full_batch.html")
    assert page.locator("p.score").inner_text().split()[0] == f"{report.score:g}"
    for c in report.checks:
        row = page.locator(f'#items tr[data-item="{c.id}"]')
        assert row.locator("td.points").inner_text() == f"{c.score:g}/{c.max_score:g}"
        assert row.locator("td.mark").inner_text() == ("✓" if c.status == "pass" else "✗")
    assert seen["requests"] == [(pages / "solution_full_batch.html").as_uri()]
    page.close()


def test_loss_plot_and_layer_table_are_drawn(browser, pages):
    page, _ = _open(browser, pages / "solution_full_batch.html")
    plot = page.locator("#loss-plot svg")
    box = plot.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    assert plot.locator("path").count() > 3  # the curve, the pass line, the axes
    assert "pass line" in plot.text_content()
    assert page.locator("#layers tr").last.inner_text().split()[-1] == "44"
    page.close()


def test_failing_cell_is_marked_with_its_error(browser, pages, graded):
    report = graded["import_error_early"]
    failing = report.execution.cell_errors[0]
    page, _ = _open(browser, pages / "import_error_early.html")
    cell = page.locator(f"#cell-{failing.cell} .cellbox")
    assert cell.get_attribute("data-status") == "error"
    assert "ModuleNotFoundError" in cell.inner_text()
    assert page.locator(".cellbox[data-status=error]").count() == len(report.execution.cell_errors)
    # the item's note sits beside the cell, and the summary links to it
    assert "Every cell runs" in page.locator(f"#cell-{failing.cell} .notes").inner_text()
    assert page.locator('#items tr[data-item="runs_cleanly"] a').get_attribute("href") == \
        f"#cell-{failing.cell}"
    page.close()


def test_the_cells_that_trained_are_recorded(graded):
    """No browser needed: the kernel says in which cell the optimizer stepped."""
    def cells(name):
        return next(c for c in graded[name].checks if c.id == "epochs").evidence["training_cells"]

    assert cells("solution_full_batch") == [3]  # [HEAD, net(), train()]
    assert cells("import_error_early") == [4]  # [HEAD, the failing import, net(), train()]


def test_pages_are_self_contained_and_clean(pages, hostile):
    """No browser needed: what the files themselves hold."""
    solution = (pages / "solution_full_batch.html").read_text(encoding="utf-8")
    assert len(solution.encode()) < 1_000_000
    [csp] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', solution)
    assert "default-src 'none'" in html.unescape(csp) and "script-src 'sha256-" in html.unescape(csp)
    assert not re.search(r"(src|href)=\"(https?:)?//", solution)  # nothing from the network
    text = (hostile / "mallory.html").read_text(encoding="utf-8")
    assert "<div>✓ fake grader note</div>" in text  # the page's own classes are not lent out
    nb = nbformat.read(hostile / "executed" / "mallory.ipynb", as_version=4)
    assert text.count('class="cellrow"') == len(nb.cells)
    assert text.count('class="jp-InputPrompt') == len(nb.cells)  # every cell is there, whole
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert text.count('class="highlight') == len(code)  # each code cell's source, to the last
    tags = _markup(hostile / "mallory.html")
    names = [t for t, _ in tags]
    # the page's own: its script and JSON data, its style and the loss plot's (an SVG)
    assert names.count("script") == 2 and names.count("style") == 2 and names.count("svg") == 1
    assert not {"iframe", "form", "object", "embed"} & set(names)
    assert names.count("button") == 11  # the review's, one per rubric item
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert not attrs.get("href", "").lower().startswith(("javascript:", "data:")), attrs
        if tag == "img":
            assert attrs.get("src", "data:image/").startswith("data:image/"), attrs  # or none


def test_a_notebook_that_cannot_be_rendered_costs_only_its_part(pages, monkeypatch):
    import grader.html.page as page_module

    def broken(nb):
        raise ValueError("an output nbconvert cannot read")

    monkeypatch.setattr(page_module, "render_cells", broken)
    warnings: list[str] = []
    written = write_folder(out_dir=pages, names=["solution_full_batch"], on_warning=warnings.append)
    assert [p.name for p in written] == ["solution_full_batch.html", "index.html"]
    assert warnings == ["solution_full_batch: the notebook could not be shown (ValueError: an "
                        "output nbconvert cannot read); its page has the results only"]
    text = (pages / "solution_full_batch.html").read_text(encoding="utf-8")
    assert "could not be shown" in text and 'data-item="param_count"' in text
    monkeypatch.undo()
    write_folder(out_dir=pages, names=["solution_full_batch"])  # whole again for the next tests


def test_training_notes_sit_beside_the_training_cell(browser, pages, graded):
    cells = graded["solution_full_batch"].checks
    training = next(c for c in cells if c.id == "epochs").evidence["training_cells"]
    page, _ = _open(browser, pages / "solution_full_batch.html")
    notes = page.locator(f"#cell-{training[0]} .notes").inner_text()
    assert "2001 epochs" in notes and "loss" in notes.lower()
    page.close()


def test_hostile_notebook_runs_nothing(browser, hostile):
    path = hostile / "mallory.html"
    page, seen = _open(browser, path)
    page.evaluate(f"document.title = {TITLE!r}")
    for link in page.locator("a").all():  # every link a student could have planted
        href = link.get_attribute("href") or ""
        assert not href.lower().startswith(("javascript:", "data:"))
    page.locator("text=hover").first.hover()
    page.wait_for_timeout(300)
    assert page.title() == TITLE
    assert seen["dialogs"] == []
    assert page.locator("iframe, object, embed, form, svg script").count() == 0
    assert page.locator("script").count() == 2  # the page's own script and its JSON data
    handlers = page.evaluate(
        "Array.from(document.querySelectorAll('*')).flatMap(e => Array.from(e.attributes)"
        ".filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))")
    assert handlers == []
    assert seen["requests"] == [path.as_uri()], "nothing is fetched, not even a blocked image"
    assert not [m for m in seen["console"] if "Content Security Policy" in m], \
        "the cleaner removed it all: the CSP had nothing left to refuse"
    # the student's text is still there, as text
    assert "click me" in page.locator("#notebook").inner_text()
    page.close()


def test_dashboard_lists_every_submission_and_sorts(browser, pages, graded):
    page, seen = _open(browser, pages / "index.html")
    book = read_reports(pages, assignment="01-very-basics")
    rows = page.locator("#submissions tbody tr")
    assert rows.count() == len(book)
    page.locator("#submissions th", has_text="score").click()
    first = float(rows.first.locator("td").nth(1).get_attribute("data-sort"))
    assert first == max(r.score for r in book.values())
    page.locator("#submissions th", has_text="score").click()
    assert float(rows.first.locator("td").nth(1).get_attribute("data-sort")) == \
        min(r.score for r in book.values())
    assert page.locator("#curves img").count() >= 10
    assert page.locator("#histogram svg").count() == 1
    assert seen["requests"] == [(pages / "index.html").as_uri()]
    page.close()


def _review(out: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", "review", str(out), "-a", "01-very-basics",
         "--by", "TA Jane"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, match.group(1), match.group(2)


def test_review_flow_writes_overrides_the_next_grading_applies(browser, hostile, grading):
    proc, base, token = _review(hostile)
    try:
        # without the token's cookie, nothing is served and nothing can be written
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/index.html")
        assert refused.value.code == 403
        request = urllib.request.Request(
            f"{base}/api/override", method="POST", data=b'{"submission": "mallory"}',
            headers={"Content-Type": "application/json", "X-Grader-Review": "1"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 403

        page = browser.new_page()
        page.goto(f"{base}/mallory.html?token={token}")
        page.wait_for_selector("body.reviewing")
        assert page.locator("#reviewer-name").input_value() == "TA Jane"
        box = page.locator('.review[data-item="readme_q2"]')
        box.locator("input[type=number]").fill("25")
        box.locator("input[type=text]").fill("overshoot explained with an example")
        box.locator("button").click()
        page.wait_for_selector('.review[data-item="readme_q2"] .status.saved')
        too_many = page.locator('.review[data-item="readme_q1"]')
        too_many.locator("input[type=number]").fill("99")
        too_many.locator("button").click()
        page.wait_for_selector('.review[data-item="readme_q1"] .status.failed')
        assert "more than" in too_many.locator(".status").inner_text()
        page.reload()  # served with the decisions so far, as the next grading applies them
        row = page.locator('#items tr[data-item="readme_q2"]')
        assert row.locator("td.points").inner_text().startswith("25/")
        assert "Set to 25 by TA Jane" in row.inner_text()
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    entries = load_overrides(hostile / "overrides.toml", rubric=grading.rubric)
    assert [(e.submission, e.item, e.points, e.by, e.comment) for e in entries] == [
        ("mallory", "readme_q2", 25, "TA Jane", "overshoot explained with an example")]
    report = json.loads((hostile / "mallory.json").read_text())
    assert entries[0].sha256 == report["submission"]["sha256"]
    again = grade(paths=[Path(report["submission"]["path"])], grading=grading, out_dir=hostile)
    item = next(c for c in again["mallory"].checks if c.id == "readme_q2")
    assert item.score == 25 and item.override.by == "TA Jane"


def test_review_reads_its_cookie_beside_other_local_sites_cookies(tmp_path, grading):
    from grader.review import ReviewServer

    server = ReviewServer(out_dir=tmp_path, rubric=grading.rubric, assignment="01-very-basics")
    try:
        mine = f"{server.cookie}={server.token}"
        for header in (f'a={{"x":1}}; {mine}', f"x=a b; {mine}", f"foo; {mine}", mine):
            assert server.cookie_ok(header), header
        other_port = f"grader_review_1={server.token}"  # another review server's cookie name
        for header in ("", f"{server.cookie}=wrong", f"{server.cookie}=tøken", other_port):
            assert not server.cookie_ok(header), header
    finally:
        server.server_close()


def test_names_of_the_folders_own_files_are_not_given_to_submissions(tmp_path):
    from grader.api import unique_names

    paths = [tmp_path / "index.ipynb", tmp_path / "duplicates", tmp_path / "alice"]
    assert unique_names(paths) == ["index_submission", "duplicates_submission", "alice"]


def test_overrides_given_again_keep_the_reviews_decisions(tmp_path, grading):
    from grader.overrides import OverrideEntry, resolve, save_override

    out = tmp_path / "out"
    given = tmp_path / "ta.toml"
    given.write_text('schema_version = 1\n[[override]]\nsubmission = "bob"\nitem = "readme_q1"\n'
                     'points = 10\nby = "TA Jim"\n')
    assert resolve(given=given, out_dir=out) == given
    save_override(out / "overrides.toml", OverrideEntry(
        submission="alice", item="readme_q2", points=25, by="TA Jane"), rubric=grading.rubric)
    reviewed = (out / "overrides.toml").read_text()
    assert "TA Jim" in reviewed and "TA Jane" in reviewed  # added beside the given entries
    warnings: list[str] = []
    resolve(given=given, out_dir=out, on_warning=warnings.append)
    [kept] = list(out.glob("overrides.2*.toml"))
    assert kept.read_text() == reviewed and (out / "overrides.toml").read_text() == given.read_text()
    assert len(warnings) == 1 and kept.name in warnings[0]


def test_answer_highlights_survive_other_spacing():
    from grader.html.page import _segments

    excerpt = "A neuron sums its inputs.\nIt then applies\n  an activation  function."
    got = _segments(excerpt, {"weighted sum": "A neuron sums its inputs.",
                              "activation": "It then applies an activation function.",
                              "absent": "Not in the excerpt."})
    assert [c for _, c in got] == ["weighted sum", None, "activation"]
    assert "".join(t for t, _ in got) == excerpt


def test_a_page_gives_the_courses_scale_beside_the_rubrics_points(graded):
    from grader.html import render_page

    report = graded["final_F_tanh"]  # 120 of 300: no README in the fixture
    page = render_page(report, name="final_F_tanh", notebook=None, scale=100)
    assert f'<span id="scaled">{report.score / 3:g} of 100 on the course' in page
    assert 'id="scaled"' not in render_page(report, name="final_F_tanh", notebook=None)
