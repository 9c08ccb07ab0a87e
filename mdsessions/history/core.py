"""History, time travel, backups and remotes, each one a git operation (DESIGN.md "History = git").

======================  ===========================================================
capability              git operation
======================  ===========================================================
:func:`versions`        path-limited ``git log`` with the ``Mdsessions-*`` trailers parsed
:func:`read_version`    the blob at ``commit:path``
:func:`diff`            tree diff limited to the session (+ ``git diff`` for the patch)
:func:`restore`         the old files written back as a **new** commit (never a rewrite)
:func:`fork`            the session's files at a commit, ids rewritten, in a new folder
:func:`create_backup`   ``git bundle create --all`` + ``git bundle verify``
:func:`restore_backup`  a new repository fetched from the bundle, checked out, verified
:func:`push`/:func:`pull`  ``git push`` / ``git fetch`` + a per-session merge; versions a
                        sync sets aside are named ``refs/mdsessions/set-aside/…``
:func:`clone`           ``git clone`` + the store's branch checked out, whatever ``HEAD`` says
:func:`verify`          ``git fsck --strict`` + schema validation + trailers vs paths
:func:`maintenance`     ``git pack-refs``, ``git repack``, ``git commit-graph write``
======================  ===========================================================

Every mutating call is one commit or nothing, made under the store's writer lock, with
``Mdsessions-Kind`` ``restore``, ``fork`` or ``merge``. Times are UTC; sizes are bytes;
durations are seconds.

Example:
    >>> from mdsessions import Store, history                          # doctest: +SKIP
    >>> store = Store.open("my-store")                                 # doctest: +SKIP
    >>> s = store.find_session("project-123/session-456")              # doctest: +SKIP
    >>> page = history.versions(s, kind="checkpoint", limit=10)        # doctest: +SKIP
    >>> history.restore(s, page.versions[-1].commit, phase=3)          # doctest: +SKIP
    >>> history.fork(s, "session-457", at=page.versions[2].commit)     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdsessions.documents.frontmatter import Document, load_as, loads
from mdsessions.errors import (
    ConflictError,
    DocumentError,
    InvalidIdentifierError,
    MdsessionsError,
    PhaseNotFoundError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
    StoreNotFoundError,
    UnrecordedEditError,
)
from mdsessions.git.repo import CommitInfo, GitRepo, init_repository, run_git
from mdsessions.history.setaside import (
    SET_ASIDE_PREFIX,
    SET_ASIDE_REFSPEC,
    STORE_FILES,
    Lineage,
    SessionChange,
    SetAside,
    StoreFileChange,
    parse_set_aside_ref,
    set_aside_ref,
)
from mdsessions.models.schema import (
    Checkpoint,
    ForkOrigin,
    PhaseStatus,
    ReviewState,
    SessionManifest,
    SessionStatus,
    Totals,
    utc_now,
)
from mdsessions.store.config import ConfigEditError, ConfigMerge, key_name, merge_config
from mdsessions.store.store import (
    CONFIG_FILE,
    DEFAULT_BRANCH,
    MANIFEST,
    WORKFLOWS_DIR,
    Identity,
    Problem,
    Session,
    Store,
    _message,
    check_id,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Backup",
    "BackupRestore",
    "FileChange",
    "ForkResult",
    "MaintenanceReport",
    "PhaseChange",
    "ProgressCallback",
    "PullResult",
    "PushRejectedError",
    "PushResult",
    "RestoreResult",
    "SessionChange",
    "SessionConflict",
    "SessionDiff",
    "SetAside",
    "StoreFileChange",
    "SyncConflictError",
    "VerifyReport",
    "Version",
    "VersionPage",
    "add_remote",
    "backup_dir",
    "clone",
    "create_backup",
    "diff",
    "fork",
    "list_backups",
    "list_set_aside",
    "load_version",
    "maintenance",
    "prune_backups",
    "pull",
    "push",
    "read_version",
    "remotes",
    "remove_remote",
    "resolve",
    "restore",
    "restore_backup",
    "session_path",
    "sync",
    "verify",
    "versions",
]

ProgressCallback = Callable[[str, int, "int | None"], None]
"""``callback(stage, done, total)`` for long git work: ``("Writing objects", 450, 1000)``;
``total`` is ``None`` while git is still counting."""

_TREE_MODES = (b"40000", b"040000")
_KIND_RE = re.compile(r"[a-z][a-z0-9-]{0,63}")
_REMOTE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PHASE_DIR_RE = re.compile(r"phase_(\d+)_")
_BACKUP_RE = re.compile(r"-(\d{8}T\d{6}Z)-[0-9a-f]{12}(?:-\d+)?\.bundle$")
_BACKUP_SUFFIX = ".bundle"


def _short(sha: str) -> str:
    return sha[:8]


def _utc(value: _dt.datetime | str, what: str) -> _dt.datetime:
    """A datetime or ISO-8601 string (a date alone is midnight) as an aware UTC datetime.

    Raises:
        ValueError: If the string is not ISO-8601.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"invalid {what} {value!r}: expected an ISO-8601 UTC time such as "
                "2024-11-24 or 2024-11-24T10:02:00Z"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def _decode(data: bytes, rel: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not valid UTF-8 (byte {exc.start})", path=rel) from None


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


# --------------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One commit in the history of a session or a document, trailers parsed.

    Attributes:
        commit: Full commit id.
        author: ``Name <email>`` of who acted.
        time: Author time, UTC ISO-8601 with ``Z``.
        subject: The commit's subject line.
        kind: ``Mdsessions-Kind`` (``session``, ``agent-output``, ``checkpoint``, ``feedback``,
            ``edit``, ``restore``, ``fork``, ``merge``, …), or ``None``.
        project: ``Mdsessions-Project``.
        session: ``Mdsessions-Session``.
        phase: ``Mdsessions-Phase`` as a number.
        agent: ``Mdsessions-Agent``.
        status: ``Mdsessions-Status`` (the phase's, the agent's or the reviewer's decision).
        session_status: ``Mdsessions-Session-Status`` after the commit.
    """

    commit: str
    author: str
    time: str
    subject: str
    kind: str | None = None
    project: str | None = None
    session: str | None = None
    phase: int | None = None
    agent: str | None = None
    status: str | None = None
    session_status: str | None = None

    @classmethod
    def from_commit(cls, info: CommitInfo) -> Version:
        """Build a version from a parsed ``git log`` entry."""
        phase = info.trailer("Mdsessions-Phase")
        return cls(
            commit=info.sha,
            author=info.author,
            time=info.time,
            subject=info.subject,
            kind=info.trailer("Mdsessions-Kind"),
            project=info.trailer("Mdsessions-Project"),
            session=info.trailer("Mdsessions-Session"),
            phase=int(phase) if phase is not None and phase.isdigit() else None,
            agent=info.trailer("Mdsessions-Agent"),
            status=info.trailer("Mdsessions-Status"),
            session_status=info.trailer("Mdsessions-Session-Status"),
        )

    def to_json(self) -> dict[str, Any]:
        """The version as a JSON-ready mapping."""
        return {
            "commit": self.commit,
            "author": self.author,
            "time": self.time,
            "subject": self.subject,
            "kind": self.kind,
            "project": self.project,
            "session": self.session,
            "phase": self.phase,
            "agent": self.agent,
            "status": self.status,
            "session_status": self.session_status,
        }


@dataclass(frozen=True)
class VersionPage:
    """One page of versions, newest first.

    Attributes:
        path: The store-relative folder or file the history is limited to.
        versions: The versions on this page.
        offset: How many matching versions come before this page.
        limit: The page size asked for (``None``: everything).
        next_offset: The ``offset`` of the next page, or ``None`` on the last page (the cursor).
    """

    path: str
    versions: tuple[Version, ...]
    offset: int
    limit: int | None
    next_offset: int | None

    def to_json(self) -> dict[str, Any]:
        """The page as a JSON-ready mapping."""
        return {
            "path": self.path,
            "offset": self.offset,
            "limit": self.limit,
            "next_offset": self.next_offset,
            "versions": [v.to_json() for v in self.versions],
        }


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
        kind: Only commits of this ``Mdsessions-Kind`` (or any of several).
        author: Only commits whose author (``Name <email>``) contains this text
            (case-insensitive).
        since: Only commits at or after this time (UTC; a datetime or ISO-8601 text).
        until: Only commits at or before this time (UTC).
        limit: Page size (``None``: all matching versions).
        offset: Matching versions to skip (the previous page's ``next_offset``).

    Returns:
        The page; ``next_offset`` is the cursor of the next page.

    Raises:
        ValueError: A limit under 1, a negative offset, a malformed kind, a bad time.
        StoreError: A path outside the session.
    """
    if offset < 0 or (limit is not None and limit < 1):
        raise ValueError("limit must be 1 or more (or None for all) and offset 0 or more")
    rel = session_path(session, path)
    kinds: set[str] | None = None
    if kind is not None:
        kinds = {kind} if isinstance(kind, str) else set(kind)
        for value in kinds:
            if not _KIND_RE.fullmatch(value):
                raise ValueError(f"invalid kind {value!r}: expected e.g. checkpoint, restore")
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


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------


def _document_kind(name: str) -> str:
    if name == MANIFEST:
        return "manifest"
    if name == "checkpoint.md":
        return "checkpoint"
    if name == "user_feedback.md":
        return "feedback"
    if name.endswith(".md"):
        return "agent_output"
    return "other"


@dataclass(frozen=True)
class FileChange:
    """One file of a session that differs between two commits.

    Attributes:
        path: Store-relative path.
        change: ``added``, ``modified`` or ``deleted``.
        document: ``manifest``, ``checkpoint``, ``feedback``, ``agent_output`` or ``other``.
        phase: The phase number of its folder, or ``None`` (the manifest).
        agent: The agent id for an agent output.
        insertions: Lines added.
        deletions: Lines removed.
    """

    path: str
    change: str
    document: str
    phase: int | None = None
    agent: str | None = None
    insertions: int = 0
    deletions: int = 0

    def to_json(self) -> dict[str, Any]:
        """The change as a JSON-ready mapping."""
        return {
            "path": self.path,
            "change": self.change,
            "document": self.document,
            "phase": self.phase,
            "agent": self.agent,
            "insertions": self.insertions,
            "deletions": self.deletions,
        }


@dataclass(frozen=True)
class PhaseChange:
    """How one phase differs between two commits.

    Attributes:
        phase: The phase number.
        name: Its name (from the newer manifest that has it).
        status_before: Its status in the manifest at the older commit (``None``: absent).
        status_after: Its status at the newer commit.
        review_before: Its review state at the older commit.
        review_after: Its review state at the newer commit.
        files: The phase folder's changed files.
    """

    phase: int
    name: str | None
    status_before: str | None
    status_after: str | None
    review_before: str | None
    review_after: str | None
    files: tuple[FileChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The phase change as a JSON-ready mapping."""
        return {
            "phase": self.phase,
            "name": self.name,
            "status": {"before": self.status_before, "after": self.status_after},
            "review": {"before": self.review_before, "after": self.review_after},
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class SessionDiff:
    """The difference of a session between two checkpoints (commits).

    Attributes:
        session: ``project/session``.
        old: Full id of the older commit.
        new: Full id of the newer commit.
        files: Every changed file, by path.
        status_before: Session status at ``old`` (``None``: the session did not exist).
        status_after: Session status at ``new``.
        current_phase_before: The manifest's current phase at ``old``.
        current_phase_after: The manifest's current phase at ``new``.
        phases: Phases whose files, status or review changed, ascending.
        patch: The unified diff (``git diff old new -- <session folder>``); empty when not
            asked for.
    """

    session: str
    old: str
    new: str
    files: tuple[FileChange, ...]
    status_before: str | None
    status_after: str | None
    current_phase_before: int | None
    current_phase_after: int | None
    phases: tuple[PhaseChange, ...]
    patch: str = ""

    @property
    def agents(self) -> tuple[FileChange, ...]:
        """The changed agent outputs."""
        return tuple(f for f in self.files if f.document == "agent_output")

    @property
    def feedback(self) -> tuple[FileChange, ...]:
        """The changed user feedback files."""
        return tuple(f for f in self.files if f.document == "feedback")

    def to_json(self) -> dict[str, Any]:
        """The diff as a JSON-ready mapping."""
        return {
            "session": self.session,
            "old": self.old,
            "new": self.new,
            "status": {"before": self.status_before, "after": self.status_after},
            "current_phase": {
                "before": self.current_phase_before,
                "after": self.current_phase_after,
            },
            "files": [f.to_json() for f in self.files],
            "phases": [p.to_json() for p in self.phases],
            "agents": [f.to_json() for f in self.agents],
            "feedback": [f.to_json() for f in self.feedback],
            "insertions": sum(f.insertions for f in self.files),
            "deletions": sum(f.deletions for f in self.files),
            "patch": self.patch,
        }


def diff(session: Session, old: str, new: str = "HEAD", *, patch: bool = True) -> SessionDiff:
    """Compare a session at two checkpoints: the unified diff and a structured summary.

    Args:
        session: The session.
        old: The older revision (any form ``git rev-parse`` takes).
        new: The newer revision (default ``HEAD``).
        patch: Also produce the unified diff text (``False`` for a summary only).

    Returns:
        Changed files (added/modified/deleted, with line counts), the session's status and
        current phase at both ends, each changed phase with its status and review transition,
        and the patch.

    Raises:
        StoreError: If a revision names no commit.
    """
    store, git = session.store, session.store.git
    a, b = git.resolve_quick(old), git.resolve_quick(new)
    changed = git.diff_trees(a, b, session.rel)
    counts: dict[str, tuple[int, int]] = {}
    if changed:
        proc = git.git(
            "diff", "--numstat", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
            a, b, "--", session.rel,
        )  # fmt: skip
        for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
            added, _, rest = record.partition("\t")
            removed, _, rel = rest.partition("\t")
            if rel:
                counts[rel] = (
                    int(added) if added.isdigit() else 0,
                    int(removed) if removed.isdigit() else 0,
                )
    files = []
    for rel in sorted(changed):
        before, after = changed[rel]
        sub = rel[len(session.rel) + 1 :]
        folder, _, name = sub.rpartition("/")
        match = _PHASE_DIR_RE.match(folder)
        document = _document_kind(name) if folder == "" or match else "other"
        if folder == "" and name != MANIFEST:
            document = "other"
        if match and "/" in folder:  # phase_N_slug/prompts/{agent}.md: what an agent was given
            document = "prompt" if folder.endswith("/prompts") and name.endswith(".md") else "other"
        plus, minus = counts.get(rel, (0, 0))
        files.append(
            FileChange(
                path=rel,
                change="added" if before is None else "deleted" if after is None else "modified",
                document=document,
                phase=int(match.group(1)) if match else None,
                agent=name[:-3] if document == "agent_output" else None,
                insertions=plus,
                deletions=minus,
            )
        )
    m_old = _manifest_at(store, a, session.manifest_rel)
    m_new = _manifest_at(store, b, session.manifest_rel)
    rows_old = {p.number: p for p in (m_old.phases if m_old else [])}
    rows_new = {p.number: p for p in (m_new.phases if m_new else [])}
    phases = []
    for number in sorted(rows_old.keys() | rows_new.keys() | {f.phase for f in files if f.phase}):
        r_old, r_new = rows_old.get(number), rows_new.get(number)
        phase_files = tuple(f for f in files if f.phase == number)
        st = (r_old.status.value if r_old else None, r_new.status.value if r_new else None)
        rv = (r_old.review.value if r_old else None, r_new.review.value if r_new else None)
        if not phase_files and st[0] == st[1] and rv[0] == rv[1]:
            continue
        row = r_new or r_old
        phases.append(
            PhaseChange(number, row.name if row else None, st[0], st[1], rv[0], rv[1], phase_files)
        )
    text = ""
    if patch and changed:
        text = git.git(
            "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
            "--src-prefix=a/", "--dst-prefix=b/", a, b, "--", session.rel,
        ).stdout.decode("utf-8", "replace")  # fmt: skip
    return SessionDiff(
        session=session.ref,
        old=a,
        new=b,
        files=tuple(files),
        status_before=m_old.status.value if m_old else None,
        status_after=m_new.status.value if m_new else None,
        current_phase_before=m_old.current_phase if m_old else None,
        current_phase_after=m_new.current_phase if m_new else None,
        phases=tuple(phases),
        patch=text,
    )


# --------------------------------------------------------------------------------------------
# restore
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore` did.

    Attributes:
        session: ``project/session``.
        target: Full id of the commit restored to.
        phase: The phase restored, or ``None`` for the whole session.
        commit: The new commit, or ``None`` when the session already was in that state.
        written: Store-relative files written back.
        deleted: Store-relative files deleted (they did not exist at the target).
        reset_phases: Phases whose files and manifest row were set to the target's.
        overwritten: Unrecorded edits that ``force`` discarded.
        status: The session status afterwards.
    """

    session: str
    target: str
    phase: int | None
    commit: str | None
    written: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    reset_phases: tuple[int, ...] = ()
    overwritten: tuple[str, ...] = ()
    status: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return {
            "session": self.session,
            "target": self.target,
            "phase": self.phase,
            "commit": self.commit,
            "written": list(self.written),
            "deleted": list(self.deleted),
            "reset_phases": list(self.reset_phases),
            "overwritten": list(self.overwritten),
            "status": self.status,
        }


def _derive_status(manifest: SessionManifest) -> None:
    """Set the session status, current phase and totals from the phase table (in place).

    The same rules as the store's writes and the runner: a rejected phase ends the session,
    a pending review waits, the first phase to (re)run is current, all done is completed.
    """
    rows = manifest.phases
    manifest.totals = Totals(
        tokens=sum(p.tokens for p in rows),
        input_tokens=sum(p.input_tokens for p in rows),
        output_tokens=sum(p.output_tokens for p in rows),
        cost=sum(p.cost for p in rows),
        duration=sum(p.duration or 0.0 for p in rows),
    )
    done = (PhaseStatus.COMPLETED, PhaseStatus.SKIPPED)
    rejected = next((p for p in rows if p.review is ReviewState.REJECTED), None)
    waiting = next((p for p in rows if p.review is ReviewState.PENDING), None)
    todo = next((p for p in rows if p.review is ReviewState.REVISE or p.status not in done), None)
    if rejected is not None:
        manifest.status, manifest.current_phase = SessionStatus.REJECTED, None
    elif waiting is not None:
        manifest.status, manifest.current_phase = SessionStatus.AWAITING_REVIEW, waiting.number
    elif todo is None:
        manifest.status, manifest.current_phase = SessionStatus.COMPLETED, None
    else:
        manifest.current_phase = todo.number
        untouched = all(
            p.status is PhaseStatus.PENDING
            and p.review in (ReviewState.REQUIRED, ReviewState.NOT_REQUIRED)
            for p in rows
        )
        if todo.status is PhaseStatus.FAILED:
            manifest.status = SessionStatus.FAILED
        elif untouched:
            manifest.status = SessionStatus.CREATED
        else:
            manifest.status = SessionStatus.IN_PROGRESS


def restore(
    session: Session,
    commit: str,
    *,
    phase: int | None = None,
    force: bool = False,
    author: Identity | str | None = None,
) -> RestoreResult:
    """Restore a session, or one phase, to a checkpoint as a **new** commit.

    The files as they were at ``commit`` are written back (files that did not exist then are
    deleted) and recorded in one commit, ``Mdsessions-Kind: restore``, subject
    ``restore(p/s): phase 3 to 1a2b3c4d``; history is never rewritten.

    * Whole session: every file of the session folder, the manifest included, byte for byte
      as at ``commit`` (``git diff commit HEAD -- <session>`` is then empty).
    * One phase (``phase=N``): phase N **and every later phase** take their files and their
      manifest rows from ``commit``; earlier phases keep theirs. Later phases consume phase
      N's outputs, so results they hold now may rest on a phase N that no longer exists; at
      ``commit`` they are consistent with the restored phase N (not run yet, or run on
      exactly it). When phase N's files and row are already as at ``commit`` nothing
      changes. The manifest's status, current phase and totals are recomputed from the
      phase table, so the runner continues from the restored state (it re-runs what is not
      completed, stops at a pending review).

    Args:
        session: The session.
        commit: The checkpoint (any revision) to go back (or forward) to.
        phase: Restore only this phase (and the phases after it), else the whole session.
        force: Overwrite the session's unrecorded edits (they are discarded and listed in
            the commit message) instead of refusing.
        author: Commit author (an :class:`~mdsessions.Identity` or ``"Name <email>"``;
            default: git's user, else the login).

    Returns:
        What was written, deleted and reset, and the new commit (``None`` if nothing changed).

    Raises:
        UnrecordedEditError: The session has unrecorded edits and ``force`` is false
            (nothing changed).
        StoreError: The commit is unknown, or the session did not exist at it.
        PhaseNotFoundError: The phase is not part of the session.
    """
    store, git = session.store, session.store.git
    who = store._person(author)
    prefix = session.rel + "/"
    with store.writing():
        target = git.resolve_quick(commit)
        head = git.head()
        edits = [e for e in store.unrecorded_edits() if e.path.startswith(prefix)]
        if edits and not force:
            shown = ", ".join(f"{e.path} ({e.change})" for e in edits[:5])
            more = f" and {len(edits) - 5} more" if len(edits) > 5 else ""
            raise UnrecordedEditError(
                f"session {session.ref} has unrecorded edits: {shown}{more}; record them "
                "(mdsessions record), discard them (git restore), or restore with --force to "
                "overwrite them. Nothing was changed."
            )
        old_files = git.list_tree(target, session.rel)
        if session.manifest_rel not in old_files:
            raise StoreError(
                f"session {session.ref} did not exist at {_short(target)}; nothing to restore"
            )
        cur_files = git.list_tree(head, session.rel) if head else {}
        scope: list[str]
        reset: tuple[int, ...] = ()
        files: dict[str, Document | bytes | None] = {}
        manifest: SessionManifest | None = None
        if phase is None:
            scope = sorted(old_files.keys() | cur_files.keys())
        else:
            head_manifest = _manifest_at(store, head, session.manifest_rel)
            old_manifest = _manifest_at(store, target, session.manifest_rel)
            if head_manifest is None or old_manifest is None:
                raise StoreError(
                    f"{session.manifest_rel} does not parse at "
                    f"{_short(head or '') if head_manifest is None else _short(target)}; "
                    "restore the whole session instead"
                )
            entry = session.phase_entry(phase, head_manifest)
            old_rows = {p.number: p for p in old_manifest.phases}
            if phase not in old_rows:
                raise PhaseNotFoundError(
                    f"phase {phase} is not in the manifest at {_short(target)}"
                )

            def in_phase(p: str, directory: str) -> bool:
                return p.startswith(f"{prefix}{directory}/")

            same_files = {p: s for p, s in old_files.items() if in_phase(p, entry.directory)} == {
                p: s for p, s in cur_files.items() if in_phase(p, entry.directory)
            }
            if same_files and old_rows[phase] == entry:
                rows = [entry]
            else:
                rows = [p for p in head_manifest.phases if p.number >= phase]
            reset = tuple(p.number for p in rows)
            scope = sorted(
                p
                for p in old_files.keys() | cur_files.keys()
                if any(in_phase(p, r.directory) for r in rows)
            )
            manifest = head_manifest.model_copy(deep=True)
            manifest.phases = [
                old_rows[p.number].model_copy(deep=True)
                if p.number in reset and p.number in old_rows
                else p
                for p in manifest.phases
            ]
            _derive_status(manifest)
            if manifest != head_manifest:
                manifest.updated = utc_now()
                files[session.manifest_rel] = manifest
        written, deleted = [], []
        for rel in scope:
            if rel in old_files:
                if cur_files.get(rel) != old_files[rel]:
                    files[rel] = _blob(git, old_files[rel])
                    written.append(rel)
            elif rel in cur_files:
                files[rel] = None
                deleted.append(rel)
        overwritten = []
        for edit in edits:
            overwritten.append(edit.path)
            if edit.path not in files:
                blob_id = cur_files.get(edit.path)
                files[edit.path] = _blob(git, blob_id) if blob_id is not None else None
        what = "session" if phase is None else f"phase {phase}"
        body = []
        if reset and reset != (phase,):
            body.append(f"Phases {', '.join(map(str, reset))} set to their state at {target}.")
        elif phase is None:
            body.append(f"Every file of the session set to its state at {target}.")
        if overwritten:
            body.append(
                "Overwrote unrecorded edits (force): " + ", ".join(sorted(overwritten)) + "."
            )
        after = manifest or _manifest_at(store, target, session.manifest_rel)
        # (An empty change set must not reach the git layer: there is nothing to record.)
        sha = None
        if files:
            sha = store.commit(
                files,
                message=_message(
                    f"restore({session.ref}): {what} to {_short(target)}",
                    "\n\n".join(body),
                    kind="restore",
                    project=session.project_id,
                    session=session.session_id,
                    phase=phase,
                    session_status=after.status.value if after else None,
                    restored_from=target,
                ),
                author=who,
                check_edits=False,
            )
        if sha is None and overwritten and head is not None:
            git.checkout_paths(head, overwritten)
        return RestoreResult(
            session=session.ref,
            target=target,
            phase=phase,
            commit=sha,
            written=tuple(written) if sha else (),
            deleted=tuple(deleted) if sha else (),
            reset_phases=reset,
            overwritten=tuple(sorted(overwritten)),
            status=after.status.value if after else None,
        )


# --------------------------------------------------------------------------------------------
# fork
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForkResult:
    """What :func:`fork` made.

    Attributes:
        session: The new session.
        commit: The fork commit.
        source: ``project/session`` forked from.
        at: Full id of the commit forked at.
    """

    session: Session
    commit: str
    source: str
    at: str

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return {
            "session": self.session.ref,
            "path": self.session.rel,
            "commit": self.commit,
            "forked_from": {"session": self.source, "commit": self.at},
        }


def _fork_files(
    store: Store, source: Session, at: str, project_id: str, session_id: str
) -> dict[str, bytes]:
    """The source session's files at ``at``, rendered for the new ids (store-relative → bytes).

    Every document is parsed, its ``project_id``/``session_id`` changed and rendered again
    with the store's templates (so the bytes are canonical); agent output, comments and notes
    are data in the model and come through byte for byte. Other files are copied as they are.

    Raises:
        SessionNotFoundError: The session did not exist at ``at``.
        DocumentError: A document there does not parse (naming it).
    """
    git = store.git
    tree = git.list_tree(at, source.rel)
    if source.manifest_rel not in tree:
        raise SessionNotFoundError(f"session {source.ref} did not exist at {_short(at)}")
    new_rel = store.session_rel(project_id, session_id)
    names: dict[int, str] = {}
    docs: dict[str, Document] = {}
    out: dict[str, bytes] = {}
    for rel, binsha in sorted(tree.items()):
        data = _blob(git, binsha)
        target = new_rel + rel[len(source.rel) :]
        if not rel.endswith(".md"):
            out[target] = data
            continue
        try:
            doc = loads(_decode(data, rel), path=rel)
        except DocumentError as exc:
            raise DocumentError(
                f"cannot fork {source.ref} at {_short(at)}: {exc.reason}",
                path=exc.path,
                line=exc.line,
                field=exc.field,
            ) from None
        doc.project_id = project_id
        doc.session_id = session_id
        if isinstance(doc, SessionManifest):
            now = utc_now()
            doc.forked_from = ForkOrigin(session=source.ref, commit=at)
            doc.created = now
            doc.updated = now
            names = {p.number: p.name for p in doc.phases}
        docs[target] = doc
    for target, doc in docs.items():
        context = {}
        if isinstance(doc, Checkpoint):
            context["next_name"] = names.get(doc.next_phase, "") if doc.next_phase else ""
        out[target] = store.render(doc, **context)
    return out


def fork(
    session: Session,
    new_id: str,
    *,
    project: str | None = None,
    at: str = "HEAD",
    author: Identity | str | None = None,
) -> ForkResult:
    """Fork a session at a checkpoint into a new session (same or another project).

    The new folder holds the session's files as they were at ``at``, every document's ids
    rewritten, and the manifest's ``forked_from: {session: "p/s", commit: <full id>}``; one
    commit ``fork(p/new): from p/s at 1a2b3c4d`` (``Mdsessions-Kind: fork``). The original is
    untouched; the runner continues the fork on its own.

    Args:
        session: The session to fork.
        new_id: The new session id.
        project: The new session's project (default: the same).
        at: The checkpoint (any revision; default ``HEAD``).
        author: Commit author (default: git's user, else the login).

    Returns:
        The new session and its commit.

    Raises:
        InvalidIdentifierError: A bad id.
        SessionExistsError: The new session exists already (nothing changed).
        SessionNotFoundError: The session did not exist at ``at``.
        DocumentError: One of its documents at ``at`` does not parse.
    """
    store, git = session.store, session.store.git
    project_id = project or session.project_id
    new_rel = store.session_rel(project_id, check_id(new_id, "session id"))
    with store.writing():
        commit = git.resolve_quick(at)
        if (store.root / new_rel).exists() or git.entry(git.head(), new_rel) is not None:
            raise SessionExistsError(f"session {project_id}/{new_id} already exists ({new_rel})")
        files = _fork_files(store, session, commit, project_id, new_id)
        manifest = load_as(
            SessionManifest, files[f"{new_rel}/{MANIFEST}"].decode("utf-8"), path=new_rel
        )
        sha = store.commit(
            dict(files),
            message=_message(
                f"fork({project_id}/{new_id}): from {session.ref} at {_short(commit)}",
                kind="fork",
                project=project_id,
                session=new_id,
                session_status=manifest.status.value,
                forked_from=f"{session.ref}@{commit}",
            ),
            author=store._person(author),
        )
        if sha is None:  # pragma: no cover - a new folder always changes the tree
            raise StoreError(f"fork of {session.ref} recorded nothing")
        return ForkResult(Session(store, project_id, new_id), sha, session.ref, commit)


# --------------------------------------------------------------------------------------------
# verify and maintenance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found.

    Attributes:
        problems: Each with the file (or ``commit <id>`` / ``git fsck``) and the reason.
        commits: Commits whose trailers were checked.
        sessions: Sessions validated.
    """

    problems: tuple[Problem, ...]
    commits: int
    sessions: int

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping."""
        return {
            "valid": self.ok,
            "commits": self.commits,
            "sessions": self.sessions,
            "problems": [
                {"path": p.path, "line": p.line, "reason": p.reason} for p in self.problems
            ],
        }


def verify(store: Store) -> VerifyReport:
    """Check a store's integrity: git objects, documents, manifests and commit trailers.

    * ``git fsck --strict`` finds no error (dangling objects are not errors);
    * every document validates and every manifest agrees with its checkpoint files
      (:meth:`Store.validate`), and a fork's ``forked_from`` commit exists;
    * every manifest's status and current phase follow from its phase table (the rules
      of the store's writes: a pending review waits, the first phase to (re)run is current);
    * every commit reachable from ``HEAD`` whose trailers name a session
      (``Mdsessions-Project`` + ``Mdsessions-Session``) touched only that session's folder
      (and ``mdsessions.toml`` and the workflow copies in ``workflows/``).

    Args:
        store: The store.

    Returns:
        The report; empty ``problems`` when sound.
    """
    git = store.git
    problems: list[Problem] = []
    proc = git.git("fsck", "--strict", "--no-dangling", "--no-progress", check=False)
    lines = (proc.stdout + proc.stderr).decode("utf-8", "replace").splitlines()
    found = [line.strip() for line in lines if line.strip()]
    problems += [Problem("git fsck", line) for line in found]
    if proc.returncode != 0 and not found:
        problems.append(Problem("git fsck", f"exit status {proc.returncode}"))
    problems += store.validate()
    sessions = 0
    for session in store.iter_sessions():
        sessions += 1
        try:
            manifest = session.manifest()
        except MdsessionsError:
            continue  # reported by validate()
        derived = manifest.model_copy(deep=True)
        _derive_status(derived)
        if (derived.status, derived.current_phase) != (manifest.status, manifest.current_phase):
            problems.append(
                Problem(
                    session.manifest_rel,
                    f"status {manifest.status.value} (current phase {manifest.current_phase}) "
                    f"contradicts the phase table, which says {derived.status.value} (current "
                    f"phase {derived.current_phase})",
                )
            )
        origin = manifest.forked_from
        if origin is not None:
            check = git.git("cat-file", "-e", f"{origin.commit}^{{commit}}", check=False)
            if check.returncode != 0:
                problems.append(
                    Problem(
                        session.manifest_rel,
                        f"forked_from names commit {origin.commit}, which is not in the store",
                    )
                )
    commits = git.log(with_paths=True) if git.head() is not None else []
    for info in commits:
        project, sid = info.trailer("Mdsessions-Project"), info.trailer("Mdsessions-Session")
        if project is None or sid is None:
            continue
        where = f"commit {info.sha[:12]}"
        try:
            rel = store.session_rel(project, sid)
        except InvalidIdentifierError as exc:
            problems.append(Problem(where, f"invalid session trailers: {exc}"))
            continue
        stray = [
            p
            for p in info.paths
            if p != CONFIG_FILE
            and not p.startswith(rel + "/")
            and not p.startswith(WORKFLOWS_DIR + "/")
        ]
        if stray:
            problems.append(
                Problem(
                    where,
                    f"trailers name session {project}/{sid} but the commit also touches "
                    + ", ".join(stray[:5])
                    + (f" and {len(stray) - 5} more" if len(stray) > 5 else ""),
                )
            )
    return VerifyReport(tuple(problems), len(commits), sessions)


@dataclass(frozen=True)
class MaintenanceReport:
    """What :func:`maintenance` did.

    Attributes:
        steps: ``(step, seconds)`` for each step run.
        loose_before: Loose objects before.
        loose_after: Loose objects after.
        packs: Pack files after.
        size_before: Bytes of objects (loose + packs) before.
        size_after: Bytes of objects after.
    """

    steps: tuple[tuple[str, float], ...]
    loose_before: int
    loose_after: int
    packs: int
    size_before: int
    size_after: int

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready mapping."""
        return {
            "steps": [{"step": s, "seconds": round(t, 3)} for s, t in self.steps],
            "loose_objects": {"before": self.loose_before, "after": self.loose_after},
            "packs": self.packs,
            "size_bytes": {"before": self.size_before, "after": self.size_after},
        }


def _count_objects(git: GitRepo) -> dict[str, int]:
    out = {}
    text = git.git("count-objects", "-v").stdout.decode()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            out[key.strip()] = int(value.strip())
    return out


def maintenance(store: Store, *, consolidate_at: int = 20) -> MaintenanceReport:
    """Pack refs and loose objects and write the commit-graph; safe while writers run.

    Steps: ``git pack-refs --all`` under the store's writer lock (brief; the writer moves
    branches with git's own ``<ref>.lock`` protocol and a loose ref overrides a packed one,
    so packed refs are fine afterwards; the lock only keeps a writer from meeting the
    ``.lock`` files pack-refs holds); ``git repack -d -l`` without the lock (it packs the
    reachable loose objects and deletes only loose objects now in a pack, so the loose
    objects of a commit being written are never lost; with ``consolidate_at`` packs or more
    it runs ``-A`` to merge the packs, keeping unreachable objects loose); then
    ``git commit-graph write --reachable --changed-paths --split`` (an incremental layer for
    the commits not in the graph yet, written to a temp file and renamed; commits made
    afterwards are read normally). Measured at 10,000 commits: path-limited history
    (:func:`versions`) goes from 470 ms (packed, no graph; 3.2 s with every object loose)
    to 16-30 ms, so run it regularly (e.g. nightly, or every few thousand commits).

    Args:
        store: The store.
        consolidate_at: Merge all packs into one when there are at least this many.

    Returns:
        Steps with their durations and the object counts before and after.

    Raises:
        StoreError: If a git step fails (e.g. another maintenance holds its lock).
    """
    git = store.git
    before = _count_objects(git)
    steps: list[tuple[str, float]] = []

    def step(name: str, *args: str) -> None:
        began = time.monotonic()
        git.git(*args)
        steps.append((name, time.monotonic() - began))

    with store.writing():
        step("pack-refs", "pack-refs", "--all")
    if before.get("packs", 0) >= consolidate_at:
        step("repack", "repack", "-A", "-d", "-l", "-q")
    else:
        step("repack", "repack", "-d", "-l", "-q")
    step(
        "commit-graph",
        "commit-graph", "write", "--reachable", "--changed-paths", "--split", "--no-progress",
    )  # fmt: skip
    after = _count_objects(git)
    return MaintenanceReport(
        steps=tuple(steps),
        loose_before=before.get("count", 0),
        loose_after=after.get("count", 0),
        packs=after.get("packs", 0),
        size_before=(before.get("size", 0) + before.get("size-pack", 0)) * 1024,
        size_after=(after.get("size", 0) + after.get("size-pack", 0)) * 1024,
    )


# --------------------------------------------------------------------------------------------
# backups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """One bundle file.

    Attributes:
        path: The ``.bundle`` file.
        created: When it was made (UTC; from its name, else the file's mtime).
        size: Bytes.
        head: The first 12 hex digits of the commit ``HEAD`` was at (from the name), if known.
    """

    path: Path
    created: _dt.datetime
    size: int
    head: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The backup as a JSON-ready mapping."""
        return {
            "path": str(self.path),
            "created": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "size": self.size,
            "head": self.head,
        }


def backup_dir(store: Store) -> Path:
    """The default backup folder, ``<store>/.mdsessions/backups`` (ignored by git)."""
    return store.root / ".mdsessions" / "backups"


def _backup_info(path: Path) -> Backup:
    st = path.stat()
    match = _BACKUP_RE.search(path.name)
    head = None
    if match is not None:
        created = _dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(
            tzinfo=_dt.timezone.utc
        )
        head = path.name[match.end(1) + 1 : match.end(1) + 13]
    else:
        created = _dt.datetime.fromtimestamp(int(st.st_mtime), _dt.timezone.utc)
    return Backup(path, created, st.st_size, head)


def create_backup(
    store: Store,
    directory: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> Backup:
    """Write a bundle of the whole store (``git bundle create --all``) and verify it.

    The file is ``<folder>/<store name>-<YYYYmmddTHHMMSSZ>-<head>.bundle``, written under a
    temporary name and renamed once ``git bundle verify`` accepts it. Writers may keep
    working meanwhile: the bundle holds the refs as they were when it started.

    Args:
        store: The store.
        directory: Where to put it (created if missing); default :func:`backup_dir`, which
            git ignores (``.mdsessions/*`` is in the store's ``.gitignore``).
        progress: Called with git's progress (``stage, done, total``).

    Returns:
        The new backup.

    Raises:
        StoreError: If the store has no commit, or git fails to write or verify the bundle.
    """
    git = store.git
    head = git.head()
    if head is None:
        raise StoreError(f"{store.root}: nothing to back up (no commit yet)")
    folder = Path(directory).resolve() if directory is not None else backup_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", store.root.name) or "store"
    final = folder / f"{name}-{stamp}-{head[:12]}{_BACKUP_SUFFIX}"
    n = 1
    while final.exists():
        n += 1
        final = folder / f"{name}-{stamp}-{head[:12]}-{n}{_BACKUP_SUFFIX}"
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    try:
        git.run_progress(["bundle", "create", "--progress", str(tmp), "--all"], progress)
        proc = git.git("bundle", "verify", "--quiet", str(tmp), check=False)
        if proc.returncode != 0:
            raise StoreError(
                f"git bundle verify rejected the new bundle: "
                f"{proc.stderr.decode('utf-8', 'replace').strip()}"
            )
        tmp.replace(final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return _backup_info(final)


def list_backups(directory: str | os.PathLike[str]) -> list[Backup]:
    """The ``*.bundle`` files of a folder, newest first.

    Args:
        directory: The backup folder (a missing folder has none).

    Returns:
        The backups, newest first.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = [_backup_info(p) for p in folder.glob(f"*{_BACKUP_SUFFIX}") if p.is_file()]
    found.sort(key=lambda b: (b.created, b.path.name), reverse=True)
    return found


def prune_backups(
    directory: str | os.PathLike[str],
    *,
    keep: int | None = None,
    older_than: float | None = None,
    now: _dt.datetime | None = None,
) -> list[Backup]:
    """Delete old backups: those beyond the newest ``keep`` and/or older than ``older_than``.

    With both given a backup is deleted only when both say so (the conservative reading).

    Args:
        directory: The backup folder.
        keep: Keep this many newest backups.
        older_than: Delete backups older than this many days.
        now: The current time (UTC; for tests).

    Returns:
        The deleted backups.

    Raises:
        ValueError: Neither ``keep`` nor ``older_than``, or a negative value.
    """
    if keep is None and older_than is None:
        raise ValueError("give keep (a count) or older_than (days)")
    if (keep is not None and keep < 0) or (older_than is not None and older_than < 0):
        raise ValueError("keep and older_than must be 0 or more")
    current = now or _dt.datetime.now(_dt.timezone.utc)
    removed = []
    for index, backup in enumerate(list_backups(directory)):
        beyond = keep is None or index >= keep
        old = older_than is None or (current - backup.created).total_seconds() > older_than * 86400
        if beyond and old:
            backup.path.unlink()
            removed.append(backup)
    return removed


@dataclass(frozen=True)
class BackupRestore:
    """What :func:`restore_backup` made.

    Attributes:
        path: The new store's folder.
        head: The commit checked out.
        refs: Every ref restored, name → commit.
        problems: What :func:`verify` found in the restored store (empty when sound).
    """

    path: Path
    head: str
    refs: dict[str, str]
    problems: tuple[Problem, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return {
            "path": str(self.path),
            "head": self.head,
            "refs": dict(self.refs),
            "valid": not self.problems,
            "problems": [
                {"path": p.path, "line": p.line, "reason": p.reason} for p in self.problems
            ],
        }


def restore_backup(
    bundle: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> BackupRestore:
    """Restore a store from a bundle into a NEW folder, then verify it.

    A clone of the bundle that keeps every ref as it was (``refs/*`` to ``refs/*``, no
    ``origin`` pointing at the bundle file): ``git bundle verify``, ``git fetch`` from the
    bundle, ``HEAD`` on ``main`` (else the branch the bundle's ``HEAD`` names), checkout,
    then :func:`verify` (``git fsck --strict`` + validation). ``git log`` and every file are
    those of the store the bundle was made from.

    Args:
        bundle: The ``.bundle`` file.
        dest: A folder that does not exist or is empty.
        progress: Called with git's progress.

    Returns:
        The new store's folder, head, refs and any problems found.

    Raises:
        StoreError: The destination is not empty, the bundle is not valid, or the restored
            repository fails ``git fsck`` (the half-made folder is removed).
    """
    source = Path(bundle).resolve()
    target = Path(dest).resolve()
    if not source.is_file():
        raise StoreError(f"{source}: no such bundle file")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} exists and is not empty; restore into a new folder")
    created = not target.exists()
    try:
        init_repository(target)
        run_git(["bundle", "verify", "--quiet", str(source)], cwd=target)
        heads = run_git(["bundle", "list-heads", str(source)], cwd=target).stdout.decode()
        refs: dict[str, str] = {}
        head_sha = None
        for line in heads.splitlines():
            sha, _, name = line.strip().partition(" ")
            if name == "HEAD":
                head_sha = sha
            elif name.startswith("refs/"):
                refs[name] = sha
        if not refs:
            raise StoreError(f"{source}: the bundle holds no refs")
        repo = GitRepo(target)
        try:
            repo.run_progress(
                [
                    "fetch",
                    "--progress",
                    "--update-head-ok",
                    "--no-tags",
                    str(source),
                    "+refs/*:refs/*",
                ],
                progress,
                cwd=target,
            )
        finally:
            repo.close()
        branch = "refs/heads/main" if "refs/heads/main" in refs else None
        if branch is None:
            branch = next(
                (
                    n
                    for n, s in sorted(refs.items())
                    if n.startswith("refs/heads/") and s == head_sha
                ),
                next((n for n in sorted(refs) if n.startswith("refs/heads/")), None),
            )
        if branch is None:
            raise StoreError(f"{source}: the bundle holds no branch to check out")
        run_git(["symbolic-ref", "HEAD", branch], cwd=target)
        run_git(["reset", "-q", "--hard", "HEAD"], cwd=target)
        fsck = run_git(
            ["fsck", "--strict", "--no-dangling", "--no-progress"], cwd=target, check=False
        )
        if fsck.returncode != 0:
            raise StoreError(
                f"the restored repository fails git fsck: "
                f"{(fsck.stdout + fsck.stderr).decode('utf-8', 'replace').strip()}"
            )
        with Store(target) as store:
            report = verify(store)
            head = store.git.head() or ""
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        raise
    return BackupRestore(target, head, refs, report.problems)


# --------------------------------------------------------------------------------------------
# remotes
# --------------------------------------------------------------------------------------------


def _check_remote(name: str) -> str:
    if not _REMOTE_RE.fullmatch(name) or ".." in name or name.endswith((".lock", ".")):
        raise InvalidIdentifierError(
            f"invalid remote name {name!r}: expected letters, digits, '.', '_' or '-'"
        )
    return name


def add_remote(store: Store, name: str, url: str) -> None:
    """Add a git remote (``git remote add NAME URL``): a bare repository, a server, a path.

    Raises:
        InvalidIdentifierError: A bad name.
        StoreError: The remote exists already (git's message).
    """
    store.git.git("remote", "add", "--", _check_remote(name), url)


def remove_remote(store: Store, name: str) -> None:
    """Remove a git remote and its remote-tracking refs.

    Raises:
        StoreError: No such remote.
    """
    store.git.git("remote", "remove", _check_remote(name))


def remotes(store: Store) -> dict[str, str]:
    """The store's remotes: name → fetch URL."""
    proc = store.git.git("remote", "-v")
    out: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "(fetch)":
            out[parts[0]] = parts[1]
    return out


def _humanish(url: str) -> str:
    """The folder ``git clone`` would make for ``url`` (``…/store.git`` → ``store``)."""
    text = url.rstrip("/").removesuffix("/.git")
    name = re.split(r"[/:\\]", text)[-1].removesuffix(".git")
    return name or "store"


def _remote_branches(root: Path, remote: str) -> dict[str, str]:
    prefix = f"refs/remotes/{remote}/"
    proc = run_git(["for-each-ref", "--format=%(objectname) %(refname)", prefix], cwd=root)
    out: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition(" ")
        if name.startswith(prefix) and name != prefix + "HEAD":
            out[name[len(prefix) :]] = sha
    return out


def _configured_branch(root: Path, commit: str) -> str | None:
    """``[store] branch`` of ``mdsessions.toml`` at ``commit`` (default ``main``).

    ``None`` when the commit has no readable ``mdsessions.toml``.
    """
    proc = run_git(["cat-file", "blob", f"{commit}:{CONFIG_FILE}"], cwd=root, check=False)
    if proc.returncode != 0:
        return None
    try:
        config = tomllib.loads(proc.stdout.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    store_cfg = config.get("store", {})
    branch = store_cfg.get("branch", DEFAULT_BRANCH) if isinstance(store_cfg, dict) else None
    return branch if isinstance(branch, str) else DEFAULT_BRANCH


def _pick_branch(root: Path, url: str, heads: Mapping[str, str], preferred: str | None) -> str:
    """The store's branch: the one ``mdsessions.toml`` names, else the one that holds it.

    Raises:
        StoreNotFoundError: The remote has no branch, or none holds ``mdsessions.toml``.
    """
    if not heads:
        raise StoreNotFoundError(
            f"{url} has no branch yet (an empty repository); on the machine that has the "
            f"store run 'mdsessions remote add origin {url}' and 'mdsessions push', then "
            "clone again"
        )
    order = [b for b in (preferred, DEFAULT_BRANCH) if b is not None and b in heads]
    order += [b for b in sorted(heads) if b not in order]
    holding = []
    for candidate in order:
        configured = _configured_branch(root, heads[candidate])
        if configured is None:
            continue
        holding.append(candidate)
        if configured in heads and _configured_branch(root, heads[configured]) is not None:
            return configured
    if holding:
        return holding[0]
    raise StoreNotFoundError(
        f"{url} holds no mdsessions store: none of its branches ({', '.join(sorted(heads))}) "
        f"has {CONFIG_FILE}"
    )


def clone(
    url: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    remote: str = "origin",
    **options: Any,
) -> Store:
    """Clone a store from any remote git understands and open it, ready to run and sync.

    The store's branch is found whatever the remote's ``HEAD`` says (a bare repository made
    with plain ``git init --bare`` names ``master``): the branch ``mdsessions.toml``
    ``[store] branch`` names (default ``main``), else the remote branch that holds
    ``mdsessions.toml``. That branch is checked out and tracks ``REMOTE/<branch>``; the
    versions other machines set aside (``refs/mdsessions/set-aside/*``) are fetched too.

    Args:
        url: Any URL git takes: a path, ``file://``, ``git://``, ``ssh://``/``host:path``,
            ``https://``.
        dest: A new (or empty) folder; default the name ``git clone`` would pick
            (``…/team-store.git`` → ``team-store``).
        remote: The name of the remote in the clone.
        **options: Passed to :class:`~mdsessions.Store`.

    Returns:
        The open store.

    Raises:
        StoreNotFoundError: The remote is empty or holds no mdsessions store (the new
            folder is removed).
        StoreError: git failed (unreachable remote, authentication), or ``dest`` is not
            empty.

    Example:
        >>> store = history.clone("git@server:team/store.git", "store")   # doctest: +SKIP
        >>> store.branch                                                   # doctest: +SKIP
        'main'
    """
    _check_remote(remote)
    target = Path(dest if dest is not None else _humanish(url)).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} exists and is not empty; clone into a new folder")
    created = not target.exists()
    try:
        run_git(["clone", "--no-checkout", "--quiet", "--origin", remote, "--", url, str(target)])
        heads = _remote_branches(target, remote)
        head_text = (target / ".git" / "HEAD").read_text().strip()
        preferred = head_text[len("ref: refs/heads/") :] if head_text.startswith("ref: ") else None
        branch = _pick_branch(target, url, heads, preferred)
        ref = f"refs/heads/{branch}"
        run_git(["update-ref", ref, heads[branch]], cwd=target)
        run_git(["symbolic-ref", "HEAD", ref], cwd=target)
        run_git(["config", f"branch.{branch}.remote", remote], cwd=target)
        run_git(["config", f"branch.{branch}.merge", ref], cwd=target)
        if preferred is not None and preferred != branch:
            run_git(["update-ref", "-d", f"refs/heads/{preferred}"], cwd=target, check=False)
        run_git(["remote", "set-head", remote, branch], cwd=target)
        run_git(["reset", "--quiet", "--hard", "HEAD"], cwd=target)
        run_git(["fetch", "--quiet", "--no-tags", remote, f"+{SET_ASIDE_REFSPEC}"], cwd=target)
        return Store(target, **options)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        elif target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        raise


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` did.

    Attributes:
        remote: The remote.
        branch: The branch pushed, e.g. ``main``.
        action: ``created``, ``pushed`` or ``up-to-date``.
        commit: The commit the remote's branch is at now.
        refs: Set-aside refs (``refs/mdsessions/set-aside/…``) the remote did not have and
            now has.
        refs_refused: Set-aside refs the remote refused (its copy points elsewhere, or the
            server does not take such refs); they stay here.
    """

    remote: str
    branch: str
    action: str
    commit: str
    refs: tuple[str, ...] = ()
    refs_refused: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return {
            "remote": self.remote,
            "branch": self.branch,
            "action": self.action,
            "commit": self.commit,
            "refs": list(self.refs),
            "refs_refused": list(self.refs_refused),
        }


class PushRejectedError(ConflictError):
    """The remote's branch has commits this store lacks: pull (or sync) first."""


def push(store: Store, remote: str = "origin") -> PushResult:
    """Push the store's branch (never forced) and the set-aside refs to a remote.

    ``git push REMOTE main:main 'refs/mdsessions/set-aside/*:refs/mdsessions/set-aside/*'``:
    the versions sync set aside here become findable on every machine that pulls.

    Args:
        store: The store.
        remote: A remote name (see :func:`add_remote`).

    Returns:
        What happened.

    Raises:
        PushRejectedError: The remote has commits this store lacks (pull or sync first).
        StoreError: Any other git failure (unreachable remote, permissions).
    """
    git = store.git
    ref = git.head_ref()
    branch = ref.removeprefix("refs/heads/")
    head = git.head()
    if head is None:
        raise StoreError(f"{store.root}: nothing to push (no commit yet)")
    proc = git.git(
        "push", "--porcelain", "--", _check_remote(remote), f"{ref}:{ref}", SET_ASIDE_REFSPEC,
        check=False,
    )  # fmt: skip
    out = proc.stdout.decode("utf-8", "replace")
    flag = None
    pushed: list[str] = []
    refused: list[str] = []
    for line in out.splitlines():
        if "\t" not in line or line[:1] not in " +-*!=":
            continue
        fields = line.split("\t")
        target = fields[1].partition(":")[2] if len(fields) > 1 else ""
        if target == ref:
            flag = line[:1]
            if flag == "!":
                raise PushRejectedError(
                    f"push to {remote} rejected: {remote}/{branch} has commits this store does "
                    f"not have; run 'mdsessions pull {remote}' (or 'mdsessions sync {remote}') "
                    f"first ({fields[-1].strip()})"
                )
        elif target.startswith(SET_ASIDE_PREFIX):
            if line[:1] == "*":
                pushed.append(target)
            elif line[:1] == "!":
                refused.append(target)
    if flag is None:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise StoreError(f"push to {remote} failed: {message or out.strip()}")
    action = {"*": "created", "=": "up-to-date"}.get(flag, "pushed")
    return PushResult(remote, branch, action, head, tuple(pushed), tuple(refused))


@dataclass(frozen=True)
class SessionConflict:
    """A session changed on both sides of a pull.

    Attributes:
        session: ``project/session``.
        mine: Session-relative files changed locally since the common ancestor.
        theirs: Session-relative files changed on the remote since then.
    """

    session: str
    mine: tuple[str, ...]
    theirs: tuple[str, ...]


class SyncConflictError(ConflictError):
    """A pull met sessions (or store files) changed on both sides; nothing was changed locally.

    Attributes:
        remote: The remote pulled from.
        sessions: The sessions changed on both sides.
        files: Store files outside sessions changed differently on both sides.
        keys: ``mdsessions.toml`` keys set to different values on both sides
            (``[workflows] aflow: mine "…", theirs "…"``).
    """

    def __init__(
        self,
        message: str,
        *,
        remote: str,
        sessions: Sequence[SessionConflict],
        files: Sequence[str] = (),
        keys: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.remote = remote
        self.sessions = tuple(sessions)
        self.files = tuple(files)
        self.keys = tuple(keys)


@dataclass(frozen=True)
class PullResult:
    """What :func:`pull` did.

    Attributes:
        remote: The remote.
        branch: The branch, e.g. ``main``.
        action: ``up-to-date``, ``fast-forward``, ``merged`` or ``remote-empty``.
        commit: The store's ``HEAD`` afterwards.
        sessions: Sessions the remote brought changes to (``project/session``).
        resolved: Session (or file) → how a conflict was resolved: ``mine``, ``theirs`` or
            ``forked as p/new``.
        forked: The session made by ``fork_theirs``, if any.
        changes: Per session, what the pull did to it (and what it set aside).
        files: Per store file outside the sessions, what the pull did to it.
    """

    remote: str
    branch: str
    action: str
    commit: str | None
    sessions: tuple[str, ...] = ()
    resolved: dict[str, str] = field(default_factory=dict)
    forked: Session | None = None
    changes: tuple[SessionChange, ...] = ()
    files: tuple[StoreFileChange, ...] = ()

    @property
    def set_aside(self) -> tuple[SetAside, ...]:
        """Every version this pull set aside (or found set aside already), once each."""
        seen: dict[tuple[str, str | None], SetAside] = {}
        found = [c.set_aside for c in self.changes] + [f.set_aside for f in self.files]
        for aside in found:
            if aside is not None:
                seen.setdefault((aside.ref, aside.session), aside)
        return tuple(seen.values())

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per version of ours the remote replaced without including it."""
        out = []
        for change in self.changes:
            if change.change != "replaced" or change.set_aside is None:
                continue
            kept = change.set_aside
            also = f" and as session {change.fork} (forked there)" if change.fork else ""
            out.append(
                f"{change.session}: {self.remote}'s version replaces this store's and does not "
                f"include it ({change.status_before or '-'} -> {change.status_after or '-'}); "
                f"this store's version is kept as {kept.ref}{also}; get it back: "
                f"{kept.get_back}"
            )
        for item in self.files:
            if item.change == "replaced" and item.set_aside is not None:
                out.append(
                    f"{item.path}: {self.remote}'s version replaces this store's and does not "
                    f"include it; this store's version is kept as {item.set_aside.ref}; see it: "
                    f"git show {item.set_aside.commit[:12]}:{item.path}"
                )
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return {
            "remote": self.remote,
            "branch": self.branch,
            "action": self.action,
            "commit": self.commit,
            "sessions": list(self.sessions),
            "resolved": dict(self.resolved),
            "forked": self.forked.ref if self.forked else None,
            "changes": [c.to_json() for c in self.changes],
            "files": [f.to_json() for f in self.files],
            "set_aside": [s.to_json() for s in self.set_aside],
            "warnings": list(self.warnings),
        }


def _by_session(store: Store, paths: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    sessions: dict[str, list[str]] = {}
    other: list[str] = []
    for rel in sorted(paths):
        key = _session_of(store, rel)
        if key is None:
            other.append(rel)
        else:
            sessions.setdefault(f"{key[0]}/{key[1]}", []).append(rel)
    return sessions, other


def _key_rel(store: Store, key: str) -> str:
    project_id, _, session_id = key.partition("/")
    return store.session_rel(project_id, session_id)


def _fetch(store: Store, remote: str, branch: str) -> str | None:
    """Fetch the remote's branch (to ``refs/remotes/<remote>/<branch>``) and the set-aside refs.

    Returns the branch's commit, or ``None`` when the remote lacks the branch.
    """
    tracking = f"refs/remotes/{remote}/{branch}"
    proc = store.git.git(
        "fetch", "--quiet", "--no-tags", "--", remote, f"+refs/heads/{branch}:{tracking}",
        f"+{SET_ASIDE_REFSPEC}", check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        if "couldn't find remote ref" in message:
            return None
        raise StoreError(f"fetch from {remote} failed: {message}")
    return store.git.read_ref(tracking)


def _keep_aside(
    store: Store,
    session: str | None,
    commit: str,
    side: str,
    paths: Sequence[str] = (),
) -> SetAside:
    """Name the version of ``session`` (or of store files) at ``commit``: a set-aside ref."""
    git = store.git
    ref = set_aside_ref(session, commit)
    what = session or ", ".join(paths)
    try:
        created = git.create_ref(ref, commit, f"mdsessions: set aside {side} version of {what}")
    except ConflictError:  # a 12-digit clash with another commit: use the full id
        ref = f"{ref[:-12]}{commit}"
        created = git.create_ref(ref, commit, f"mdsessions: set aside {side} version of {what}")
    status = None
    if session is not None:
        manifest = _manifest_at(store, commit, f"{_key_rel(store, session)}/{MANIFEST}")
        status = manifest.status.value if manifest else None
    return SetAside(ref, commit, session, tuple(paths), side, status, created)


def _fork_of(store: Store, ours: str, theirs: str, key: str, sessions: Iterable[str]) -> str | None:
    """A session new in ``theirs`` forked from ``key`` at a commit holding our version of it."""
    rel = _key_rel(store, key)
    mine = store.git.entry(ours, rel)
    if mine is None:
        return None
    for other in sessions:
        if other == key or store.git.entry(ours, _key_rel(store, other)) is not None:
            continue
        manifest = _manifest_at(store, theirs, f"{_key_rel(store, other)}/{MANIFEST}")
        origin = manifest.forked_from if manifest else None
        if origin is None or origin.session != key:
            continue
        try:
            if store.git.entry(origin.commit, rel) == mine:
                return other
        except (StoreError, ValueError):
            continue
    return None


def _session_changes(
    store: Store,
    before: str | None,
    after: str,
    keys: Iterable[str],
    kinds: Mapping[str, str],
    kept: Mapping[str, SetAside],
    forks: Mapping[str, str],
) -> tuple[SessionChange, ...]:
    out = []
    for key in sorted(set(keys)):
        manifest_rel = f"{_key_rel(store, key)}/{MANIFEST}"
        old = _manifest_at(store, before, manifest_rel)
        new = _manifest_at(store, after, manifest_rel)
        change = kinds.get(key)
        if change is None:
            exists_before = before is not None and store.git.entry(before, manifest_rel)
            exists_after = store.git.entry(after, manifest_rel)
            if not exists_before and exists_after:
                change = "added"
            elif exists_before and not exists_after:
                change = "deleted"
            else:
                change = "updated"
        out.append(
            SessionChange(
                session=key,
                change=change,
                status_before=old.status.value if old else None,
                status_after=new.status.value if new else None,
                phase_before=old.current_phase if old else None,
                phase_after=new.current_phase if new else None,
                set_aside=kept.get(key),
                fork=forks.get(key),
            )
        )
    return tuple(out)


def _file_change(
    store: Store, before: str | None, after: str, path: str, change: str | None = None, **kw: Any
) -> StoreFileChange:
    if change is None:
        old = before is not None and store.git.entry(before, path) is not None
        new = store.git.entry(after, path) is not None
        change = "added" if new and not old else "deleted" if old and not new else "updated"
    return StoreFileChange(path, change, **kw)


def _text_at(store: Store, commit: str | None, rel: str) -> str | None:
    if commit is None:
        return None
    data = store.git.read_file(commit, rel)
    return None if data is None else _decode(data, rel)


def pull(
    store: Store,
    remote: str = "origin",
    *,
    keep: str | None = None,
    fork_theirs: str | None = None,
    author: Identity | str | None = None,
) -> PullResult:
    """Fetch the remote's branch and merge it, session by session; never lose a version silently.

    Sessions are single-writer, so a merge is per path: when the histories diverged, the
    session folders changed on each side since the common ancestor are compared. Disjoint
    sets make one merge commit (``Mdsessions-Kind: merge``, built in-process under the
    writer lock, so ``git status`` stays clean). ``mdsessions.toml`` merges key by key (two
    machines' workflow registrations add up). A session changed on both sides, a store file
    changed differently on both, or a ``mdsessions.toml`` key set to different values on
    both raises :class:`SyncConflictError` naming them, and nothing local changes. Then
    choose:

    * ``keep="mine"``: those sessions (keys, files) stay as they are here; the remote's
      version is set aside;
    * ``keep="theirs"``: they become the remote's; this store's version is set aside;
    * ``fork_theirs="NEW_ID"``: ours stays, the remote's version of the (one) conflicting
      session is added as ``project/NEW_ID`` (the fork mechanism, ``forked_from`` the
      remote's commit).

    A version set aside is named ``refs/mdsessions/set-aside/<project>/<session>/<12 hex>``
    (see :class:`SetAside`; pushed by :func:`push`, fetched here). Also when there is no
    conflict here: if the remote's version of a session does not include ours (the other
    machine resolved a conflict with ``keep="mine"`` over our work), ours is set aside
    under that name **before** the branch moves, the change is ``replaced`` and
    :attr:`PullResult.warnings` says so.

    Args:
        store: The store.
        remote: A remote name.
        keep: ``"mine"`` or ``"theirs"`` for conflicting sessions.
        fork_theirs: A new session id for the remote's version of the conflicting session.
        author: Author of a merge commit (default: git's user, else the login).

    Returns:
        What happened, per session and per store file, and what was set aside.

    Raises:
        SyncConflictError: Conflicting changes and no way out chosen (nothing changed).
        UnrecordedEditError: A file the merge would change holds a person's unrecorded edit
            (nothing changed).
        ValueError: Both ``keep`` and ``fork_theirs``, or an unknown ``keep``.
        StoreError: git failed (unreachable remote, …).
    """
    if keep is not None and keep not in ("mine", "theirs"):
        raise ValueError(f"keep must be 'mine' or 'theirs', not {keep!r}")
    if keep is not None and fork_theirs is not None:
        raise ValueError("give keep or fork_theirs, not both")
    git = store.git
    ref = git.head_ref()
    branch = ref.removeprefix("refs/heads/")
    theirs = _fetch(store, _check_remote(remote), branch)
    if theirs is None:
        return PullResult(remote, branch, "remote-empty", git.head())
    who = store._person(author)
    with store.writing():
        ours = git.head()
        if ours is not None and git.is_ancestor(theirs, ours):
            return PullResult(remote, branch, "up-to-date", ours)
        if ours is None or git.is_ancestor(ours, theirs):
            return _fast_forward(store, remote, branch, ours, theirs)
        return _merge(store, remote, branch, ours, theirs, keep, fork_theirs, who)


def _fast_forward(
    store: Store, remote: str, branch: str, ours: str | None, theirs: str
) -> PullResult:
    git = store.git
    changed = git.diff_trees(ours, theirs)
    sessions, other = _by_session(store, changed)
    kept: dict[str, SetAside] = {}
    kinds: dict[str, str] = {}
    forks: dict[str, str] = {}
    files: dict[str, StoreFileChange] = {}
    if ours is not None:
        lineage = Lineage(git, ours, theirs)
        for key in sessions:
            if not lineage.keeps(_key_rel(store, key)):
                kinds[key] = "replaced"
                kept[key] = _keep_aside(store, key, ours, "mine")
                fork = _fork_of(store, ours, theirs, key, sessions)
                if fork is not None:
                    forks[key] = fork
        lost = [p for p in other if not lineage.keeps(p)]
        if lost:
            aside = _keep_aside(store, None, ours, "mine", lost)
            for path in lost:
                files[path] = StoreFileChange(path, "replaced", set_aside=aside)
    git.fast_forward(
        theirs,
        message=f"pull: fast-forward to {remote}/{branch}",
        committer=store.author,
        expected_head=ours,
    )
    for path in other:
        files.setdefault(path, _file_change(store, ours, theirs, path))
    return PullResult(
        remote,
        branch,
        "fast-forward",
        theirs,
        tuple(sessions),
        changes=_session_changes(store, ours, theirs, sessions, kinds, kept, forks),
        files=tuple(files[p] for p in sorted(files)),
    )


def _merge(
    store: Store,
    remote: str,
    branch: str,
    ours: str,
    theirs: str,
    keep: str | None,
    fork_theirs: str | None,
    who: Identity,
) -> PullResult:
    git = store.git
    base = git.merge_base(ours, theirs)
    mine_changed = git.diff_trees(base, ours)
    their_changed = git.diff_trees(base, theirs)
    mine_s, mine_o = _by_session(store, mine_changed)
    their_s, their_o = _by_session(store, their_changed)
    both = sorted(mine_s.keys() & their_s.keys())
    clash = [
        p for p in sorted(set(mine_o) & set(their_o)) if mine_changed[p][1] != their_changed[p][1]
    ]
    config: ConfigMerge | None = None
    if CONFIG_FILE in clash:
        try:
            config = merge_config(
                _text_at(store, base, CONFIG_FILE),
                _text_at(store, ours, CONFIG_FILE) or "",
                _text_at(store, theirs, CONFIG_FILE) or "",
            )
        except (ConfigEditError, DocumentError):
            config = None  # not mergeable key by key: a conflict on the whole file
        else:
            clash.remove(CONFIG_FILE)
    key_conflicts = tuple(c.describe() for c in config.conflicts) if config else ()
    if (both or clash or key_conflicts) and keep is None and fork_theirs is None:
        raise _conflict(store, remote, branch, both, clash, mine_s, their_s, key_conflicts)
    if fork_theirs is not None and (clash or key_conflicts or len(both) > 1):
        files_ = [*clash, *([CONFIG_FILE] if key_conflicts else [])]
        raise SyncConflictError(
            f"pull from {remote}/{branch}: --fork-theirs takes one conflicting session; "
            + (f"sessions {', '.join(both)} " if len(both) > 1 else "")
            + (f"store files {', '.join(clash)} " if clash else "")
            + (f"{CONFIG_FILE} keys {'; '.join(key_conflicts)} " if key_conflicts else "")
            + "changed on both sides; use --keep mine or --keep theirs. Nothing was changed.",
            remote=remote,
            sessions=[_session_conflict(store, k, mine_s, their_s) for k in both],
            files=files_,
            keys=key_conflicts,
        )
    lineage = Lineage(git, ours, theirs)
    blobs: dict[str, bytes | None] = {}
    files: dict[str, bytes | None] = {}
    kinds: dict[str, str] = {}
    kept: dict[str, SetAside] = {}
    forks: dict[str, str] = {}
    resolved: dict[str, str] = {}
    forked = None
    # Sessions only the remote changed: take them (naming ours first if they replace it).
    for key, paths_ in their_s.items():
        if key in both:
            continue
        if not lineage.keeps(_key_rel(store, key)):
            kinds[key] = "replaced"
            kept[key] = _keep_aside(store, key, ours, "mine")
            fork = _fork_of(store, ours, theirs, key, their_s)
            if fork is not None:
                forks[key] = fork
        for rel in paths_:
            blobs[rel] = their_changed[rel][1]
    # Store files outside the sessions.
    file_changes: dict[str, StoreFileChange] = {}
    lost_mine = [p for p in their_o if p not in mine_o and not lineage.keeps(p)]
    lost_mine += [p for p in clash if keep == "theirs"]
    lost_theirs = [p for p in clash if keep != "theirs"]
    if config is not None and config.conflicts:
        (lost_mine if keep == "theirs" else lost_theirs).append(CONFIG_FILE)
    aside_mine = _keep_aside(store, None, ours, "mine", sorted(lost_mine)) if lost_mine else None
    aside_theirs = (
        _keep_aside(store, None, theirs, "theirs", sorted(lost_theirs)) if lost_theirs else None
    )
    for rel in their_o:
        if rel == CONFIG_FILE and config is not None:
            continue
        if rel in clash:
            side = keep or "mine"
            resolved[rel] = side
            if side == "theirs":
                blobs[rel] = their_changed[rel][1]
            file_changes[rel] = StoreFileChange(
                rel, f"kept-{side}", set_aside=aside_mine if side == "theirs" else aside_theirs
            )
            continue
        blobs[rel] = their_changed[rel][1]
        if rel in lost_mine:
            file_changes[rel] = StoreFileChange(rel, "replaced", set_aside=aside_mine)
    if config is not None:
        ours_text = _text_at(store, ours, CONFIG_FILE) or ""
        text = config.theirs_text if keep == "theirs" else config.text
        if text != ours_text:
            files[CONFIG_FILE] = text.encode("utf-8")
        taken = tuple(key_name(k) for k in config.taken)
        if config.conflicts:
            side = keep or "mine"
            resolved[CONFIG_FILE] = side
            file_changes[CONFIG_FILE] = StoreFileChange(
                CONFIG_FILE,
                f"kept-{side}",
                keys=key_conflicts,
                set_aside=aside_mine if side == "theirs" else aside_theirs,
            )
        elif taken:
            file_changes[CONFIG_FILE] = StoreFileChange(CONFIG_FILE, "merged", keys=taken)
    # Sessions changed on both sides: the way out chosen.
    for key in both:
        project_id, _, session_id = key.partition("/")
        rel = store.session_rel(project_id, session_id)
        if keep == "mine":
            resolved[key], kinds[key] = "mine", "kept-mine"
            kept[key] = _keep_aside(store, key, theirs, "theirs")
        elif keep == "theirs":
            resolved[key], kinds[key] = "theirs", "kept-theirs"
            kept[key] = _keep_aside(store, key, ours, "mine")
            for path, (_mine, their_sha) in git.diff_trees(ours, theirs, rel).items():
                blobs[path] = their_sha
        else:
            assert fork_theirs is not None
            new_rel = store.session_rel(project_id, check_id(fork_theirs, "session id"))
            if (
                (store.root / new_rel).exists()
                or git.entry(ours, new_rel) is not None
                or git.entry(theirs, new_rel) is not None
            ):
                raise SessionExistsError(f"session {project_id}/{fork_theirs} already exists")
            source = Session(store, project_id, session_id)
            files.update(_fork_files(store, source, theirs, project_id, fork_theirs))
            forked = Session(store, project_id, fork_theirs)
            resolved[key], kinds[key], forks[key] = f"forked as {forked.ref}", "forked", forked.ref
    brought = sorted(k for k in their_s if k not in both)
    subject = f"merge({remote}/{branch}): " + (
        ", ".join(brought[:5]) + (f" and {len(brought) - 5} more" if len(brought) > 5 else "")
        if brought
        else "no session"
    )
    body = []
    for key in sorted(kinds):
        aside = kept.get(key)
        where = f"; set aside as {aside.ref}" if aside else ""
        if kinds[key] == "replaced":
            body.append(f"- {key}: {remote}'s version does not include ours{where}")
        elif kinds[key] == "forked":
            body.append(f"- {key}: {resolved[key]}")
        else:
            body.append(f"- {key}: kept {resolved[key]}{where}")
    for path, change in sorted(file_changes.items()):
        if change.change != "merged":
            where = f"; set aside as {change.set_aside.ref}" if change.set_aside else ""
            body.append(f"- {path}: {change.change.replace('-', ' ')}{where}")
        else:
            body.append(f"- {path}: merged key by key ({', '.join(change.keys)} from {remote})")
    sha = git.commit_merge(
        theirs,
        blobs=blobs,
        files=files,
        message=_message(subject, "\n".join(body), kind="merge"),
        author=who,
        committer=store.author,
        expected_head=ours,
    )
    for path in their_o:
        file_changes.setdefault(path, _file_change(store, ours, sha, path))
    return PullResult(
        remote,
        branch,
        "merged",
        sha,
        tuple(sorted(their_s)),
        resolved,
        forked,
        changes=_session_changes(store, ours, sha, [*their_s], kinds, kept, forks),
        files=tuple(file_changes[p] for p in sorted(file_changes)),
    )


def _session_conflict(
    store: Store, key: str, mine: Mapping[str, list[str]], theirs: Mapping[str, list[str]]
) -> SessionConflict:
    project_id, _, session_id = key.partition("/")
    cut = len(store.session_rel(project_id, session_id)) + 1
    return SessionConflict(
        key,
        tuple(rel[cut:] for rel in mine.get(key, [])),
        tuple(rel[cut:] for rel in theirs.get(key, [])),
    )


def _conflict(
    store: Store,
    remote: str,
    branch: str,
    both: Sequence[str],
    clash: Sequence[str],
    mine: Mapping[str, list[str]],
    theirs: Mapping[str, list[str]],
    keys: Sequence[str] = (),
) -> SyncConflictError:
    conflicts = [_session_conflict(store, k, mine, theirs) for k in both]

    def names(files: tuple[str, ...]) -> str:
        return ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")

    parts = [
        f"session {c.session} (mine: {names(c.mine)}; theirs: {names(c.theirs)})" for c in conflicts
    ]
    parts += [f"store file {p}" for p in clash]
    if keys:
        parts.append(f"store file {CONFIG_FILE} ({'; '.join(keys)})")
    way_out = "--keep mine, --keep theirs" + (
        " or --fork-theirs NEW_ID" if not clash and not keys and len(both) == 1 else ""
    )
    return SyncConflictError(
        f"pull from {remote}/{branch}: changed on both sides: "
        + "; ".join(parts)
        + f". Nothing was changed. Pull again with {way_out} "
        f"(mdsessions pull {remote} --keep mine); the version not kept is set aside under "
        "refs/mdsessions/set-aside/, never lost.",
        remote=remote,
        sessions=conflicts,
        files=[*clash, *([CONFIG_FILE] if keys else [])],
        keys=keys,
    )


def resolve(
    store: Store,
    remote: str = "origin",
    *,
    keep: str | None = None,
    fork_theirs: str | None = None,
    author: Identity | str | None = None,
) -> PullResult:
    """The way out of a :class:`SyncConflictError`: pull again with a resolution.

    Exactly one of ``keep="mine"``, ``keep="theirs"`` or ``fork_theirs="NEW_ID"``; see
    :func:`pull`.

    Raises:
        ValueError: Neither or both given.
    """
    if (keep is None) == (fork_theirs is None):
        raise ValueError("give exactly one of keep ('mine' or 'theirs') or fork_theirs")
    return pull(store, remote, keep=keep, fork_theirs=fork_theirs, author=author)


def _combine(pulls: Sequence[PullResult]) -> PullResult:
    """Several pulls of one sync (the remote moved before the push) as one result."""
    if len(pulls) == 1:
        return pulls[0]
    actions = [p.action for p in pulls]
    action = next((a for a in ("merged", "fast-forward") if a in actions), actions[-1])
    resolved: dict[str, str] = {}
    for p in pulls:
        resolved.update(p.resolved)
    last = pulls[-1]
    return PullResult(
        last.remote,
        last.branch,
        action,
        last.commit,
        tuple(sorted({s for p in pulls for s in p.sessions})),
        resolved,
        next((p.forked for p in pulls if p.forked is not None), None),
        changes=tuple(c for p in pulls for c in p.changes),
        files=tuple(f for p in pulls for f in p.files),
    )


def sync(
    store: Store,
    remote: str = "origin",
    *,
    keep: str | None = None,
    fork_theirs: str | None = None,
    author: Identity | str | None = None,
    attempts: int = 3,
    on_pull: Callable[[PullResult], None] | None = None,
) -> tuple[PullResult, PushResult]:
    """Pull (see :func:`pull`), then push; pull again when the remote moved in between.

    Args:
        store: The store.
        remote: A remote name.
        keep: As for :func:`pull`.
        fork_theirs: As for :func:`pull`.
        author: As for :func:`pull`.
        attempts: Pull-and-push rounds before giving up when other machines keep pushing.
        on_pull: Called with each pull's result as soon as it is done (so what a pull set
            aside is reported even if a later step fails).

    Returns:
        ``(pull result, push result)``; with several rounds, the pulls combined.

    Raises:
        SyncConflictError: From a pull (nothing pushed; nothing changed by that pull).
        PushRejectedError: The remote moved before each of the ``attempts`` pushes.
    """
    if attempts < 1:
        raise ValueError("attempts must be 1 or more")
    pulls: list[PullResult] = []
    for attempt in range(1, attempts + 1):
        pulled = pull(store, remote, keep=keep, fork_theirs=fork_theirs, author=author)
        pulls.append(pulled)
        if on_pull is not None:
            on_pull(pulled)
        try:
            pushed = push(store, remote)
        except PushRejectedError:
            if attempt == attempts:
                raise
            continue
        return _combine(pulls), pushed
    raise AssertionError("unreachable")  # pragma: no cover


def list_set_aside(store: Store, session: str | None = None) -> list[SetAside]:
    """The versions sync set aside (``refs/mdsessions/set-aside/*``), newest first.

    Args:
        store: The store.
        session: Only this session's (``project/session``); ``"_store"`` for store files.

    Returns:
        Each with its ref, commit, time, the session's status in it and how to get it back.
    """
    git = store.git
    found = []
    for name, sha in git.refs(SET_ASIDE_PREFIX).items():
        ours, key = parse_set_aside_ref(name)
        if not ours:
            continue
        if session is not None and (key or STORE_FILES) != session:
            continue
        status = None
        paths: tuple[str, ...] = ()
        if key is not None:
            try:
                manifest = _manifest_at(store, sha, f"{_key_rel(store, key)}/{MANIFEST}")
            except InvalidIdentifierError:
                continue
            status = manifest.status.value if manifest else None
        else:
            paths = (CONFIG_FILE,)
        info = git.log(rev=sha, max_count=1)
        when = info[0].time if info else None
        found.append(SetAside(name, sha, key, paths, None, status, False, when))
    found.sort(key=lambda s: (s.time or "", s.ref), reverse=True)
    return found
