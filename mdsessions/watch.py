"""Watch mode: record a reviewer's saved ``user_feedback.md`` edit as soon as it lands.

Built on watchdog (inotify on Linux, the platform's native watcher elsewhere). Every save of a
``user_feedback.md`` below the store's projects folder is validated and, when valid, recorded
as the reviewer's commit (:meth:`Store.record_edits`); an invalid edit is reported with file,
line and reason and left in place to fix. Editors that save by writing a temp file and
renaming it are covered (the rename's destination counts as a save); editors' swap, backup
and temp files (:data:`mdsessions.store.config.EDITOR_TEMP_PATTERNS`) are never recorded, and
a feedback file found missing mid-save (moved to its backup) waits for its new version.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdsessions.store.store import FEEDBACK, Store

__all__ = ["FeedbackEvent", "FeedbackWatcher"]

# watchdog logs a harmless race at shutdown as an error; without a handler of the
# application's, Python's last-resort handler would print it on stderr.
logging.getLogger("watchdog").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class FeedbackEvent:
    """What the watcher did with one saved feedback file.

    Attributes:
        path: Store-relative path of the ``user_feedback.md``.
        commit: The commit that recorded it, or ``None`` (nothing to record, or invalid).
        error: Why the file does not validate (it stays uncommitted), or ``None``.
        recorded_at: When it was handled (seconds since the epoch).
    """

    path: str
    commit: str | None
    error: str | None
    recorded_at: float


class FeedbackWatcher:
    """Record saved feedback edits in a background thread while the watcher runs.

    Args:
        store: The store to watch.
        on_event: Called (in the watcher's thread) for every handled save.
        author: The person to record edits as (default: as :meth:`Store.record_edits`).
        debounce: Seconds to wait after a save for more writes to the same file (editors
            often write twice), before recording.

    Example:
        ::

            with FeedbackWatcher(store, on_event=print) as watcher:
                watcher.wait(lambda: session.status is not SessionStatus.AWAITING_REVIEW, 600)
    """

    def __init__(
        self,
        store: Store,
        *,
        on_event: Callable[[FeedbackEvent], None] | None = None,
        author: str | None = None,
        debounce: float = 0.05,
    ) -> None:
        self.store = store
        self.on_event = on_event
        self.author = author
        self.debounce = debounce
        self.events: list[FeedbackEvent] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._changed = threading.Condition()
        self._observer: Any = None
        self._worker: threading.Thread | None = None
        base = store.root if store.projects_dir == "." else store.root / store.projects_dir
        self._base = base

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FeedbackWatcher:
        """Start watching (returns self)."""
        from watchdog import events as ev
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type not in (
                    "modified",
                    "created",
                    "moved",
                    "closed",
                ):
                    return
                target = getattr(event, "dest_path", "") or event.src_path
                path = Path(target if isinstance(target, str) else target.decode())
                if path.name == FEEDBACK:  # never an editor's temp file (is_editor_temp)
                    watcher._queue.put(path.relative_to(watcher.store.root).as_posix())

        self._base.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        # Saves only (no open/close-without-write events): on a large store the observer's
        # own folder listings would otherwise overflow inotify's queue and list again, forever.
        saves: list[type[FileSystemEvent]] = [
            ev.FileModifiedEvent, ev.FileCreatedEvent, ev.FileMovedEvent, ev.FileClosedEvent,
            ev.DirCreatedEvent, ev.DirMovedEvent,
        ]  # fmt: skip
        observer.schedule(_Handler(), str(self._base), recursive=True, event_filter=saves)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._worker = threading.Thread(target=self._work, name="mdsessions-watch", daemon=True)
        self._worker.start()
        # Saves made before the observer started are recorded too.
        for edit in self.store.unrecorded_edits():
            if edit.path.endswith("/" + FEEDBACK) and edit.change != "deleted":
                self._queue.put(edit.path)
        return self

    def stop(self) -> None:
        """Stop watching and wait for the background threads to end."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def __enter__(self) -> FeedbackWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- work -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            rel = self._queue.get()
            if rel is None:
                return
            deadline = time.monotonic() + self.debounce
            pending = {rel}
            while True:  # gather the burst of writes one save makes
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    more = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                pending.add(more)
            for path in sorted(pending):
                self._record(path)

    def _record(self, rel: str) -> None:
        from mdsessions.errors import MdsessionsError

        if not (self.store.root / rel).is_file():
            # Mid-save: an editor moved the file away (to its backup, e.g. vim's
            # "user_feedback.md~") and has not written the new one yet; its creation is the
            # save to record. Recording now would commit the file's deletion.
            return
        try:
            sha, rejected = self.store.record_edits([rel], author=self.author)
            error = next((r.error for r in rejected if r.path == rel), None)
        except (MdsessionsError, OSError, ValueError) as exc:
            sha, error = None, str(exc)
        if sha is None and error is None:
            # Nothing new: our own write, or another process (the review desk, `review`)
            # recorded it first. Waiters look again: the decision may have landed.
            with self._changed:
                self._changed.notify_all()
            return
        event = FeedbackEvent(rel, sha, error, time.time())
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        if self.on_event is not None:
            self.on_event(event)

    def wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Block until ``done()`` is true (checked now and after every handled save).

        Args:
            done: A condition, e.g. "the phase is no longer awaiting review".
            timeout: Seconds to wait at most; ``None`` waits forever.

        Returns:
            ``done()``'s final value (False when the timeout passed first).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(timeout=remaining if remaining is not None else 1.0)
            return True
