"""A rebuildable index of session manifests, for listing thousands of sessions quickly.

Parsing a manifest costs about a millisecond (YAML + validation); a store of 10,000 sessions
would take seconds to list. This index keeps, per manifest file, the few fields a listing or
the inbox needs, plus the file's identity (inode, size, mtime, ctime). Listing stats every
manifest and re-parses only those whose identity changed, or that changed too recently for
their timestamp to be trusted (git's "racily clean" rule). It is a cache under
``.mdsessions/cache/`` (gitignored): the files stay the truth; deleting it is always safe.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DocumentError
from .models import ReviewState, SessionManifest, SessionStatus

if TYPE_CHECKING:
    from .store import Store

__all__ = ["SessionIndex", "SessionSummary", "summarize"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    rel TEXT PRIMARY KEY,
    ident TEXT NOT NULL,
    checked_ns INTEGER NOT NULL,
    summary TEXT NOT NULL,
    frontmatter TEXT NOT NULL
);
"""
_RACY_NS = 2_000_000_000  # a file changed this close to when it was indexed is re-read


@dataclass(frozen=True)
class SessionSummary:
    """What a listing shows of one session (from its manifest).

    Attributes:
        project_id: Project id.
        session_id: Session id.
        workflow: Workflow name.
        mode: Execution mode.
        status: Session status.
        current_phase: The phase the session is at, or ``None``.
        created: When it was created (UTC).
        updated: When its manifest last changed (UTC).
        waiting: Phases awaiting review: ``(number, name, folder, completed UTC or None)``.
        path: Store-relative path of the manifest.
    """

    project_id: str
    session_id: str
    workflow: str
    mode: str
    status: SessionStatus
    current_phase: int | None
    created: _dt.datetime
    updated: _dt.datetime
    waiting: tuple[tuple[int, str, str, _dt.datetime | None], ...]
    path: str
    _frontmatter: str = ""

    @property
    def ref(self) -> str:
        """``project_id/session_id``."""
        return f"{self.project_id}/{self.session_id}"

    def frontmatter(self) -> dict[str, Any]:
        """The manifest's whole frontmatter (JSON-ready), as :meth:`SessionManifest.frontmatter`."""
        data: dict[str, Any] = json.loads(self._frontmatter)
        return data


def _time(text: str | None) -> _dt.datetime | None:
    if not text:
        return None
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))  # C-fast, unlike strptime


def _summary_row(manifest: SessionManifest) -> tuple[str, str]:
    data = manifest.frontmatter()
    waiting = [
        [p.number, p.name, p.directory, data["phases"][i]["completed"]]
        for i, p in enumerate(manifest.phases)
        if p.review is ReviewState.PENDING
    ]
    summary = [
        manifest.project_id,
        manifest.session_id,
        manifest.workflow,
        manifest.mode,
        manifest.status.value,
        manifest.current_phase,
        data["created"],
        data["updated"],
        waiting,
    ]
    return json.dumps(summary, ensure_ascii=False), json.dumps(data, ensure_ascii=False)


def _from_row(rel: str, summary: str, frontmatter: str) -> SessionSummary:
    project, session, workflow, mode, status, current, created, updated, waiting = json.loads(
        summary
    )
    return SessionSummary(
        project,
        session,
        workflow,
        mode,
        SessionStatus(status),
        current,
        _time(created) or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc),
        _time(updated) or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc),
        tuple((int(n), str(name), str(folder), _time(done)) for n, name, folder, done in waiting),
        rel,
        frontmatter,
    )


def summarize(manifest: SessionManifest, rel: str) -> SessionSummary:
    """The summary of a parsed manifest (``rel``: its store-relative path)."""
    return _from_row(rel, *_summary_row(manifest))


class SessionIndex:
    """Manifest summaries of a store, re-read only where a file changed.

    Args:
        store: The store.
        path: The SQLite file (created with its folder).
    """

    def __init__(self, store: Store, path: Path) -> None:
        self.store = store
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

    def _manifests(self, project_id: str | None) -> Iterator[tuple[str, str]]:
        """``(store-relative path, identity)`` of every manifest file (one stat each)."""
        from .store import MANIFEST

        store = self.store
        base = store.root if store.projects_dir == "." else store.root / store.projects_dir
        prefix = "" if store.projects_dir == "." else store.projects_dir + "/"
        try:
            projects = [e for e in os.scandir(base) if e.is_dir() and not e.name.startswith(".")]
        except FileNotFoundError:
            return
        for project in projects:
            if project_id is not None and project.name != project_id:
                continue
            try:
                # os.path, not pathlib, on this loop: one stat per session of a large store.
                sessions = list(os.scandir(os.path.join(project.path, "sessions")))  # noqa: PTH118
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in sessions:
                try:
                    st = os.stat(os.path.join(entry.path, MANIFEST))  # noqa: PTH116, PTH118
                except (FileNotFoundError, NotADirectoryError):
                    continue
                ident = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
                rel = f"{prefix}{project.name}/sessions/{entry.name}/{MANIFEST}"
                yield rel, ident

    def summaries(self, project_id: str | None = None) -> list[SessionSummary]:
        """Every session's summary (a manifest that fails to parse is skipped).

        Args:
            project_id: Only this project's sessions.

        Returns:
            Summaries ordered by project, creation time, session id.
        """
        found = dict(self._manifests(project_id))
        now = time.time_ns()
        out: list[SessionSummary] = []
        with self._lock, self._connect() as conn:
            rows = {
                rel: (ident, checked, summary, fm)
                for rel, ident, checked, summary, fm in conn.execute(
                    "SELECT rel, ident, checked_ns, summary, frontmatter FROM manifests"
                )
            }
            fresh: list[tuple[str, str, int, str, str]] = []
            for rel, ident in found.items():
                row = rows.get(rel)
                mtime_ns = int(ident.split(":")[2])
                if row is not None and row[0] == ident and row[1] - mtime_ns > _RACY_NS:
                    out.append(_from_row(rel, row[2], row[3]))
                    continue
                try:
                    manifest = self.store.read_doc(rel, SessionManifest)
                except (DocumentError, OSError):
                    continue
                summary, fm = _summary_row(manifest)
                fresh.append((rel, ident, now, summary, fm))
                out.append(_from_row(rel, summary, fm))
            gone = [
                rel
                for rel in rows
                if rel not in found and (project_id is None or rel.split("/")[-4] == project_id)
            ]
            if fresh or gone:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?, ?)", fresh)
                conn.executemany("DELETE FROM manifests WHERE rel = ?", [(r,) for r in gone])
                conn.execute("COMMIT")
        out.sort(key=lambda s: (s.project_id, s.created, s.session_id))
        return out
