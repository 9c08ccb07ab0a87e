"""The reviewer's pages: the inbox, a phase with its outputs beside the decision form, live events.

Owned by the "web" part of issue 16; see the page contract in docs (routes below).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    """The routes of this module (inbox ``/``, phase pages and decisions, ``/events``)."""
    return []
