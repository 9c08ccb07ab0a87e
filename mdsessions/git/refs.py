"""Refs under git's own ``files`` ref-store protocol: read, lock, compare-and-swap, reflog.

A branch moves by compare-and-swap: ``<ref>.lock`` is taken (as git takes it), the ref is
checked to still be at the commit the writer planned on, the new id and a reflog line are
written, and the lock is renamed over the ref. The lock is taken through a *claim*, a private
file hard-linked to the lock's name, so that recovery can prove a lock left behind is a dead
mdsessions writer's and never removes a live git process's.

Imports: :mod:`.fsutil` (durable writes), :mod:`.index` (the claimed-lock rename),
:mod:`.objects` (identities).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from mdsessions.errors import LockTimeoutError
from mdsessions.git import fsutil as _fsutil
from mdsessions.git import index as _gitindex
from mdsessions.git.objects import Identity

__all__ = ["RefMoved", "RefStore"]


class RefMoved(Exception):
    """The branch moved between reading it and taking its lock.

    ``args[0]`` is the commit the ref is at now (``None``: it does not exist).
    """


class RefStore:
    """The refs of one repository (loose and packed), moved under git's lock protocol.

    Args:
        git_dir: The repository's ``.git`` folder.
        lock_timeout: Seconds to wait while another git process holds a ref lock.
        durable: fsync the new ref before it is renamed in place.
    """

    def __init__(self, git_dir: Path, *, lock_timeout: float = 60.0, durable: bool = False) -> None:
        self.git_dir = git_dir
        self.lock_timeout = lock_timeout
        self.durable = durable

    def read(self, ref: str) -> str | None:
        """The commit id a ref points at (loose or packed), or ``None`` if it does not exist."""
        try:
            value = (self.git_dir / ref).read_text().strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            value = ""
        if value:
            if value.startswith("ref: "):
                return self.read(value[5:])
            return value
        try:
            with (self.git_dir / "packed-refs").open("rb") as fh:
                for line in fh:
                    if line.startswith((b"#", b"^")):
                        continue
                    sha, _, name = line.rstrip(b"\n").partition(b" ")
                    if name.decode() == ref:
                        return sha.decode()
        except FileNotFoundError:
            pass
        return None

    def head(self) -> str | None:
        """The commit HEAD points at (whatever is checked out), or ``None`` on an unborn branch."""
        text = (self.git_dir / "HEAD").read_text().strip()
        if text.startswith("ref: "):
            return self.read(text[5:])
        return text or None

    def take_lock(self, lock: Path, claim: Path) -> int:
        """Take git's lock file ``lock`` through ``claim``, waiting while another git holds it.

        The lock is the same file as ``claim`` (a hard link): recovery can prove it is this
        writer's.

        Args:
            lock: git's lock file, e.g. ``.git/refs/heads/main.lock``.
            claim: The writer's claim file (:meth:`.Journal.claim`), which must not exist.

        Returns:
            A descriptor open for writing the lock's content.

        Raises:
            LockTimeoutError: ``lock`` stayed held for more than ``lock_timeout`` seconds.
        """
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.001
        while True:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.link(claim, lock)
                return fd
            except FileExistsError:
                os.close(fd)
                claim.unlink()
            except BaseException:
                os.close(fd)
                claim.unlink()
                raise
            if time.monotonic() > deadline:
                raise LockTimeoutError(
                    f"{lock} was held by another git process for more than "
                    f"{self.lock_timeout:g} s; nothing was changed. If no git command is "
                    "running, a crashed one left it: remove it and try again"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def cas(
        self,
        ref: str,
        new: str,
        old: str | None,
        message: str,
        who: Identity,
        claim: Path,
        before_install: Callable[[], None] | None = None,
    ) -> None:
        """Move ``ref`` from ``old`` to ``new`` under git's ref lock (``<ref>.lock``).

        Args:
            ref: The ref, e.g. ``refs/heads/main``.
            new: The commit to install.
            old: The commit the ref must be at (``None``: must not exist).
            message: The reflog message (its first line).
            who: The reflog identity.
            claim: The writer's claim file for this ref (:meth:`.Journal.claim`): the lock is
                taken through it.
            before_install: Called once the ref is locked and verified, right before it
                moves: the commit puts its new index in place here, so that a ``git commit``
                that reads the new ``HEAD`` also reads the new index.

        Raises:
            RefMoved: ``ref`` is not at ``old`` (someone else's commit); nothing changed.
            LockTimeoutError: Another git process held the ref lock too long.
        """
        ref_path = self.git_dir / ref
        lock = ref_path.with_name(ref_path.name + ".lock")
        try:
            fd = self.take_lock(lock, claim)
        except FileNotFoundError:  # the ref's folder does not exist yet (made only then:
            ref_path.parent.mkdir(parents=True, exist_ok=True)  # a syscall per commit saved)
            fd = self.take_lock(lock, claim)
        try:
            current = self.read(ref)
            if current != old:
                raise RefMoved(current)
            os.write(fd, (new + "\n").encode())
            if self.durable:  # fsync, or written out in the caller's durable batch
                _fsutil.sync_file(fd, lock)
            os.close(fd)
            fd = -1
            if before_install is not None:
                before_install()
            # The reflog is written while the ref is locked, as git does.
            stamp = f"{who.name} <{who.email}> {int(time.time())} +0000"
            line = (
                f"{old or '0' * 40} {new} {stamp}\t{message.splitlines()[0] if message else ''}\n"
            )
            # HEAD's own log records only moves of the branch HEAD names (as git does).
            logs = [self.git_dir / "logs" / ref]
            with contextlib.suppress(OSError):
                if (self.git_dir / "HEAD").read_text().strip() == f"ref: {ref}":
                    logs.append(self.git_dir / "logs" / "HEAD")
            for log in logs:
                with contextlib.suppress(OSError):
                    try:
                        fh = log.open("a", encoding="utf-8")
                    except FileNotFoundError:  # the log's folder is made only when missing
                        log.parent.mkdir(parents=True, exist_ok=True)
                        fh = log.open("a", encoding="utf-8")
                    with fh:
                        fh.write(line)
            _gitindex.replace_claimed(lock, ref_path, claim, self.durable)
        except BaseException:
            if fd != -1:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # ours: taken above and not yet renamed
            raise
        finally:
            for own in (claim, _gitindex.old_claim(claim)):
                with contextlib.suppress(FileNotFoundError):
                    own.unlink()

    def reflog_tail(self, ref: str) -> list[tuple[str, str, str, str]]:
        """``(old, new, identity, message)`` of the last reflog lines of ``ref``, newest first.

        Only the last 16 KiB of the reflog are read.
        """
        try:
            with (self.git_dir / "logs" / ref).open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                tail = fh.read()
        except OSError:
            return []
        lines = tail.splitlines()
        if size > 16384:
            lines = lines[1:]  # the first one is cut
        out: list[tuple[str, str, str, str]] = []
        for line in reversed(lines):
            head, tab, message = line.decode("utf-8", "replace").partition("\t")
            parts = head.split(" ", 2)
            if tab and len(parts) == 3:
                identity = parts[2].rpartition(">")[0] + ">"
                out.append((parts[0], parts[1], identity, message))
        return out
