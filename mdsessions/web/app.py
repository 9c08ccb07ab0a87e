"""The review desk's Starlette application: the store, its lock, the routes, the middleware.

Endpoints are plain functions run in Starlette's thread pool; every one that touches the store
holds :attr:`Desk.lock`, so the store (one :class:`~mdsessions.Store` object, like one command)
is used by one request at a time, while the live-events stream waits without it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from mdsessions import Store
from mdsessions.web import pages, review
from mdsessions.web.security import SecurityMiddleware, new_secret

__all__ = ["Desk", "create_app", "desk"]

STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class Desk:
    """What every request of one running desk shares.

    Attributes:
        store: The open store.
        reviewer: The default reviewer identity (``Name <email>``) the decision form offers,
            or ``None`` for the store's git config.
        csrf: The CSRF token every form carries (random per run).
        lock: Held while a request uses the store.
    """

    store: Store
    reviewer: str | None = None
    csrf: str = field(default_factory=new_secret)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @contextmanager
    def using(self) -> Iterator[Store]:
        """Hold the store for one request (``with desk(request).using() as store:``)."""
        with self.lock:
            yield self.store


def desk(request: Request) -> Desk:
    """The :class:`Desk` of the application serving ``request``."""
    value = request.app.state.desk
    assert isinstance(value, Desk)
    return value


def create_app(
    store: Store,
    *,
    hosts: tuple[str, ...] = (),
    token: str | None = None,
    reviewer: str | None = None,
) -> Starlette:
    """The review desk for ``store`` as an ASGI application.

    Args:
        store: The store to serve (opened by the caller; the desk never closes it).
        hosts: The ``Host`` header values accepted (e.g. ``("127.0.0.1:8765",
            "localhost:8765")``); empty accepts any (tests with an in-process client).
        token: The access token every request must carry, or ``None`` (loopback only).
        reviewer: The default reviewer identity offered on decision forms.

    Returns:
        The Starlette application; ``app.state.desk`` is its :class:`Desk`.
    """
    routes: list[BaseRoute] = [
        *review.routes(),
        *pages.routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, hosts=hosts, token=token)],
    )
    the_desk = Desk(store=store, reviewer=reviewer)
    app.state.desk = the_desk
    app.state.csrf = the_desk.csrf
    return app
