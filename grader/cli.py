"""The `grader` command: a thin layer over ``grader.api``.

Exit codes (all commands):
  0  success (grade: every submission graded; check: every item passes;
     validate: the rubric is proven)
  1  the work ran but the answer is "no" (grade: some submission could not be graded;
     check: some item does not pass; validate: some case is wrong)
  2  bad usage or configuration (unknown assignment, invalid spec or rubric, a path on
     the command line that does not exist: nothing is graded then, another `grader grade`
     writing into the same output folder, --sandbox require where no sandbox can be
     made, a --cluster that does not answer, too little for `grader calibrate` to fit)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from grader import __version__
from grader.formats import FORMATS

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
# one list: the renderers registered in grader.formats, and the HTML pages (grader.html),
# which need more than the report (the executed notebook, the other reports)
FORMAT_NAMES = [*FORMATS, "html"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grader",
        description="Grade PyTorch notebook assignments: execute, check, score, report.",
        epilog="Exit codes: 0 success, 1 some submission/item/case failed, 2 bad usage or config.",
    )
    p.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade submissions into JSON reports and a gradebook")
    g.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help="a notebook, or a submission folder (a student repository)")
    g.add_argument("-a", "--assignment", required=True,
                   help="assignment id (folder under assignments/) or path to its folder")
    g.add_argument("-o", "--out", type=Path, default=Path("reports"),
                   help="output folder for <submission>.json and summary.csv (default: reports)")
    g.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="submissions graded in parallel, each in its own single-threaded kernel "
                        "(default: the number of CPU cores)")
    g.add_argument("-f", "--format", choices=FORMAT_NAMES, default=None,
                   help="also write OUT/<submission>.<ext> in this format (and print it for a "
                        "single submission); classroom also sets the Actions step output; "
                        "html writes a feedback page per submission and OUT/index.html")
    g.add_argument("--max-score", type=float, default=None,
                   help="rescale points to this total in the chosen format (JSON keeps rubric points)")
    g.add_argument("--force", action="store_true",
                   help="grade again even where OUT has a report newer than the submission, "
                        "the spec and the rubric (default: such submissions are skipped)")
    g.add_argument("--overrides", type=Path, default=None,
                   help="TA overrides (TOML); stored as OUT/overrides.toml and applied to "
                        "every later grading into OUT")
    g.add_argument("--name-pattern", default=None, metavar="REGEX",
                   help="file names of a flat LMS export: a regex with (?P<student>...) and "
                        "optionally (?P<student_id>...), (?P<original>...); Canvas and Moodle "
                        "names are read without it (default: the spec's name_pattern)")

    g.add_argument("--cluster", default=os.environ.get("DASK_SCHEDULER_ADDRESS"), metavar="ADDRESS",
                   help="grade on the workers of this Dask scheduler (tcp://HOST:8786; default: "
                        "$DASK_SCHEDULER_ADDRESS); --jobs is then the workers' kernel slots")
    _sandbox_option(g)

    c = sub.add_parser("check", help="the student view: which checks pass, with hints")
    c.add_argument("notebook", type=Path, help="your notebook, or your repository folder")
    c.add_argument("-a", "--assignment", default="01-very-basics",
                   help="assignment id or folder (default: 01-very-basics)")
    c.add_argument("--json", action="store_true", help="print the JSON report instead")
    c.add_argument("-f", "--format", choices=["text", "json", "html"], default="text",
                   help="text (default), json (as --json), or html: a feedback page written "
                        "to --output")
    c.add_argument("-o", "--output", type=Path, default=Path("feedback.html"),
                   help="where --format html writes the page (default: feedback.html)")

    _sandbox_option(c)

    v = sub.add_parser("validate", help="prove an assignment's rubric before release")
    v.add_argument("assignment", help="assignment id or folder")
    _sandbox_option(v)

    r = sub.add_parser("report", help="re-render a saved JSON report in another format")
    r.add_argument("report", type=Path, help="a report written by `grader grade`; with --format "
                   "html also a folder: every report's page and the dashboard are written there")
    r.add_argument("-f", "--format", choices=FORMAT_NAMES, default="text")
    r.add_argument("--max-score", type=float, default=None)

    gb = sub.add_parser("gradebook", help="write OUT's grades as a Canvas or Moodle import file")
    gb.add_argument("out", type=Path, metavar="OUT", help="a folder `grader grade` wrote into")
    gb.add_argument("-a", "--assignment", required=True, help="assignment id or folder")
    gb.add_argument("-f", "--format", choices=["canvas", "moodle"], required=True,
                    help="canvas: gradebook import CSV; moodle: offline grading worksheet")
    gb.add_argument("-o", "--output", type=Path, default=None,
                    help="the CSV to write (default: OUT/canvas.csv or OUT/moodle.csv)")
    gb.add_argument("--column", default=None,
                    help="Canvas: the assignment's column, \"Name (id)\" as in Canvas' export, "
                         "so the grades land in that assignment (default: the assignment's title)")

    cal = sub.add_parser("calibrate", help="fit the written answers' weights to a TA's overrides")
    cal.add_argument("out", type=Path, metavar="OUT", help="a folder `grader grade` wrote into, "
                     "with the TA's overrides.toml")
    cal.add_argument("-a", "--assignment", required=True, help="assignment id or folder")
    cal.add_argument("--overrides", type=Path, default=None,
                     help="the TA's overrides (default: OUT/overrides.toml)")
    cal.add_argument("-o", "--output", type=Path, default=None,
                     help="the calibrated rubric to write (default: OUT/calibrated-rubric.toml)")
    cal.add_argument("--alpha", type=float, default=1.0,
                     help="how strongly the fit stays near the rubric's weights (ridge; default 1)")
    cal.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")

    rv = sub.add_parser("review", help="serve OUT's feedback pages on 127.0.0.1 for a TA to change "
                        "an item's points (saved to OUT/overrides.toml)")
    rv.add_argument("out", type=Path, metavar="OUT", help="a folder `grader grade` wrote into")
    rv.add_argument("-a", "--assignment", required=True, help="assignment id or folder")
    rv.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    rv.add_argument("--by", default="", help="the reviewer's name, filled in on the pages")

    b = sub.add_parser("gradescope-bundle", help="build a Gradescope autograder.zip")
    b.add_argument("assignment", help="assignment id or folder")
    b.add_argument("-o", "--out", type=Path, default=Path("autograder.zip"))

    s = sub.add_parser("schema", help="print a JSON Schema")
    s.add_argument("what", choices=["report", "spec", "rubric"])

    sub.add_parser("checks", help="list the registered checks and their parameters")
    return p


def _sandbox_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sandbox", choices=["auto", "require", "off"], default=None,
                   help="run each kernel in an OS sandbox (no network, only its own files and "
                        "processes): auto = where the machine allows it (default: the spec's "
                        "[execution] sandbox, auto), require = refuse to grade without it, off")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=False, highlight=False)
    err = Console(stderr=True, highlight=False)
    from grader.api import OutBusy
    from grader.cluster import ClusterUnavailable
    from grader.sandbox import SandboxUnavailable
    from grader.spec import ConfigError

    try:
        return _COMMANDS[args.command](args, console)
    except ConfigError as exc:
        err.print(f"[bold red]configuration error:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_USAGE
    except (OutBusy, SandboxUnavailable, ClusterUnavailable) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted: reports already written are complete; re-run to finish")
        return 130


def _cmd_grade(args, console: Console) -> int:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from grader.api import grade, load_grading, with_sandbox
    from grader.render import batch_table

    grading = with_sandbox(load_grading(assignment=args.assignment), args.sandbox)
    if args.name_pattern:
        from grader.lms import check_pattern

        why = check_pattern(args.name_pattern)
        if why:
            Console(stderr=True).print(f"[bold red]usage error:[/] --name-pattern: {escape(why)}")
            return EXIT_USAGE
    if args.format in ("json", "html") and args.max_score is not None:
        Console(stderr=True).print(f"[bold red]usage error:[/] the {args.format} pages keep the "
                                   "rubric's points; use --max-score with another --format")
        return EXIT_USAGE
    missing = [p for p in args.paths if not p.exists()]
    if missing:  # a typo on the command line: say so before grading anything
        for p in missing:
            Console(stderr=True).print(f"[bold red]usage error:[/] {escape(str(p))}: no such file "
                                       "or folder; nothing was graded")
        return EXIT_USAGE
    err = Console(stderr=True, highlight=False)
    progress = Progress(  # on stderr: stdout stays clean for --format output
        TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[rate]}"), TextColumn("eta"), TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=err, transient=False, disable=not err.is_terminal and len(args.paths) < 2,
    )
    from grader.locate import plan_submissions

    planned, _ = plan_submissions(args.paths, name_pattern=args.name_pattern
                                  or grading.assignment.spec.name_pattern)
    with progress:
        task = progress.add_task("", total=len(planned), rate="")

        def done(name, report):
            progress.update(task, advance=1, description=f"{name}: {report.score:g}/{report.max_score:g}")
            state = progress.tasks[0]  # the mean rate so far (a moving estimate jumps when jobs finish together)
            if state.elapsed:
                progress.update(task, rate=f"{60 * state.completed / state.elapsed:.1f}/min")

        reports = grade(paths=args.paths, grading=grading, out_dir=args.out,
                        jobs=args.jobs, overrides=args.overrides, force=args.force,
                        name_pattern=args.name_pattern, cluster=args.cluster, on_report=done,
                        on_warning=lambda text: err.print(f"[yellow]warning:[/] {escape(text)}"))
    if args.format:
        _write_formats(reports, args, console, grading=grading)
    else:
        console.print(batch_table(reports, rubric=grading.rubric, width=console.width))
    err.print(f"reports in {args.out}/ (summary.csv is the gradebook)")
    return EXIT_OK if all(r.status == "graded" for r in reports.values()) else EXIT_NO


def _write_formats(reports, args, console: Console, *, grading) -> None:
    from grader.api import write_atomic
    from grader.formats import FORMATS, render
    from grader.github import publish

    if args.format == "html":
        from grader.html.write import write_folder

        err = Console(stderr=True, highlight=False)
        pages = write_folder(out_dir=args.out, names=list(reports), assignment=grading.assignment.id,
                             title=grading.assignment.spec.title, score_step=grading.rubric.score_step,
                             on_warning=lambda text: err.print(f"[yellow]warning:[/] {escape(text)}"))
        err.print(
            f"feedback pages: {len(pages) - 1} in {args.out}/, the class dashboard is "
            f"{args.out / 'index.html'}")
        return
    _, ext = FORMATS[args.format]
    for name, report in reports.items():
        text = render(report, args.format, max_score=args.max_score, rubric=grading.rubric)
        write_atomic(args.out / f"{name}.{ext}", text)
        if len(reports) == 1:
            sys.stdout.write(text)
    if args.format == "classroom" and len(reports) == 1:
        publish(next(iter(reports.values())), max_score=args.max_score)


def _cmd_check(args, console: Console) -> int:
    from grader.api import grade_one, load_grading, with_sandbox
    from grader.formats import render_json
    from grader.render import print_check

    grading = with_sandbox(load_grading(assignment=args.assignment), args.sandbox)
    if not args.json:
        console.print(f"running {args.notebook} in a fresh kernel…")
    fmt = "json" if args.json else args.format
    if fmt == "html":
        import tempfile

        from grader.api import write_atomic
        from grader.html import read_executed, render_page_safely

        with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:
            executed = Path(tmp) / "executed.ipynb"
            report = grade_one(path=args.notebook, grading=grading, executed_to=executed)
            page, warning = render_page_safely(
                report, name=args.notebook.resolve().stem, notebook=read_executed(executed),
                score_step=grading.rubric.score_step, dashboard=False)
        write_atomic(args.output, page)
        print_check(report, console=console)
        if warning:
            console.print(f"[yellow]note:[/] {escape(warning)}")
        console.print(f"feedback page: {args.output} (open it in your browser)")
    else:
        report = grade_one(path=args.notebook, grading=grading)
        if fmt == "json":
            sys.stdout.write(render_json(report))
        else:
            print_check(report, console=console)
    return EXIT_OK if report.passed_all else EXIT_NO


def _cmd_validate(args, console: Console) -> int:
    from rich.table import Table

    from grader.api import isolation_for, load_grading, with_sandbox
    from grader.validate import validate

    grading = with_sandbox(load_grading(assignment=args.assignment), args.sandbox)
    isolation_for(grading, on_warning=lambda text: console.print(f"warning: {escape(text)}"))
    table = Table(title=f"validate {grading.assignment.id}", show_lines=True)
    table.add_column("case")
    table.add_column("score", no_wrap=True)
    for col in ("failed items", "expected to fail", "verdict"):
        table.add_column(col, overflow="fold")  # item ids wrap, never cut

    def row(case):
        rep = case.report
        failed = sorted(c.id for c in rep.checks if c.status != "pass") if rep else []
        score = f"{rep.score:g}/{rep.max_score:g}" if rep else "-"
        verdict = "[green]ok[/]" if case.ok else "[red]WRONG[/]: " + "; ".join(case.problems)
        table.add_row(case.name, score, ", ".join(failed) or "none",
                      ", ".join(sorted(case.must_fail)) or "none", verdict)
        console.print(f"{case.name}: {'ok' if case.ok else 'WRONG'}")

    cases = validate(grading=grading, on_case=row)
    console.print(table)
    ok = all(c.ok for c in cases)
    console.print("[green]rubric proven[/]" if ok else "[red]rubric NOT proven[/]")
    return EXIT_OK if ok else EXIT_NO


def _cmd_report(args, console: Console) -> int:
    from pydantic import ValidationError

    from grader.formats import render
    from grader.report import Report
    from grader.spec import ConfigError

    if args.format == "html":
        return _report_html(args)
    try:
        report = Report.model_validate_json(args.report.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{args.report}: file not found") from None
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{args.report}: not a grader report ({str(exc).splitlines()[0]})") from None
    sys.stdout.write(render(report, args.format, max_score=args.max_score))
    return EXIT_OK


def _report_html(args) -> int:
    """A folder: its pages and dashboard, written there. A report: its page on stdout,
    with the executed notebook kept beside it (``executed/<name>.ipynb``) where there is one."""
    from pydantic import ValidationError

    from grader.api import executed_path
    from grader.html import read_executed, render_page_safely
    from grader.html.write import write_folder
    from grader.report import Report
    from grader.spec import ConfigError

    err = Console(stderr=True, highlight=False)
    if args.report.is_dir():
        pages = write_folder(out_dir=args.report, scale=args.max_score,
                             on_warning=lambda text: err.print(f"[yellow]warning:[/] {escape(text)}"))
        if not pages:
            raise ConfigError(f"{args.report}: no grader reports (*.json) in this folder")
        err.print(f"wrote {len(pages) - 1} feedback pages and {args.report / 'index.html'}")
        return EXIT_OK
    try:
        report = Report.model_validate_json(args.report.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{args.report}: file not found") from None
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{args.report}: not a grader report ({str(exc).splitlines()[0]})") from None
    name = args.report.stem
    nb = read_executed(executed_path(args.report.parent, name))
    page, warning = render_page_safely(report, name=name, notebook=nb, dashboard=False,
                                       scale=args.max_score)
    if warning:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    sys.stdout.write(page)
    return EXIT_OK


def _cmd_review(args, console: Console) -> int:
    from grader.api import load_grading
    from grader.html.write import write_folder
    from grader.review import ReviewServer

    grading = load_grading(assignment=args.assignment)
    err = Console(stderr=True, highlight=False)
    if not _graded_folder(args.out, err):
        return EXIT_USAGE
    pages = write_folder(out_dir=args.out, assignment=grading.assignment.id,
                         title=grading.assignment.spec.title, score_step=grading.rubric.score_step,
                         on_warning=lambda text: err.print(f"[yellow]warning:[/] {escape(text)}"))
    if not pages:
        err.print(f"[bold red]usage error:[/] {escape(str(args.out))}: no reports to review")
        return EXIT_USAGE
    server = ReviewServer(out_dir=args.out, rubric=grading.rubric, assignment=grading.assignment.id,
                          port=args.port, reviewer=args.by)
    print(f"reviewing {len(pages) - 1} submissions: open {server.url}", flush=True)
    err.print("decisions go to OUT/overrides.toml; Ctrl-C stops the server")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def _cmd_gradescope_bundle(args, console: Console) -> int:
    from grader.api import load_grading
    from grader.gradescope import build_bundle

    grading = load_grading(assignment=args.assignment)
    path = build_bundle(assignment=grading.assignment, rubric_path=grading.assignment.rubric_path,
                        out=args.out)
    console.print(f"wrote {path}: upload it as the autograder of a Gradescope programming assignment")
    return EXIT_OK


def _cmd_schema(args, console: Console) -> int:
    from grader.report import Report
    from grader.rubric import Rubric
    from grader.spec import AssignmentSpec

    model = {"report": Report, "spec": AssignmentSpec, "rubric": Rubric}[args.what]
    sys.stdout.write(json.dumps(model.model_json_schema(), indent=2) + "\n")
    return EXIT_OK


def _cmd_checks(args, console: Console) -> int:
    from grader.checks import all_checks

    for name, check in all_checks().items():
        console.print(f"[bold]{name}[/]: {escape(check.doc)}")
        for field, info in check.params_model.model_fields.items():
            console.print(f"    {field}: {escape(info.description or '')}")
    return EXIT_OK


def _graded_folder(out: Path, err: Console) -> bool:
    """OUT must be a folder `grader grade` wrote into; say so when it is not."""
    if not out.is_dir():
        err.print(f"[bold red]usage error:[/] {escape(str(out))}: no such folder; give the "
                  "folder `grader grade -o` wrote into")
    return out.is_dir()


def _cmd_gradebook(args, console: Console) -> int:
    from grader.api import export_gradebook, load_grading, write_atomic

    grading = load_grading(assignment=args.assignment)
    err = Console(stderr=True, highlight=False)
    if not _graded_folder(args.out, err):
        return EXIT_USAGE
    text, warnings = export_gradebook(out_dir=args.out, grading=grading, fmt=args.format,
                                      column=args.column)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    target = args.output or args.out / f"{args.format}.csv"
    write_atomic(target, text)
    err.print(f"wrote {target} ({text.count(chr(10)) - 1 - (args.format == 'canvas')} students)")
    return EXIT_OK


def _cmd_calibrate(args, console: Console) -> int:
    from rich.table import Table

    from grader.api import calibrate_written, load_grading
    from grader.calibrate import CalibrationError, write_rubric

    grading = load_grading(assignment=args.assignment)
    err = Console(stderr=True, highlight=False)
    if not _graded_folder(args.out, err):
        return EXIT_USAGE
    try:
        cal, skipped = calibrate_written(out_dir=args.out, grading=grading, overrides=args.overrides,
                                         alpha=args.alpha, folds=args.folds)
    except CalibrationError as exc:
        err.print(f"[bold red]cannot calibrate:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_USAGE
    for reason in skipped:
        err.print(f"[yellow]warning:[/] override not used: {escape(reason)}")
    weights = Table(title=f"weights fitted to {cal.samples} overridden answers")
    for col in ("signal", "rubric", "fitted"):
        weights.add_column(col, justify="right" if col != "signal" else "left")
    for name in cal.after:
        mark = "" if name in cal.signals else " (not fitted: no answer has it)"
        weights.add_row(name + mark, f"{cal.before[name]:.3f}", f"{cal.after[name]:.3f}")
    console.print(weights)
    agree = Table(title="agreement with the TA on the overridden answers")
    for col in ("", "mean |difference| (points)", "off by more than 8"):
        agree.add_column(col)
    b, a = cal.agreement_before, cal.agreement_after
    agree.add_row("rubric's weights", f"{b.mean_abs:.2f}", f"{b.off_by_more_than_8}/{b.answers}")
    agree.add_row("fitted (cross-validated)", f"{a.mean_abs:.2f}", f"{a.off_by_more_than_8}/{a.answers}")
    console.print(agree)
    target = args.output or args.out / "calibrated-rubric.toml"
    items = [i.id for i in grading.rubric.items if i.check == "written_answer"]
    write_rubric(source=grading.assignment.rubric_path, target=target, weights=cal.after, items=items,
                 note=(f"Calibrated by `grader calibrate` on {cal.samples} overridden answers in {args.out}:\n"
                       f"agreement with the TA {b.mean_abs:.2f} -> {a.mean_abs:.2f} points per answer "
                       f"(cross-validated).\nReview the weights of the written items, then use this "
                       f"file as the assignment's rubric."))
    err.print(f"wrote {target}: review it, then copy it over {grading.assignment.rubric_path} "
              "(or set the spec's `rubric`) and grade again")
    return EXIT_OK


_COMMANDS = {
    "grade": _cmd_grade,
    "calibrate": _cmd_calibrate,
    "gradebook": _cmd_gradebook,
    "check": _cmd_check,
    "validate": _cmd_validate,
    "report": _cmd_report,
    "review": _cmd_review,
    "gradescope-bundle": _cmd_gradescope_bundle,
    "schema": _cmd_schema,
    "checks": _cmd_checks,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
