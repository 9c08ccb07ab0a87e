"""Templates and markdown for the review desk: Jinja pages, sanitized HTML.

Everything a page shows that came from an agent or a person (outputs, comments, notes) goes
through :func:`markdown_html`: markdown-it renders it, then nh3 (the Rust ``ammonia``
sanitizer) keeps only an allow-list of tags and attributes, drops event-handler attributes,
``<script>``/``<style>``/``<iframe>`` and every URL whose scheme is not http, https or mailto
(``javascript:`` links execute nothing). Templates auto-escape everything else.
"""

from __future__ import annotations

import datetime as _dt
import functools
from pathlib import Path
from typing import Any

import jinja2
import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mdsessions.documents import templates

__all__ = ["TEMPLATES_DIR", "age", "environment", "markdown_html", "page", "seconds", "usd", "utc"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
"""The review desk's Jinja templates (shipped in the wheel inside the package)."""

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p",
    "pre", "s", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
    "code": {"class"},
}


@functools.lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


def markdown_html(text: str) -> Markup:
    """Markdown text (an agent output, a person's comments) as safe HTML.

    Args:
        text: Markdown, possibly holding raw HTML of any kind.

    Returns:
        Sanitized HTML: allow-listed tags and attributes only, links limited to http, https,
        mailto and relative URLs (``rel="noopener noreferrer"`` added), no scripts, no event
        handlers, no styles.
    """
    html = _markdown().render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
    return Markup(clean)  # noqa: S704 - sanitized by nh3 just above


def usd(value: float | None) -> str:
    """A cost in USD for people: ``$0.0125``, ``$1.50``; ``-`` when unknown."""
    if value is None:
        return "-"
    return f"${value:.4f}" if 0 < value < 1 else f"${value:.2f}"


def seconds(value: float | None) -> str:
    """A duration in seconds for people: ``0.4 s``, ``12 s``, ``3 min 5 s``; ``-`` when unknown."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    minutes, rest = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def age(since: _dt.datetime | None, now: _dt.datetime | None = None) -> str:
    """How long ago ``since`` (UTC) was, for people: ``45 s``, ``12 min``, ``3 h 5 min``."""
    if since is None:
        return "-"
    now = now or _dt.datetime.now(_dt.timezone.utc)
    total = max(0, int((now - since).total_seconds()))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min"
    if total < 86400:
        return f"{total // 3600} h {total % 3600 // 60} min"
    return f"{total // 86400} d {total % 86400 // 3600} h"


def utc(value: _dt.datetime | None) -> str:
    """A time as UTC ISO-8601 to the second (``2024-11-24T10:02:00Z``); ``-`` when unknown."""
    if value is None:
        return "-"
    return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja environment over :data:`TEMPLATES_DIR` (auto-escaping on, ``markdown`` filter)."""
    env = templates.environment(jinja2.FileSystemLoader(TEMPLATES_DIR), sandboxed=False, html=True)
    env.filters["markdown"] = markdown_html
    env.filters["usd"] = usd
    env.filters["seconds"] = seconds
    env.filters["age"] = age
    env.filters["utc"] = utc
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render one page of the desk.

    Args:
        request: The request (its app carries the CSRF token every form embeds).
        template: A template file name in :data:`TEMPLATES_DIR`, e.g. ``"inbox.html"``.
        status_code: The HTTP status (409 for a stale decision, 400 for invalid input …).
        **context: The template's variables.

    Returns:
        The HTML response.
    """
    html = (
        environment()
        .get_template(template)
        .render(request=request, csrf=request.app.state.desk.csrf, **context)
    )
    return HTMLResponse(html, status_code=status_code)
