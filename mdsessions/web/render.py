"""Templates and markdown for the review desk: Jinja pages, sanitized HTML.

Everything a page shows that came from an agent or a person (outputs, comments, notes) goes
through :func:`markdown_html`: markdown-it renders it, then nh3 (the Rust ``ammonia``
sanitizer) keeps only an allow-list of tags and attributes, drops event-handler attributes,
``<script>``/``<style>``/``<iframe>`` and every URL whose scheme is not http, https or mailto
(``javascript:`` links execute nothing). Templates auto-escape everything else.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["TEMPLATES_DIR", "environment", "markdown_html", "page"]

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


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja environment over :data:`TEMPLATES_DIR` (auto-escaping on, ``markdown`` filter)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown_html
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
        .render(request=request, csrf=request.app.state.csrf, **context)
    )
    return HTMLResponse(html, status_code=status_code)
