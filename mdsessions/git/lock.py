"""The store's inter-process writer lock: a ``flock`` on ``.git/mdsessions/writer.lock``.

Why not only ``filelock``: its ``acquire(timeout=…)`` polls a non-blocking ``flock`` (open,
try, close, sleep). With 8 writers contending, polling every 1 ms burned about a third of a
2-core machine and still left the lock idle between holders (60 checkpoints/s); a 50 ms poll
left it idle longer. Here a waiter sleeps in the kernel (a blocking ``flock`` in a helper
thread, so the wait can still time out) and is woken the moment the holder releases, at no
CPU cost while it waits. Where ``fcntl`` does not exist (Windows), ``filelock`` does the work,
polling every millisecond.

Semantics are ``flock``'s: the lock belongs to the open file description, the kernel
releases it when the holder dies (``kill -9`` included), so a lock file left on disk is never
a stale lock. One :class:`WriterLock` is not re-entrant and must not be shared by threads
without an outer thread lock (``GitRepo`` holds one).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LockTimeout", "RunLock", "WriterLock"]

#: Seconds between two tries of the ``filelock`` fallback.
_POLL_S = 0.001


class LockTimeout(Exception):
    """The lock was not free within the timeout."""


class WriterLock:
    """An exclusive inter-process lock on one file, with a timeout.

    Args:
        path: The lock file (created if missing, never deleted).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._fallback = None
        if fcntl is None:  # pragma: no cover - Windows
            from filelock import FileLock  # noqa: PLC0415

            self._fallback = FileLock(str(path), thread_local=False)

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock."""
        if self._fallback is not None:  # pragma: no cover - Windows
            return bool(self._fallback.is_locked)
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (0: do not wait).

        Raises:
            LockTimeout: Another process (or another ``WriterLock``) held it throughout.
            OSError: The lock file cannot be opened (e.g. a read-only folder).
        """
        if self._fallback is not None:  # pragma: no cover - Windows
            from filelock import Timeout  # noqa: PLC0415

            try:
                self._fallback.acquire(timeout=timeout, poll_interval=_POLL_S)
            except Timeout:
                raise LockTimeout(str(self.path)) from None
            return
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: already held by this WriterLock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if timeout <= 0 or not self._wait(fd, timeout):
                raise LockTimeout(str(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _wait(self, fd: int, timeout: float) -> bool:
        """Block in the kernel until ``fd`` holds the lock or ``timeout`` passes.

        Returns:
            True if ``fd`` now holds the lock. On a timeout, ``fd`` is closed (at once, or by
            the helper thread as soon as its pending ``flock`` returns) and False is returned.
        """
        got = threading.Event()
        guard = threading.Lock()
        state = {"abandoned": False, "finished": False}

        def wait() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                acquired = True
            except OSError:
                acquired = False  # got stays unset: the caller times out
            with guard:
                state["finished"] = True
                if state["abandoned"]:
                    os.close(fd)  # the caller gave up: closing releases the lock again
                elif acquired:
                    got.set()

        waiter = threading.Thread(target=wait, name="mdsessions-lock-wait", daemon=True)
        waiter.start()
        if got.wait(timeout):
            return True
        with guard:
            if got.is_set():
                return True  # acquired right at the deadline
            state["abandoned"] = True
            if state["finished"]:
                os.close(fd)  # flock failed and the thread is done: close it here
        return False

    def release(self) -> None:
        """Release the lock (closing the file releases the ``flock``)."""
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            return
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class RunLock:
    """A named inter-process lock that says who holds it: one runner per session.

    A :class:`WriterLock` (``flock``: the kernel releases it when the holder dies, so a dead
    holder's lock is simply taken over) whose file holds the holder's pid, host and start
    time (UTC ISO-8601) as JSON, so a refused runner can name it.

    Args:
        path: The lock file (created with its folder if missing, never deleted).
    """

    #: Seconds between two tries while waiting: runs last minutes, a waiter need not wake at
    #: once, and a poll leaves no thread blocked in the kernel holding the lock for a moment
    #: after the waiter gave up (which would refuse a third runner spuriously).
    POLL_S = 0.05

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = WriterLock(path)

    def holder(self) -> dict[str, object]:
        """What the current (or last) holder wrote: ``{"pid", "host", "since"}``, or ``{}``."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self, timeout: float) -> None:
        """Take the lock (waiting up to ``timeout`` seconds) and write this holder's details.

        Raises:
            LockTimeout: Another holder kept it throughout.
            OSError: The lock file cannot be opened.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._lock.acquire(0)
                break
            except LockTimeout:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(self.POLL_S, max(0.0, deadline - time.monotonic())))
        fd = self._lock._fd
        if fd is not None:
            info = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        """Release the lock (its file keeps the last holder's details)."""
        self._lock.release()
