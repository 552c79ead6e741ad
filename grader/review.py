"""``grader review OUT``: the feedback pages served on 127.0.0.1, where a TA changes an
item's points with a comment and the decision is saved to ``OUT/overrides.toml``.

Why a server and not static pages: a class has one overrides file, and a TA's decisions
on many pages must land in it, beside the entries already there, each with the sha256
of the notebook it was made on. A page opened from disk cannot write a file; a server
on the loopback interface, for one user (a random token), can.

Who may talk to it: only this machine (bound to 127.0.0.1), only with the token from the
printed link (then a SameSite=Strict, HttpOnly cookie), only with the Host header of
that address (a DNS-rebinding page cannot), and writes only as JSON with a custom header
(a cross-site form cannot send one).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from grader.overrides import STORED_NAME, OverrideEntry, save_override
from grader.report import Report
from grader.rubric import Rubric
from grader.spec import ConfigError

PAGE = re.compile(r"^/([\w.-]+\.html)$")
MAX_BODY = 64 * 1024


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, out_dir: Path, rubric: Rubric, assignment: str,
                 host: str = "127.0.0.1", port: int = 0, reviewer: str = "") -> None:
        super().__init__((host, port), _Handler)
        self.out_dir = out_dir
        self.rubric = rubric
        self.assignment = assignment
        self.reviewer = reviewer
        self.token = secrets.token_urlsafe(24)
        # one write to overrides.toml at a time, and one page rendered at a time (nbconvert's
        # exporter and matplotlib's settings are shared): one TA, so it costs nothing
        self.lock = threading.Lock()
        host_name, real_port = self.server_address[:2]
        self.hosts = {f"{host_name}:{real_port}", f"localhost:{real_port}"}
        self.cookie = f"grader_review_{real_port}"  # cookies ignore ports: one name per server

    def token_ok(self, value: str) -> bool:
        return secrets.compare_digest(value.encode("utf-8", "replace"), self.token.encode())

    def cookie_ok(self, header: str) -> bool:
        """The Cookie header, read by hand: another local site's cookie (a JSON value, a
        space) must not hide ours, as it would from http.cookies."""
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie and self.token_ok(value):
                return True
        return False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/?token={self.token}"

    def page(self, name: str) -> bytes | None:
        """A submission's page with the decisions saved so far applied, as the next
        grading will apply them (None for the dashboard: it is served as written)."""
        from grader.api import executed_path
        from grader.html import read_executed, render_page_safely
        from grader.overrides import apply_overrides, load_overrides

        report_path = self.out_dir / f"{name}.json"
        if not report_path.is_file():
            return None
        try:
            report = Report.model_validate_json(report_path.read_text(encoding="utf-8"))
        except ValueError:
            return None
        stored = self.out_dir / STORED_NAME
        with self.lock:
            entries = load_overrides(stored, rubric=self.rubric) if stored.is_file() else []
            report = apply_overrides(report, name, entries)
            html, _ = render_page_safely(report, name=name, score_step=self.rubric.score_step,
                                         notebook=read_executed(executed_path(self.out_dir, name)))
        return html.encode()

    def save(self, data: dict) -> str:
        """Validate one decision from a page and add it to OUT/overrides.toml."""
        name = str(data.get("submission", ""))
        report_path = self.out_dir / f"{name}.json"
        if not re.fullmatch(r"[\w.-]+", name) or not report_path.is_file():
            raise ValueError(f"no report named '{name}' in {self.out_dir}")
        report = Report.model_validate_json(report_path.read_text(encoding="utf-8"))
        if report.assignment != self.assignment:
            raise ValueError(f"{report_path} is a report of {report.assignment}")
        by = str(data.get("by", "")).strip()
        if not by:
            raise ValueError("say who decides: fill in 'Reviewing as' at the top of the page")
        entry = OverrideEntry(submission=name, item=str(data.get("item", "")),
                              points=data.get("points"), by=by,
                              comment=str(data.get("comment", "")).strip(),
                              sha256=report.submission.sha256)
        with self.lock:
            save_override(self.out_dir / STORED_NAME, entry, rubric=self.rubric)
        return (f"saved: {entry.item} = {entry.points:g} in {STORED_NAME}; applied on the "
                "next `grader grade` into this folder")


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, format: str, *args) -> None:  # quiet: the TA's terminal stays readable
        pass

    def _send(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _allowed(self) -> bool:
        if self.headers.get("Host") not in self.server.hosts:
            self._send(HTTPStatus.FORBIDDEN, b"wrong host", "text/plain")
            return False
        if self.server.cookie_ok(self.headers.get("Cookie", "")):
            return True
        self._send(HTTPStatus.FORBIDDEN, b"open the link `grader review` printed", "text/plain")
        return False

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        token = parse_qs(parts.query).get("token", [""])[0]
        if token and self.headers.get("Host") in self.server.hosts and self.server.token_ok(token):
            cookie = f"{self.server.cookie}={self.server.token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain",
                       {"Location": parts.path or "/", "Set-Cookie": cookie})
            return
        if not self._allowed():
            return
        if parts.path == "/api/session":
            self._json(HTTPStatus.OK, {"by": self.server.reviewer})
            return
        match = PAGE.match("/index.html" if parts.path == "/" else parts.path)
        page = self.server.out_dir / match.group(1) if match else None
        if page is None or not page.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"no such page", "text/plain")
            return
        try:
            fresh = self.server.page(page.stem) if page.name != "index.html" else None
        except (ConfigError, OSError, ValueError) as exc:  # e.g. overrides.toml edited by hand
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot show {page.name}: {exc}".encode(),
                       "text/plain; charset=utf-8")
            return
        self._send(HTTPStatus.OK, fresh or page.read_bytes(), "text/html; charset=utf-8")

    def do_POST(self) -> None:
        if not self._allowed():
            return
        if urlsplit(self.path).path != "/api/override" or self.headers.get("X-Grader-Review") != "1" \
                or not self.headers.get("Content-Type", "").startswith("application/json"):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "POST JSON to /api/override from a page"})
            return
        length = self.headers.get("Content-Length", "")
        length = int(length) if length.isdigit() else 0
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "empty or too large"})
            return
        try:
            data = json.loads(self.rfile.read(length))
            message = self.server.save(data if isinstance(data, dict) else {})
        except ValidationError as exc:
            problem = exc.errors()[0]
            field = ".".join(str(p) for p in problem["loc"])
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"{field}: {problem['msg']}"})
        except (ValueError, ConfigError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        else:
            self._json(HTTPStatus.OK, {"message": message})
