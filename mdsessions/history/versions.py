"""Versions of a session and the bytes of a file at a commit.

A version is a commit found by a path-limited ``git log``, its ``Mdsessions-*`` trailers parsed.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from collections.abc import Sequence

from mdsessions.documents.frontmatter import Document, loads
from mdsessions.errors import InvalidArgumentError
from mdsessions.git.repo import CommitInfo
from mdsessions.history.common import _KIND_RE, _decode, _utc, session_path
from mdsessions.models.results import Result
from mdsessions.store.commits import commit_kind
from mdsessions.store.store import (
    Session,
)

__all__ = [
    "Version",
    "VersionPage",
    "load_version",
    "read_version",
    "versions",
]


class Version(Result):
    """One commit in the history of a session or a document, trailers parsed.

    A commit that carries no ``Mdsessions-*`` trailers (a person's own ``git commit``) has
    ``null`` for each of them.
    """

    commit: str
    """Full commit id (40 hex digits)."""
    author: str
    """``Name <email>`` of who acted."""
    time: str
    """Author time, UTC ISO-8601 with ``Z``."""
    subject: str
    """The commit's subject line."""
    kind: str | None = None
    """``Mdsessions-Kind``: ``init``, ``session``, ``checkpoint``, ``agent_output``,
    ``user_feedback``, ``edit``, ``restore``, ``fork`` or ``merge`` (old spellings read as
    these), or another tool's kind."""
    project: str | None = None
    """``Mdsessions-Project``: the project id."""
    session: str | None = None
    """``Mdsessions-Session``: the session id."""
    phase: int | None = None
    """``Mdsessions-Phase``: the phase number."""
    agent: str | None = None
    """``Mdsessions-Agent``: the agent id of an agent output."""
    status: str | None = None
    """``Mdsessions-Status``: the phase's, the agent's or the reviewer's decision."""
    session_status: str | None = None
    """``Mdsessions-Session-Status``: the session's status after the commit."""

    @classmethod
    def from_commit(cls, info: CommitInfo) -> Version:
        """Build a version from a parsed ``git log`` entry (kinds in today's spelling).

        Args:
            info: The commit as read from ``git log`` (:class:`mdsessions.Commit`).

        Returns:
            The version.
        """
        phase = info.trailer("Mdsessions-Phase")
        return cls(
            commit=info.sha,
            author=info.author,
            time=info.time,
            subject=info.subject,
            kind=commit_kind(info.trailer("Mdsessions-Kind")),
            project=info.trailer("Mdsessions-Project"),
            session=info.trailer("Mdsessions-Session"),
            phase=int(phase) if phase is not None and phase.isdigit() else None,
            agent=info.trailer("Mdsessions-Agent"),
            status=info.trailer("Mdsessions-Status"),
            session_status=info.trailer("Mdsessions-Session-Status"),
        )


class VersionPage(Result):
    """One page of a session's versions, newest first."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    path: str
    """The store-relative folder or file the history is limited to."""
    offset: int
    """How many matching versions come before this page."""
    limit: int | None
    """The page size asked for (``null``: everything)."""
    next_offset: int | None
    """The ``offset`` of the next page, or ``null`` on the last page (the cursor)."""
    versions: tuple[Version, ...]
    """The versions on this page."""


def versions(
    session: Session,
    path: str | None = None,
    *,
    phase: int | None = None,
    kind: str | Sequence[str] | None = None,
    author: str | None = None,
    since: _dt.datetime | str | None = None,
    until: _dt.datetime | str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> VersionPage:
    """The versions of a session (or of one of its folders or documents), newest first.

    The path-limited history comes from the store's log index (``.mdsessions/cache/``, kept in
    step with HEAD incrementally; the same commits as ``git log -- <path>`` on a linear
    history), with the trailers parsed. Filters apply before the page is cut, so pages stay
    exact under any filter. A store the index cannot be written in falls back to ``git log``.

    Args:
        session: The session.
        path: Limit to a folder or document: session-relative (``phase_1_concept``) or
            store-relative; default the whole session folder.
        phase: Only commits whose ``Mdsessions-Phase`` is this phase.
        kind: Only commits of this ``Mdsessions-Kind`` (or any of several; an old spelling
            such as ``agent-output`` means today's ``agent_output``).
        author: Only commits whose author (``Name <email>``) contains this text
            (case-insensitive).
        since: Only commits at or after this time (UTC; a datetime or ISO-8601 text).
        until: Only commits at or before this time (UTC).
        limit: Page size (``None``: all matching versions).
        offset: Matching versions to skip (the previous page's ``next_offset``).

    Returns:
        The page; ``next_offset`` is the cursor of the next page.

    Raises:
        InvalidArgumentError: A limit under 1, a negative offset, a malformed kind, a bad
            time (a ``ValueError``).
        StoreError: A path outside the session.
    """
    if offset < 0 or (limit is not None and limit < 1):
        raise InvalidArgumentError("limit must be 1 or more (or None for all) and offset 0 or more")
    rel = session_path(session, path)
    kinds: set[str] | None = None
    if kind is not None:
        given = {kind} if isinstance(kind, str) else set(kind)
        for value in given:
            if not _KIND_RE.fullmatch(value):
                raise InvalidArgumentError(
                    f"invalid kind {value!r}: expected e.g. checkpoint, restore"
                )
        kinds = {commit_kind(value) or value for value in given}
    since_at = _utc(since, "since") if since is not None else None
    until_at = _utc(until, "until") if until is not None else None
    git = session.store.git
    try:
        # The log index (a cache under .mdsessions/) answers in milliseconds.
        history = session.store.log_index.commits(rel)
    except (OSError, sqlite3.Error):
        # A store we cannot write to (read-only): ask git directly.
        history = git.log([rel])
    needle = author.lower() if author else None

    def wanted(info: CommitInfo) -> bool:
        if needle is not None and needle not in info.author.lower():
            return False
        if since_at is not None or until_at is not None:
            when = _utc(info.time, "time")
            if (since_at is not None and when < since_at) or (
                until_at is not None and when > until_at
            ):
                return False
        if phase is not None or kinds is not None:
            version = Version.from_commit(info)
            if phase is not None and version.phase != phase:
                return False
            if kinds is not None and version.kind not in kinds:
                return False
        return True

    matching = [Version.from_commit(c) for c in history if wanted(c)]
    page = matching[offset:] if limit is None else matching[offset : offset + limit]
    more = limit is not None and len(matching) > offset + limit
    return VersionPage(
        project=session.project_id,
        session=session.session_id,
        path=rel,
        versions=tuple(page),
        offset=offset,
        limit=limit,
        next_offset=offset + len(page) if more else None,
    )


def read_version(session: Session, path: str, commit: str = "HEAD") -> bytes:
    """A session file's exact bytes at a commit (the blob at ``commit:path``).

    Args:
        session: The session.
        path: Session-relative (``phase_1_concept/concept_expansion.md``) or store-relative.
        commit: Any revision (full id, prefix, ``HEAD~3``).

    Returns:
        The file's content at that commit.

    Raises:
        StoreError: If the commit is unknown.
        FileNotFoundError: If the file did not exist at that commit.
    """
    rel = session_path(session, path)
    git = session.store.git
    sha = git.resolve_quick(commit)
    data = git.read_file(sha, rel)
    if data is None:
        raise FileNotFoundError(f"{rel} does not exist at {sha[:12]}")
    return data


def load_version(session: Session, path: str, commit: str = "HEAD") -> Document:
    """A session document parsed as it was at a commit.

    Raises:
        StoreError: If the commit is unknown.
        FileNotFoundError: If the file did not exist at that commit.
        DocumentError: If it does not parse.
    """
    rel = session_path(session, path)
    return loads(_decode(read_version(session, rel, commit), rel), path=rel)
