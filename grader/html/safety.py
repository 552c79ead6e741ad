"""What makes a page safe to open: student content is cleaned, and the page forbids
what cleaning might miss.

A notebook's outputs and markdown are arbitrary HTML written by the student (or by code
the student ran). The whole rendered notebook goes through one allow-list cleaner (nh3,
the Rust ``ammonia`` sanitizer that PyPI's readme_renderer uses): no script, no event
handler, no frame, no form, no ``javascript:`` link, no remote image. The page's
Content-Security-Policy is the second wall: only the page's own scripts run (by hash),
and nothing loads from the network.
"""

from __future__ import annotations

import base64
import hashlib
import re

import nh3

# What nbconvert's lab template and Markdown produce, and nothing that runs or loads.
TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
    "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
}
ATTRIBUTES = {
    "*": {"class", "title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
    "div": {"data-mime-type"},  # nbconvert marks stderr with it
}
# nbconvert's and Pygments' class names: a student's HTML cannot borrow the page's own
# (a fake "passed" note inside a cell)
_CLASS = re.compile(r"(jp-|cm-|hl-|ansi-|celltag_)[\w-]*|highlight|dataframe|[a-z]{1,3}[0-9]?")


def _attribute(tag: str, attr: str, value: str) -> str | None:
    if attr == "class":
        return " ".join(c for c in value.split() if _CLASS.fullmatch(c)) or None
    if tag == "img" and attr == "src":  # pictures the notebook carries, never fetched ones
        # (an SVG in an <img> is only a picture: browsers run no script in it)
        return value if value.startswith("data:image/") else None
    if tag == "a" and attr == "href":
        return None if value.lower().startswith("data:") else value
    return value


def clean(html: str) -> str:
    """Student HTML with everything that could run, load or submit removed."""
    return nh3.clean(
        html, tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_attribute,
        url_schemes={"http", "https", "mailto", "data"}, link_rel="noopener noreferrer nofollow",
        clean_content_tags={"script", "style", "iframe", "object", "embed", "noscript",
                            "template", "svg", "math", "textarea", "select", "form"},
    )


def script_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def content_security_policy(*scripts: str) -> str:
    """Only the given inline scripts (by hash) run; images only from data: URLs; requests
    only back to where the page came from (the review server), never elsewhere."""
    allowed = " ".join(script_hash(s) for s in scripts) or "'none'"
    return ("default-src 'none'; "
            f"script-src {allowed}; "
            "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-src 'none'; object-src 'none'")
