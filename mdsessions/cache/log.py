"""A rebuildable index of the store's history: which commits touched which paths.

``git log -- <session folder>`` walks every commit of the store (115-470 ms at 10,000 commits
without a commit-graph). This index answers the same question from SQLite in a few
milliseconds. It is a cache under ``.mdsessions/cache/`` (gitignored): git stays the truth.

Freshness: the index records the HEAD it has indexed. Each query compares it with the current
HEAD; if HEAD moved forward, only the new commits are read (``git log OLD..HEAD``); if HEAD is
not a descendant of it (a person reset the branch), the index is rebuilt. Deleting the file is
always safe.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from mdsessions.git.repo import CommitInfo, GitRepo

__all__ = ["LogIndex"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commits (
    seq INTEGER PRIMARY KEY,
    sha TEXT NOT NULL UNIQUE,
    author TEXT NOT NULL,
    time INTEGER NOT NULL,
    subject TEXT NOT NULL,
    trailers TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS paths (seq INTEGER NOT NULL, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS paths_by_path ON paths (path, seq);
"""
_VERSION = "1"
_FORMAT = "%x1e%H%x1f%an <%ae>%x1f%at%x1f%s%x1f%(trailers:only,unfold)%x1f"


class LogIndex:
    """Path → commits, newest first, kept in step with the branch HEAD points at.

    Args:
        git: The store's repository.
        path: The SQLite file (created with its folder).
    """

    def __init__(self, git: GitRepo, path: Path) -> None:
        self.git = git
        self.path = path
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        try:
            try:
                conn.executescript(_SCHEMA)
            except sqlite3.DatabaseError:
                # A damaged cache (e.g. truncated by a crash): it is only a cache, rebuild it.
                conn.close()
                self.path.unlink(missing_ok=True)
                conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
                conn.executescript(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def _meta(self, conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Index the commits HEAD gained since the last refresh (or rebuild if it moved back)."""
        head = self.git.head()
        if self._meta(conn, "head") == head and self._meta(conn, "version") == _VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = self._meta(conn, "head")
            if last == head and self._meta(conn, "version") == _VERSION:
                conn.execute("COMMIT")
                return
            rebuild = (
                last is None
                or head is None
                or self._meta(conn, "version") != _VERSION
                or not self.git.is_ancestor(last, head)
            )
            if rebuild:
                conn.execute("DELETE FROM commits")
                conn.execute("DELETE FROM paths")
            if head is not None:
                rev = head if rebuild else f"{last}..{head}"
                self._append(conn, rev)
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('head', ?), ('version', ?)",
                (head or "", _VERSION),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _append(self, conn: sqlite3.Connection, rev: str) -> None:
        proc = self.git.git(
            "log", "--reverse", f"--format={_FORMAT}", "--name-only", "--no-renames", rev
        )
        row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM commits").fetchone()
        seq = int(row[0])
        for record in proc.stdout.decode("utf-8", "replace").split("\x1e")[1:]:
            sha, author, stamp, subject, trailers, rest = record.split("\x1f", 5)
            seq += 1
            conn.execute(
                "INSERT OR IGNORE INTO commits VALUES (?, ?, ?, ?, ?, ?)",
                (seq, sha, author, int(stamp), subject, trailers),
            )
            conn.executemany(
                "INSERT INTO paths VALUES (?, ?)",
                [(seq, p) for p in rest.splitlines() if p.strip()],
            )

    def commits(self, path: str) -> list[CommitInfo]:
        """Commits that touched ``path`` (a file, or a folder and everything below), newest first.

        Args:
            path: Store-relative, ``/``-separated.

        Returns:
            The commits with subject and trailers (as :meth:`GitRepo.log` gives them).
        """
        folder = path.rstrip("/")
        with self._lock, self._connect() as conn:
            self.refresh(conn)
            rows = conn.execute(
                "SELECT DISTINCT c.seq, c.sha, c.author, c.time, c.subject, c.trailers "
                "FROM paths p JOIN commits c ON c.seq = p.seq "
                "WHERE p.path = ? OR (p.path >= ? AND p.path < ?) ORDER BY c.seq DESC",
                (folder, folder + "/", folder + "0"),
            ).fetchall()
        return [_info(row) for row in rows]

    def trailers(self) -> list[tuple[int, str]]:
        """Every commit of the branch, oldest first, as ``(commit time, trailers text)``.

        The time is the author time in seconds since 1970 (UTC); the text is the commit's
        trailer lines (``Mdsessions-Kind: checkpoint`` …), as ``git log
        --format=%(trailers:only,unfold)`` gives them. What ``stats`` reads of history.
        """
        with self._lock, self._connect() as conn:
            self.refresh(conn)
            rows = conn.execute("SELECT time, trailers FROM commits ORDER BY seq").fetchall()
        return [(int(t), str(text)) for t, text in rows]


def _info(row: Sequence[object]) -> CommitInfo:
    _seq, sha, author, stamp, subject, trailers = row
    pairs = []
    for line in str(trailers).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            pairs.append((key.strip(), value.strip()))
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(str(stamp))))
    return CommitInfo(str(sha), str(author), when, str(subject), tuple(pairs))
