"""The reading pages: a session, a document at any version, a diff, search.

Owned by the "pages" part of issue 16; see the page contract in docs (routes below).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    """The routes of this module (``/s/…``, ``/doc/…``, ``/diff/…``, ``/search``)."""
    return []
