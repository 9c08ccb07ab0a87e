"""Live updates: the store's changes as server-sent events (``GET /events``).

A watchdog observer (inotify on Linux, the platform's native watcher elsewhere, as
:mod:`mdsessions.watch`) watches

* the git directory itself, not recursively (``HEAD``, ``packed-refs``), and ``refs/`` and
  ``logs/`` below it: every commit, by this desk, a runner, ``git`` or any other process,
  moves a ref there;
* the store's projects folder, recursively: a person's save of a ``.md`` file (a feedback
  edit not recorded yet) shows on the open pages too. Editors' swap, backup and temp files
  (``*.swp``, ``*~``, ``.#…``) are not ``.md`` files and are ignored.

A burst of file events (one commit writes several) becomes one ``change`` after
:data:`DEBOUNCE` seconds of quiet, sent to every open stream as::

    event: change
    data: {"head": "<sha of HEAD>"}

A comment line (``: heartbeat``) every :data:`HEARTBEAT` seconds keeps proxies and the
browser's ``EventSource`` from timing out. :meth:`ChangeFeed.close` ends every stream, so
the server's shutdown never waits for an open page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from mdsessions.documents.kinds import is_editor_temp

__all__ = ["DEBOUNCE", "HEARTBEAT", "ChangeFeed", "event_stream"]

log = logging.getLogger("mdsessions.web.live")
logging.getLogger("watchdog").addHandler(logging.NullHandler())

DEBOUNCE = 0.1
"""Seconds of quiet after a file event before the change is announced (one per commit)."""

HEARTBEAT = 15.0
"""Seconds between two heartbeat comments on an idle stream."""

_GIT_WATCHED = ("HEAD", "packed-refs")
"""Files directly in the git directory whose change is a change of the store."""


class ChangeFeed:
    """Watch a store's files and hand every change to the open event streams.

    Args:
        git_dir: The store's git directory (``.git``).
        projects: The store's projects folder (recursively watched for ``.md`` saves).
        head: Returns the commit HEAD points at (``None`` on an unborn branch); called in
            the feed's thread after each burst of events.
        debounce: Seconds of quiet that close a burst of events.
        before_broadcast: Called in the feed's thread after each burst, before the pages
            hear of it (the desk reads its inbox again there, so the reload finds it warm).

    Example:
        ::

            feed = ChangeFeed(store.git.git_dir, store.root / "projects", store.git.head)
            feed.start(asyncio.get_running_loop())
            ...
            feed.close()
    """

    def __init__(
        self,
        git_dir: Path,
        projects: Path,
        head: Callable[[], str | None],
        *,
        debounce: float = DEBOUNCE,
        before_broadcast: Callable[[], None] | None = None,
    ) -> None:
        self.git_dir = git_dir
        self.projects = projects
        self.head = head
        self.debounce = debounce
        self.before_broadcast = before_broadcast
        self._events: queue.Queue[str | None] = queue.Queue()
        self._streams: set[asyncio.Queue[str | None]] = set()
        self._streams_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: Any = None
        self._worker: threading.Thread | None = None
        self._closed = False
        self.generation = 0
        """Counts the file events that matter (read it before a read of the store: when it
        is unchanged after, nothing the feed watches changed meanwhile)."""
        self.complete = False
        """Whether every folder is watched (the feed started and no watch failed)."""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> ChangeFeed:
        """Start the observer and the worker thread; streams are fed on ``loop``.

        A folder that cannot be watched (e.g. the system's inotify watch limit reached on a
        very large projects folder) is logged and left out: commits are still announced.
        """
        from watchdog import events as ev
        from watchdog.observers import Observer

        self._loop = loop
        feed = self

        class _Handler(ev.FileSystemEventHandler):
            def on_any_event(self, event: ev.FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write") or event.is_directory:
                    return
                target = getattr(event, "dest_path", "") or event.src_path
                path = target if isinstance(target, str) else target.decode()
                if feed.matters(Path(path)):
                    feed.generation += 1
                    feed._events.put(path)

        observer = Observer()
        handler = _Handler()
        # Writes, creations, moves and deletions only: with "opened"/"closed_no_write" too,
        # every read of the store (the desk's own, and the observer's listing of folders
        # when it reconciles a recursive watch) is an event, and on a large store the
        # observer's own listings overflow the inotify queue, which makes it list again:
        # a loop at 100 % CPU (seen with watchdog 6 on 10,000 sessions).
        kinds: list[type[ev.FileSystemEvent]] = [
            ev.FileModifiedEvent, ev.FileCreatedEvent, ev.FileMovedEvent, ev.FileDeletedEvent,
            ev.FileClosedEvent, ev.DirCreatedEvent, ev.DirMovedEvent, ev.DirDeletedEvent,
        ]  # fmt: skip
        watches = [(self.git_dir, False)]
        watches += [(self.git_dir / sub, True) for sub in ("refs", "logs")]
        watches.append((self.projects, True))
        self.projects.mkdir(parents=True, exist_ok=True)  # as mdsessions watch: no commit
        complete = True
        for folder, recursive in watches:
            if not folder.is_dir():
                continue
            try:
                observer.schedule(handler, str(folder), recursive=recursive, event_filter=kinds)
            except OSError as exc:
                log.warning("not watching %s: %s", folder, exc)
                complete = False
        observer.daemon = True
        observer.start()
        self._observer = observer
        self.complete = complete
        self._worker = threading.Thread(target=self._work, name="mdsessions-live", daemon=True)
        self._worker.start()
        return self

    def close(self) -> None:
        """End every open stream and stop watching (idempotent; any thread)."""
        self._closed = True
        self.complete = False
        self._broadcast(None)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._worker is not None:
            self._events.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def end_streams(self) -> None:
        """End every open stream now (the server is stopping), keep watching (any thread)."""
        self._closed = True
        self._broadcast(None)

    # -- which files count ----------------------------------------------------------------

    def matters(self, path: Path) -> bool:
        """Whether a change of ``path`` is a change of the store a page should show.

        Args:
            path: An absolute path an event named.

        Returns:
            True for ``HEAD``/``packed-refs`` of the git directory, anything below its
            ``refs/`` and ``logs/`` except lock files, and ``.md`` files below the projects
            folder.
        """
        if path.is_relative_to(self.git_dir):
            parts = path.relative_to(self.git_dir).parts
            if len(parts) == 1:
                return parts[0] in _GIT_WATCHED
            return parts[0] in ("refs", "logs") and not path.name.endswith(".lock")
        return (
            path.suffix == ".md"
            and path.is_relative_to(self.projects)
            and not is_editor_temp(path.name)
        )

    # -- streams --------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[str | None]:
        """A new stream's queue of change messages (``None``: the stream ends)."""
        stream: asyncio.Queue[str | None] = asyncio.Queue()
        if self._closed:
            stream.put_nowait(None)
        with self._streams_lock:
            self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: asyncio.Queue[str | None]) -> None:
        """Forget a stream (its page went away)."""
        with self._streams_lock:
            self._streams.discard(stream)

    @property
    def streams(self) -> int:
        """How many streams are open."""
        with self._streams_lock:
            return len(self._streams)

    def _broadcast(self, message: str | None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._streams_lock:
            streams = list(self._streams)
        for stream in streams:
            try:
                loop.call_soon_threadsafe(stream.put_nowait, message)
            except RuntimeError:  # the loop closed meanwhile
                return

    def _work(self) -> None:
        while True:
            first = self._events.get()
            if first is None:
                return
            deadline = time.monotonic() + self.debounce
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    more = self._events.get(timeout=remaining)
                except queue.Empty:
                    break
                if more is None:
                    return
                deadline = time.monotonic() + self.debounce  # still writing: wait for quiet
            try:
                head = self.head()
            except Exception as exc:  # noqa: BLE001 - a ref mid-update; the next event tells
                log.debug("HEAD unreadable after a change: %s", exc)
                head = None
            if self.before_broadcast is not None:
                try:
                    self.before_broadcast()
                except Exception:  # noqa: BLE001 - the pages still hear of the change
                    log.exception("preparing the pages after a change failed")
            self._broadcast(json.dumps({"head": head}))


async def event_stream(feed: ChangeFeed, *, heartbeat: float = HEARTBEAT) -> AsyncIterator[str]:
    """The text of one ``/events`` stream: ``change`` events and heartbeats until closed.

    Args:
        feed: The desk's change feed.
        heartbeat: Seconds between heartbeat comments while nothing changes.

    Yields:
        Server-sent-event text: a ``retry`` line first, then ``event: change`` blocks and
        ``: heartbeat`` comments.
    """
    stream = feed.subscribe()
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                message = await asyncio.wait_for(stream.get(), timeout=heartbeat)
            except asyncio.TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if message is None:
                return
            yield f"event: change\ndata: {message}\n\n"
    finally:
        feed.unsubscribe(stream)
