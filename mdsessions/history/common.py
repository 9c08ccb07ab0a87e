"""Helpers every history verb shares: time parsing, blob decoding, manifests at a commit."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable

from mdsessions.documents.frontmatter import load_as
from mdsessions.errors import (
    DocumentError,
    InvalidArgumentError,
    StoreError,
)
from mdsessions.git.repo import GitRepo
from mdsessions.models.schema import (
    SessionManifest,
)
from mdsessions.store.checks import decode
from mdsessions.store.store import (
    Session,
    Store,
)

__all__ = [
    "ProgressCallback",
    "session_path",
]


ProgressCallback = Callable[[str, int, "int | None"], None]
"""``callback(stage, done, total)`` for long git work: ``("Writing objects", 450, 1000)``;
``total`` is ``None`` while git is still counting."""


_TREE_MODES = (b"40000", b"040000")


_KIND_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")


_REMOTE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


_PHASE_DIR_RE = re.compile(r"phase_(\d+)_")


def _short(sha: str) -> str:
    return sha[:8]


def _utc(value: _dt.datetime | str, what: str) -> _dt.datetime:
    """A datetime or ISO-8601 string (a date alone is midnight) as an aware UTC datetime.

    Raises:
        InvalidArgumentError: If the string is not ISO-8601 (a ``ValueError``).
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgumentError(
                f"invalid {what} {value!r}: expected an ISO-8601 UTC time such as "
                "2024-11-24 or 2024-11-24T10:02:00Z"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def _decode(data: bytes, rel: str) -> str:
    return decode(data, rel)  # the store's one copy: names the file and the line


def _blob(git: GitRepo, binsha: bytes) -> bytes:
    _kind, data = git.read_object(binsha)
    return data


def _manifest_at(store: Store, commit: str | None, rel: str) -> SessionManifest | None:
    """The manifest at ``rel`` in ``commit``, or ``None`` when absent (or unreadable)."""
    if commit is None:
        return None
    data = store.git.read_file(commit, rel)
    if data is None:
        return None
    try:
        return load_as(SessionManifest, _decode(data, rel), path=rel)
    except DocumentError:
        return None


def _session_of(store: Store, rel: str) -> tuple[str, str] | None:
    """``(project_id, session_id)`` when ``rel`` lies inside a session folder, else ``None``."""
    parts = rel.split("/")
    if store.projects_dir != ".":
        base = store.projects_dir.split("/")
        if parts[: len(base)] != base:
            return None
        parts = parts[len(base) :]
    if len(parts) < 4 or parts[1] != "sessions":
        return None
    return parts[0], parts[2]


def session_path(session: Session, path: str | None = None) -> str:
    """A path inside a session as a store-relative ``/`` path.

    Args:
        session: The session.
        path: ``None`` (the session folder), a path relative to the session folder
            (``phase_1_concept/checkpoint.md``) or a store-relative path inside it.

    Returns:
        The store-relative path.

    Raises:
        StoreError: If the path leaves the session folder.
    """
    if path is None or path.strip("/") in ("", "."):
        return session.rel
    text = path.replace("\\", "/").strip("/")
    rel = (
        text
        if text == session.rel or text.startswith(session.rel + "/")
        else f"{session.rel}/{text}"
    )
    if any(part in ("", ".", "..") for part in rel.split("/")):
        raise StoreError(f"{path!r} is not a path inside session {session.ref}")
    return rel
