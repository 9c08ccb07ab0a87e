"""The review desk's Starlette application: the store, its lock, the routes, the middleware.

Endpoints are plain functions run in Starlette's thread pool; every one that touches the store
holds :attr:`Desk.lock`, so the store (one :class:`~mdsessions.Store` object, like one command)
is used by one request at a time, while the live-events stream waits without it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from mdsessions import Store
from mdsessions.web import pages, review
from mdsessions.web.live import ChangeFeed
from mdsessions.web.render import page
from mdsessions.web.security import SecurityMiddleware, new_secret

__all__ = ["Desk", "create_app", "desk"]

STATIC_DIR = Path(__file__).parent / "static"

T = TypeVar("T")


@dataclass
class Desk:
    """What every request of one running desk shares.

    Attributes:
        store: The open store.
        reviewer: The default reviewer identity (``Name <email>``) the decision form offers,
            or ``None`` for the store's git config.
        csrf: The CSRF token every form carries (random per run).
        lock: Held while a request uses the store.
        feed: The store's changes for ``/events`` (watching while the application runs).
    """

    store: Store
    reviewer: str | None = None
    csrf: str = field(default_factory=new_secret)
    lock: threading.RLock = field(default_factory=threading.RLock)
    feed: ChangeFeed | None = None
    memo: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def remembered(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, or its last result while the store has not changed since.

        Only while :attr:`feed` watches the whole store (else every call computes): its
        :attr:`~mdsessions.web.live.ChangeFeed.generation` is read before computing, so a
        change during the computation makes the next call compute again. Hold :attr:`lock`.

        Args:
            key: What is computed (e.g. ``"inbox"``).
            compute: Reads the store.

        Returns:
            The (possibly remembered) result.
        """
        feed = self.feed
        if feed is None or not feed.complete:
            return compute()
        generation = feed.generation
        seen = self.memo.get(key)
        if seen is not None and seen[0] == generation:
            return cast(T, seen[1])
        value = compute()
        self.memo[key] = (generation, value)
        return value

    def forget(self) -> None:
        """Make every remembered result stale (after the desk's own write). Hold :attr:`lock`."""
        self.memo = {key: (-1, value) for key, (_, value) in self.memo.items()}

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
    the_desk = Desk(store=store, reviewer=reviewer)
    projects = store.root if store.projects_dir == "." else store.root / store.projects_dir
    the_desk.feed = ChangeFeed(
        store.git.git_dir,
        projects,
        store.git.head,
        before_broadcast=lambda: review.rewarm(the_desk),
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        assert the_desk.feed is not None
        the_desk.feed.start(asyncio.get_running_loop())
        # The first visitor gets a warm inbox: the session index read once, before serving.
        await run_in_threadpool(review.warm, the_desk)
        try:
            yield
        finally:
            the_desk.feed.close()

    routes: list[BaseRoute] = [
        *review.routes(),
        *pages.routes(),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, hosts=hosts, token=token)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.desk = the_desk
    return app


_TITLES = {404: "Not found", 403: "Refused", 405: "Method not allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """An error page (404 for an unknown session, phase or path) in the desk's layout."""
    assert isinstance(exc, HTTPException)
    return page(
        request,
        "review_error.html",
        status_code=exc.status_code,
        title=_TITLES.get(exc.status_code, "Error"),
        message=exc.detail,
    )
