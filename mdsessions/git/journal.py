"""What a writer records about its own writes: the crash journal, its claims, its memory.

The journal (``.git/mdsessions/journal.json``) is written before a writer creates anything
and names the old and new commit, the paths and the writer's *token*; every lock claim and
temp file the writer makes carries that token, so the next writer that takes the lock can
finish or undo a crashed operation and remove exactly what the dead writer made
(:mod:`.recovery`).

:class:`WriteMemory` is what a process remembers of its recent commits, to tell the entries
and commits a racing git command dropped from the ones a person changed on purpose.

Imports: nothing of the package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = ["DROPS_CHECKED", "RECENT_PATHS", "Journal", "JournalEntry", "WriteMemory"]

#: How many recently committed paths are checked for entries a stale-index write dropped.
RECENT_PATHS = 24
#: Commits :attr:`WriteMemory.drops_checked` remembers (~100 bytes each).
DROPS_CHECKED = 4096


class JournalEntry(NamedTuple):
    """What a writer is doing, written before it creates anything (``journal.json``).

    ``token`` names every lock claim and temp file the writer creates, so recovery removes
    only those; ``new`` is the commit it is about to install (``None`` until known), so a
    branch found at any other commit is someone else's and is never "rolled forward".
    """

    old: str | None
    ref: str
    paths: list[str]
    token: str = ""
    new: str | None = None


class Journal:
    """The journal file of one repository and the private files named by a writer's token.

    Args:
        folder: The repository's private folder (``.git/mdsessions``).
        durable: fsync the journal when it is written.
    """

    def __init__(self, folder: Path, *, durable: bool = False) -> None:
        self.folder = folder
        self.path = folder / "journal.json"
        self.durable = durable

    def claim(self, token: str, kind: str) -> Path:
        """The private file through which the writer ``token`` takes a git lock.

        Args:
            token: The writer's journal token.
            kind: Which lock: ``index`` or ``ref``.

        Returns:
            ``.git/mdsessions/claim-<token>.<kind>``.
        """
        return self.folder / f"claim-{token}.{kind}"

    def message_file(self, token: str) -> Path:
        """The file the writer ``token`` hands its commit message to the message hooks in."""
        return self.folder / f"msg-{token}"

    def write(self, entry: JournalEntry) -> None:
        """Write ``entry`` as the journal.

        The first journal of an operation is a fresh file (never a replace: cheaper on
        ext4): torn by a crash while written, it is unreadable JSON, and nothing had been
        created yet. A journal rewritten later (hooks, signing: the commit id is known only
        after the index lock is taken) replaces the old one atomically, so it is never torn.

        Raises:
            OSError: If it cannot be written.
        """
        data = json.dumps(entry._asdict()).encode()
        target = self.path
        rewrite = target.exists()
        if rewrite:
            target = self.folder / f"journal-{entry.token or 'x'}.tmp"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if rewrite:
            os.replace(target, self.path)  # noqa: PTH105

    def read(self) -> JournalEntry | None:
        """The journal's entry, or ``None`` when there is no journal.

        Raises:
            ValueError: The journal is torn (a crash while it was first written).
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
            return JournalEntry(
                data["old"],
                data["ref"],
                [str(p) for p in data["paths"]],
                str(data.get("token") or ""),
                data.get("new"),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError(f"{self.path} is torn") from None

    def remove(self) -> None:
        """Remove the journal: the operation it names is complete (or was undone).

        Raises:
            FileNotFoundError: There is none.
        """
        self.path.unlink()


@dataclass
class WriteMemory:
    """What this process remembers of its own commits (see :mod:`.recovery`).

    Attributes:
        last_installed: The commit this process last put on the branch; while the branch
            is still there, nobody else moved it and there is nothing to look for in the
            reflog.
        audited: The branch position last checked for commits dropped by racing git
            commands.
        drops_checked: Commits already looked at as possibly dropped by a racing reset
            (the last :data:`DROPS_CHECKED` of them: forgetting one only means looking again).
        recent: Paths this process committed lately and their blobs (index repairs).
        written: The last few blobs this process wrote per path (stale index entries).
        index_written: ``(inode, size, mtime_ns, ctime_ns)`` of the index this process
            last wrote; another is someone else's write.
    """

    last_installed: str | None = None
    audited: str | None = None
    drops_checked: dict[str, None] = field(default_factory=dict)
    recent: dict[str, bytes] = field(default_factory=dict)
    written: dict[str, list[bytes]] = field(default_factory=dict)
    index_written: tuple[int, int, int, int] | None = None

    def checked_drop(self, commit: str) -> None:
        """Note that ``commit`` was looked at as possibly dropped (the oldest note goes)."""
        self.drops_checked[commit] = None
        while len(self.drops_checked) > DROPS_CHECKED:
            self.drops_checked.pop(next(iter(self.drops_checked)))

    def installed(self, commit: str, parent: str | None, blobs: Mapping[str, bytes | None]) -> None:
        """Note that this process put ``commit`` on the branch, writing ``blobs``.

        Args:
            commit: The new commit id.
            parent: The branch position it was made on.
            blobs: Each committed path's blob id (20 raw bytes), ``None`` when deleted.
        """
        self.last_installed = commit
        if parent == self.audited:
            # Only a commit made on an audited position is audited itself: one made on a
            # branch someone else moved (a racing reset not yet undone) leaves the drop to
            # find on the next write.
            self.audited = commit
        for rel, blob in blobs.items():
            self.recent.pop(rel, None)
            if blob is not None:
                self.recent[rel] = blob
                versions = self.written.pop(rel, [])[-7:]
                self.written[rel] = [*versions, blob]
        while len(self.recent) > RECENT_PATHS:
            self.recent.pop(next(iter(self.recent)))
        while len(self.written) > 4 * RECENT_PATHS:
            self.written.pop(next(iter(self.written)))
