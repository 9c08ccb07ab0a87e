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
"""

from __future__ import annotations

from typing import Any

from mdsessions.git.repo import Identity

__all__ = ["RUNNER_IDENTITY", "commit_message", "trailers"]

#: The author and committer of the runner's commits unless the store is given another.
RUNNER_IDENTITY = Identity("mdsessions", "mdsessions@localhost")


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
        **values: The trailers (:func:`trailers`): ``kind`` always (``checkpoint``,
            ``agent-output``, ``feedback``, ``session``, ``edit``, ``restore``, ``fork``,
            ``merge``, ``init`` …), ``project``/``session`` for a session's commit, then
            ``phase``, ``agent``, ``status``, ``session_status`` and the like.

    Returns:
        The message, parts separated by blank lines.

    Example:
        >>> print(commit_message("session(p/s): created (idea_validation, mvp)",
        ...                      kind="session", project="p", session="s", status="created"))
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
