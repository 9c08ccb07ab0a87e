"""The commit format of every write (DESIGN.md "Commits"): subject, body, ``Mdsessions-*`` trailers.

A commit message is::

    {kind}({project}/{session}): {what happened}        the subject, read in git log --oneline

    {body: optional, e.g. the files a person's edit touched}

    Mdsessions-Kind: checkpoint
    Mdsessions-Project: project-123
    Mdsessions-Session: session-456
    Mdsessions-Phase: 1
    Mdsessions-Status: completed
    Mdsessions-Session-Status: awaiting_review

e.g. ``checkpoint(project-123/session-456): phase 1 Concept Expansion completed, awaiting
review``. The trailers make history queryable with plain git
(``git log --format=%(trailers:key=Mdsessions-Phase)``); every layer that commits (the store,
history's restore, fork and sync) builds its message here.

A commit's kind is spelled one way in its subject and its ``Mdsessions-Kind`` trailer
(:class:`CommitKind`); a document's kind as in :class:`~mdsessions.DocumentKind`
(``agent_output``, ``user_feedback``). Stores written before 0.2 spelled two kinds otherwise
(``agent-output``, ``feedback``): :func:`commit_kind` reads them as today's.
"""

from __future__ import annotations

import logging
import time
from enum import Enum
from typing import Any

from mdsessions.git.repo import Identity
from mdsessions.models.schema import DocumentKind

__all__ = [
    "LEGACY_KINDS",
    "RUNNER_IDENTITY",
    "CommitKind",
    "commit_kind",
    "commit_message",
    "log_commit",
    "trailers",
]

_log = logging.getLogger("mdsessions.store")

#: The author and committer of the runner's commits unless the store is given another.
RUNNER_IDENTITY = Identity("mdsessions", "mdsessions@localhost")


class CommitKind(str, Enum):
    """What a commit did: its ``Mdsessions-Kind`` trailer and the word its subject starts with."""

    INIT = "init"
    """``init: mdsessions store``: the store was created."""
    SESSION = "session"
    """A session was created (its manifest and phase table)."""
    CHECKPOINT = "checkpoint"
    """A phase checkpoint was saved."""
    AGENT_OUTPUT = DocumentKind.AGENT_OUTPUT.value
    """An agent's output was saved (with the prompt it got)."""
    USER_FEEDBACK = DocumentKind.USER_FEEDBACK.value
    """A reviewer's decision was recorded (saved, or a person's edit of the file)."""
    EDIT = "edit"
    """People's edits recorded that carry no reviewer's decision."""
    RESTORE = "restore"
    """A session (or phase) was restored to an earlier commit."""
    FORK = "fork"
    """A session was forked into a new one."""
    MERGE = "merge"
    """A pull merged another store's commits."""
    PAUSE = "pause"
    """A session was paused: the runner leaves it alone until it is resumed."""
    RESUME = "resume"
    """A paused session was resumed."""
    END = "end"
    """A session was ended (``cancelled`` when ended before its last phase)."""
    TAG = "tag"
    """A session's tags changed."""
    METADATA = "metadata"
    """A session's free-form ``metadata`` mapping changed."""
    ARCHIVE = "archive"
    """Sessions were moved to their project's ``archive/`` folder."""
    UNARCHIVE = "unarchive"
    """Archived sessions were moved back to their project's ``sessions/`` folder."""
    DELETE = "delete"
    """Sessions were deleted (they stay in history and can be brought back)."""
    IMPORT = "import"
    """A session was imported from an export of another store."""
    TRANSCRIPT = "transcript"
    """A transcript was recorded or pruned (messages and commands of an agent's conversation)."""

    def __str__(self) -> str:
        return str(self.value)


LEGACY_KINDS: dict[str, CommitKind] = {
    "agent-output": CommitKind.AGENT_OUTPUT,
    "feedback": CommitKind.USER_FEEDBACK,
}
"""Kinds as stores before 0.2 spelled them (trailer values), read as today's kinds."""


def commit_kind(value: str | None) -> str | None:
    """The canonical spelling of a commit kind read from history.

    Args:
        value: An ``Mdsessions-Kind`` trailer value (or a kind a caller names), or ``None``.

    Returns:
        The value with the old spellings (:data:`LEGACY_KINDS`) read as today's; any other
        value unchanged (another tool's kind stays visible); ``None`` for ``None``.

    Example:
        >>> commit_kind("agent-output"), commit_kind("checkpoint")
        ('agent_output', 'checkpoint')
    """
    if value is None:
        return None
    legacy = LEGACY_KINDS.get(value)
    return legacy.value if legacy is not None else value


def trailers(**values: Any) -> str:
    """The ``Mdsessions-*`` trailer lines of a commit message.

    Args:
        **values: Trailer values by key; ``session_status`` becomes
            ``Mdsessions-Session-Status``. ``None`` values are left out; others are written
            with ``str()`` (phases as integers, statuses as their values).

    Returns:
        One ``Mdsessions-Key: value`` line per value, in argument order.
    """
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        name = "Mdsessions-" + "-".join(part.capitalize() for part in key.split("_"))
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def commit_message(subject: str, body: str = "", **values: Any) -> str:
    """A commit message in the store's format: subject, optional body, trailers.

    Args:
        subject: One line, ``{kind}({project}/{session}): …`` for a session's commit.
        body: Free text between subject and trailers (``""``: none).
        **values: The trailers (:func:`trailers`): ``kind`` always (a :class:`CommitKind`),
            ``project``/``session`` for a session's commit, then ``phase``, ``agent``,
            ``status``, ``session_status`` and the like.

    Returns:
        The message, parts separated by blank lines.

    Example:
        >>> print(commit_message("session(p/s): created (idea_validation, mvp)",
        ...                      kind=CommitKind.SESSION, project="p", session="s",
        ...                      status="created"))
        session(p/s): created (idea_validation, mvp)
        <BLANKLINE>
        Mdsessions-Kind: session
        Mdsessions-Project: p
        Mdsessions-Session: s
        Mdsessions-Status: created
    """
    parts = [subject]
    if body:
        parts.append(body)
    parts.append(trailers(**values))
    return "\n\n".join(parts)


_LOGGED_TRAILERS = {
    "Mdsessions-Kind": "operation",
    "Mdsessions-Project": "project",
    "Mdsessions-Session": "session",
    "Mdsessions-Phase": "phase",
    "Mdsessions-Agent": "agent",
    "Mdsessions-Status": "status",
}
"""The trailers a commit's log record carries: ids, numbers and statuses, never content."""


def log_commit(message: str, commit: str | None, began: float, *, files: int) -> None:
    """Log a store write on the ``mdsessions.store`` logger (INFO), if that level is on.

    The record's extra fields: ``operation`` (the commit kind, e.g. ``checkpoint``),
    ``session`` (``project/session``), ``phase``, ``agent``, ``status`` (as the trailers
    say), ``commit`` (the new id, ``null`` when nothing changed), ``files`` (paths written)
    and ``duration_ms``. Only the whitelisted trailers of the message are read: never its
    subject or body.

    Args:
        message: The commit message (:func:`commit_message`).
        commit: The new commit id, or ``None`` when nothing changed.
        began: :func:`time.perf_counter` when the write began.
        files: How many paths the write gave.
    """
    if not _log.isEnabledFor(logging.INFO):
        return
    ms = round((time.perf_counter() - began) * 1000, 1)
    values: dict[str, str] = {}
    for line in message.rpartition("\n\n")[2].splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in _LOGGED_TRAILERS:
            values[_LOGGED_TRAILERS[key]] = value
    operation = values.pop("operation", "commit")
    project = values.pop("project", None)
    ref = f"{project}/{values.pop('session', '')}" if project else None
    extra: dict[str, Any] = {"operation": operation, "session": ref, **values}
    if values.get("phase", "").isdigit():
        extra["phase"] = int(values["phase"])
    extra.update(commit=commit, files=files, duration_ms=ms)
    where = f" {ref}" if ref else ""
    done = f"commit {commit[:12]}" if commit else "nothing to commit"
    paths = "1 file" if files == 1 else f"{files} files"
    _log.info("%s%s: %s (%s, %.1f ms)", operation, where, done, paths, ms, extra=extra)
