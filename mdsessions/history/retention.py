"""Retention: archive, unarchive, delete and clean up sessions, and bring them back.

Every one of these is one commit (or nothing), so git keeps what they removed:

* ``archive``: a session's folder moves to ``{project}/archive/{session}/`` (git sees a
  rename); ``list``, ``inbox`` and the session index only read ``sessions/``.
  ``Mdsessions-Kind: archive``; ``unarchive`` moves it back (``unarchive``).
* ``delete``: a session's files are removed in one commit (``Mdsessions-Kind: delete``);
  the commit before it still holds them, and a bundle written first
  (:func:`~mdsessions.history.exchange.export_bundle`) holds their whole history.
* :func:`cleanup` picks sessions by age, status and ``keep_last`` and archives or deletes
  them in one commit (``dry_run`` says which, changing nothing).
* :func:`bring_back` puts an archived session back (a move) or a deleted one (its files as
  at the commit before its deletion, or as in a bundle), byte for byte, in one commit.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from mdsessions.cache.sessions import SessionSummary, phase_outputs, summarize
from mdsessions.documents.frontmatter import load_as
from mdsessions.errors import (
    DocumentError,
    InvalidArgumentError,
    InvalidIdentifierError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
)
from mdsessions.git import extract
from mdsessions.history.common import _blob, _decode, _manifest_at, _short
from mdsessions.history.exchange import ExportResult, _bundle
from mdsessions.history.restore import RestoreResult
from mdsessions.models.results import Result
from mdsessions.models.schema import SessionManifest, utc_now
from mdsessions.store.commits import commit_message
from mdsessions.store.paths import ARCHIVE_DIR, FEEDBACK, MANIFEST
from mdsessions.store.store import Identity, InboxItem, Session, Store, check_id

__all__ = [
    "BringBackResult",
    "CleanupResult",
    "MoveResult",
    "archive",
    "archived_inbox",
    "archived_sessions",
    "bring_back",
    "cleanup",
    "delete",
    "parse_age",
    "unarchive",
]

_AGE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdwy])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class MoveResult(Result):
    """What :func:`archive`, :func:`unarchive` or :func:`delete` committed."""

    action: Literal["archive", "unarchive", "delete"]
    """What was done."""
    sessions: tuple[str, ...]
    """``project/session`` of each session moved or deleted."""
    commit: str
    """Full id of the one commit."""
    bundle: ExportResult | None = None
    """The verified bundle of the deleted sessions' history written first, if asked for."""


class CleanupResult(Result):
    """What :func:`cleanup` chose and did."""

    action: Literal["archive", "delete"]
    """What was (or would be) done."""
    dry_run: bool
    """``true``: nothing was changed; ``sessions`` is what would be."""
    sessions: tuple[str, ...]
    """``project/session`` of each session chosen."""
    kept: int
    """Old sessions matching the filters left alone by ``keep_last``."""
    commit: str | None = None
    """Full id of the one commit (``null`` on a dry run or when nothing was chosen)."""
    bundle: ExportResult | None = None
    """The verified bundle written before a delete, if asked for."""


class BringBackResult(RestoreResult):
    """What ``restore`` did: :func:`~mdsessions.history.restore` or :func:`bring_back`.

    For a session brought back, ``target_commit`` is the commit whose files were written
    back (in this store, or the bundle's tip; for an archived one, the commit before the
    move), ``written`` every file of the session and ``phase`` ``null``.
    """

    source: Literal["commit", "archive", "history", "bundle"] = "commit"
    """Where the files came from: a commit named (a restore), the archive folder, the
    commit before the session's deletion, or a bundle."""


def parse_age(value: str | float) -> float:
    """An age such as ``30d``, ``12h``, ``2w``, ``90m``, ``45s``, ``1y`` (365 days), or seconds.

    Returns:
        Seconds.

    Raises:
        InvalidArgumentError: Not an age (a ``ValueError``).
    """
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _AGE_RE.fullmatch(value.strip().lower())
        if match is None:
            raise InvalidArgumentError(
                f"invalid age {value!r}: expected a number and a unit, e.g. 30d, 12h, 2w, 90m, 1y"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise InvalidArgumentError(f"invalid age {value!r}: expected 0 or more")
    return seconds


def _archive_rel(store: Store, project_id: str, session_id: str) -> str:
    return store.rel(
        check_id(project_id, "project id"), ARCHIVE_DIR, check_id(session_id, "session id")
    )


def archived_sessions(store: Store, project: str | None = None) -> list[SessionSummary]:
    """The sessions in the projects' ``archive/`` folders, as ``list`` shows sessions.

    Args:
        store: The store.
        project: Only this project's.

    Returns:
        Summaries ordered by project, creation time, session id (``path`` the manifest in
        ``archive/``; a manifest that does not parse is left out).

    Raises:
        InvalidIdentifierError: A bad project id.
    """
    base = store.root if store.projects_dir == "." else store.root / store.projects_dir
    pattern = f"{check_id(project, 'project id') if project else '*'}/{ARCHIVE_DIR}/*/{MANIFEST}"
    out = []
    for path in base.glob(pattern):
        rel = path.relative_to(store.root).as_posix()
        try:
            out.append(summarize(store.read_doc(rel, SessionManifest), rel))
        except (DocumentError, OSError):
            continue
    out.sort(key=lambda m: (m.project_id, m.created, m.session_id))
    return out


def archived_inbox(store: Store, project: str | None = None) -> list[InboxItem]:
    """The phases of archived sessions awaiting review, as ``inbox`` shows them, oldest first.

    Args:
        store: The store.
        project: Only this project's.

    Returns:
        One item per waiting phase (paths in ``archive/``).

    Raises:
        InvalidIdentifierError: A bad project id.
    """
    items = []
    for summary in archived_sessions(store, project):
        folder = summary.path.rsplit("/", 1)[0]
        for number, name, directory, completed in summary.waiting:
            items.append(
                InboxItem(
                    project_id=summary.project_id,
                    session_id=summary.session_id,
                    phase=number,
                    phase_name=name,
                    waiting_since=completed,
                    feedback=f"{folder}/{directory}/{FEEDBACK}",
                    outputs=phase_outputs(store.root, f"{folder}/{directory}"),
                )
            )
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    items.sort(key=lambda i: (i.waiting_since or epoch, i.project_id, i.session_id, i.phase))
    return items


def _find_archived(store: Store, ref: str) -> tuple[str, str]:
    project, _, sid = ref.rpartition("/")
    found = [
        a
        for a in archived_sessions(store, project or None)
        if a.session_id == sid or (not project and a.session_id.startswith(sid))
    ]
    exact = [a for a in found if a.session_id == sid]
    found = exact or found
    if len(found) != 1:
        what = "no archived session" if not found else "several archived sessions match"
        close = ", ".join(f"{a.project_id}/{a.session_id}" for a in found[:5])
        raise SessionNotFoundError(f"{what} {ref!r}" + (f" ({close})" if close else ""))
    return found[0].project_id, found[0].session_id


def _move(
    store: Store,
    moves: Sequence[tuple[str, str, str, str]],
    action: Literal["archive", "unarchive"],
    who: Identity,
) -> str:
    """One commit moving folders: (project, session, from folder, to folder) each."""
    git = store.git
    head = git.head()
    if head is None:
        raise StoreError(f"{store.root}: no commit yet")
    files: dict[str, bytes | None] = {}
    for _project, _session, old, new in moves:
        if (store.root / new).exists() or git.entry(head, new) is not None:
            raise SessionExistsError(f"{new} exists already; nothing was moved")
        tree = git.list_tree(head, old)
        if f"{old}/{MANIFEST}" not in tree:
            raise SessionNotFoundError(f"{old} has no committed {MANIFEST}; record it first")
        for rel, blob_id in tree.items():
            files[rel] = None
            files[new + rel[len(old) :]] = _blob(git, blob_id)
    refs = [f"{p}/{s}" for p, s, _old, _new in moves]
    one = len(moves) == 1
    verb = "archived" if action == "archive" else "unarchived"
    manifest = _manifest_at(store, head, f"{moves[0][2]}/{MANIFEST}") if one else None
    sha = store.commit(
        files,
        message=commit_message(
            f"{action}({refs[0]}): {verb}" if one else f"{action}: {len(refs)} sessions {verb}",
            "" if one else "Sessions: " + ", ".join(refs) + ".",
            kind=action,
            project=moves[0][0] if one else None,
            session=moves[0][1] if one else None,
            session_status=manifest.status.value if manifest else None,
        ),
        author=who,
    )
    if sha is None:  # pragma: no cover - a move always changes the tree
        raise StoreError(f"{action} recorded nothing")
    return sha


@contextlib.contextmanager
def _not_running(store: Store, ids: Iterable[tuple[str, str]]) -> Iterator[None]:
    """Hold each session's run lock while it moves: a runner running it refuses the move.

    A runner holds its session's lock while its agents work; moving the folder under it
    would leave its next save without a session. Taken before the writer lock, in the
    runner's own order.

    Raises:
        SessionLockedError: A runner is running one of the sessions (nothing changed).
    """
    with contextlib.ExitStack() as stack:
        for project_id, session_id in sorted(set(ids)):
            stack.enter_context(Session(store, project_id, session_id).run_lock(0.0))
        yield


def archive(
    store: Store, sessions: Sequence[Session], *, author: Identity | str | None = None
) -> MoveResult:
    """Move sessions to their project's ``archive/`` folder, in one commit.

    Args:
        store: The store.
        sessions: Live sessions (their committed files move; an unrecorded edit refuses).
        author: Commit author (default: git's user, else the login).

    Returns:
        The sessions and the commit (``Mdsessions-Kind: archive``).

    Raises:
        InvalidArgumentError: No session given.
        SessionExistsError: An archived session of the same id exists (nothing changed).
        UnrecordedEditError: A session has an unrecorded edit (nothing changed).
        SessionLockedError: A runner is running one of them (nothing changed).
    """
    if not sessions:
        raise InvalidArgumentError("no session to archive")
    moves = [
        (s.project_id, s.session_id, s.rel, _archive_rel(store, s.project_id, s.session_id))
        for s in sessions
    ]
    with _not_running(store, [(p, s) for p, s, _a, _b in moves]), store.writing():
        sha = _move(store, moves, "archive", store.person(author))
    return MoveResult(action="archive", sessions=tuple(s.ref for s in sessions), commit=sha)


def unarchive(
    store: Store, refs: Sequence[str], *, author: Identity | str | None = None
) -> MoveResult:
    """Move archived sessions back to their project's ``sessions/`` folder, in one commit.

    Args:
        store: The store.
        refs: ``PROJECT/SESSION``, a bare session id or a unique prefix of an archived one.
        author: Commit author (default: git's user, else the login).

    Returns:
        The sessions and the commit (``Mdsessions-Kind: unarchive``).

    Raises:
        SessionNotFoundError: A name matches no archived session, or several.
        SessionExistsError: A live session of the same id exists (nothing changed).
    """
    if not refs:
        raise InvalidArgumentError("no session to unarchive")
    found = [_find_archived(store, ref) for ref in refs]
    moves = [(p, s, _archive_rel(store, p, s), store.session_rel(p, s)) for p, s in found]
    with _not_running(store, found), store.writing():
        sha = _move(store, moves, "unarchive", store.person(author))
    return MoveResult(
        action="unarchive",
        sessions=tuple(f"{p}/{s}" for p, s in found),
        commit=sha,
    )


def delete(
    store: Store,
    sessions: Sequence[Session],
    *,
    bundle: str | os.PathLike[str] | None = None,
    author: Identity | str | None = None,
) -> MoveResult:
    """Delete sessions in one commit; they stay in history (and in ``bundle``, if given).

    Args:
        store: The store.
        sessions: Live sessions.
        bundle: First write their full history to this verified bundle
            (:func:`~mdsessions.history.exchange.export_bundle`); if that fails nothing
            is deleted.
        author: Commit author (default: git's user, else the login).

    Returns:
        The sessions, the commit (``Mdsessions-Kind: delete``) and the bundle.

    Raises:
        InvalidArgumentError: No session given.
        UnrecordedEditError: A session has an unrecorded edit (nothing changed).
        SessionLockedError: A runner is running one of them (nothing changed).
        StoreError: The bundle could not be written or verified (nothing changed).
    """
    targets = [(s.project_id, s.session_id, s.rel) for s in sessions]
    return _delete(store, targets, bundle, store.person(author))


def _delete(
    store: Store,
    targets: Sequence[tuple[str, str, str]],
    bundle: str | os.PathLike[str] | None,
    who: Identity,
) -> MoveResult:
    """One commit deleting session folders: (project, session, folder) each."""
    if not targets:
        raise InvalidArgumentError("no session to delete")
    git = store.git
    refs = [f"{p}/{s}" for p, s, _rel in targets]
    with _not_running(store, [(p, s) for p, s, _rel in targets]), store.writing():
        head = git.head()
        if head is None:
            raise StoreError(f"{store.root}: no commit yet")
        made = None
        if bundle is not None:
            made = _bundle(store, {f"{p}/{s}": rel for p, s, rel in targets}, bundle, head)
        files: dict[str, bytes | None] = {}
        for _p, _s, folder in targets:
            for rel in git.list_tree(head, folder):
                files[rel] = None
        one = len(targets) == 1
        body = [] if one else ["Sessions: " + ", ".join(refs) + "."]
        body.append(f"Bring back with: mdsessions restore {refs[0]} (from the commit before this).")
        if made is not None and made.path is not None:
            body.append(f"History bundled first in {made.path.name} ({made.commit}).")
        sha = store.commit(
            files,
            message=commit_message(
                f"delete({refs[0]}): deleted" if one else f"delete: {len(refs)} sessions deleted",
                "\n\n".join(body),
                kind="delete",
                project=targets[0][0] if one else None,
                session=targets[0][1] if one else None,
            ),
            author=who,
        )
        if sha is None:
            raise StoreError("nothing to delete: the sessions have no committed files")
    return MoveResult(action="delete", sessions=tuple(refs), commit=sha, bundle=made)


def cleanup(
    store: Store,
    *,
    older_than: str | float,
    action: Literal["archive", "delete"],
    status: Sequence[str] = (),
    project: str | None = None,
    keep_last: int = 0,
    bundle: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    archived: bool = False,
    now: _dt.datetime | None = None,
    author: Identity | str | None = None,
) -> CleanupResult:
    """Archive or delete old sessions in one commit (or say which, with ``dry_run``).

    A session is old when its manifest's ``updated`` time is more than ``older_than`` ago.

    Args:
        store: The store.
        older_than: An age (``30d``, ``12h``, ``2w``; or seconds).
        action: ``archive`` or ``delete``.
        status: Only sessions in one of these statuses.
        project: Only this project.
        keep_last: Per project, never touch the N most recently updated sessions that
            match ``status`` (old or not).
        bundle: Before a delete, write the chosen sessions' history to this verified bundle.
        dry_run: Choose, change nothing.
        archived: Choose among the archived sessions instead (``delete`` only): archive
            after a month, delete from the archive after a year.
        now: The current time (UTC; for tests).
        author: Commit author (default: git's user, else the login).

    Returns:
        The sessions chosen, how many ``keep_last`` spared, the commit and the bundle.

    Raises:
        InvalidArgumentError: A bad age, action or count, or a bundle with ``archive``.
    """
    seconds = parse_age(older_than)
    if action not in ("archive", "delete"):
        raise InvalidArgumentError(f"invalid action {action!r}: expected archive or delete")
    if keep_last < 0:
        raise InvalidArgumentError("keep_last must be 0 or more")
    if bundle is not None and action != "delete":
        raise InvalidArgumentError("a bundle is written before a delete only (use --delete)")
    if archived and action != "delete":
        raise InvalidArgumentError("archived sessions can only be deleted (use --delete)")
    cutoff = (now or utc_now()) - _dt.timedelta(seconds=seconds)
    listed = archived_sessions(store, project) if archived else store.list_sessions(project)
    manifests = [m for m in listed if not status or m.status.value in status]
    newest: dict[str, list[str]] = {}
    for m in sorted(manifests, key=lambda m: (m.updated, m.session_id), reverse=True):
        newest.setdefault(m.project_id, []).append(m.session_id)
    spared = {(p, s) for p, ids in newest.items() for s in ids[:keep_last]}
    old = [m for m in manifests if m.updated < cutoff]
    chosen = [m for m in old if (m.project_id, m.session_id) not in spared]
    refs = tuple(m.ref for m in chosen)
    kept = len(old) - len(chosen)
    if dry_run or not chosen:
        return CleanupResult(action=action, dry_run=dry_run, sessions=refs, kept=kept)
    if action == "archive":
        done = archive(
            store, [Session(store, m.project_id, m.session_id) for m in chosen], author=author
        )
    else:
        targets = [(m.project_id, m.session_id, m.path.rsplit("/", 1)[0]) for m in chosen]
        done = _delete(store, targets, bundle, store.person(author))
    return CleanupResult(
        action=action,
        dry_run=False,
        sessions=refs,
        kept=kept,
        commit=done.commit,
        bundle=done.bundle,
    )


def _manifest_of(data: bytes | None, rel: str) -> SessionManifest | None:
    if data is None:
        return None
    try:
        return load_as(SessionManifest, _decode(data, rel), path=rel)
    except DocumentError:
        return None


def _deleted_at(store: Store, project_id: str, session_id: str) -> tuple[str, str]:
    """The commit before a session's latest deletion and the folder it was in then.

    A move to or from the archive deletes one folder and adds the other: the session still
    exists then, so only a commit after which neither folder holds it counts.
    """
    git = store.git
    live, archived = (
        store.session_rel(project_id, session_id),
        _archive_rel(store, project_id, session_id),
    )
    paths = [f"{live}/{MANIFEST}", f"{archived}/{MANIFEST}"]
    for info in git.log(paths, extra=["--diff-filter=D"]):
        if any(git.entry(info.sha, p) is not None for p in paths):
            continue  # a move between sessions/ and archive/
        before = git.resolve(f"{info.sha}^")
        for folder in (live, archived):
            if git.entry(before, f"{folder}/{MANIFEST}") is not None:
                return before, folder
    raise SessionNotFoundError(
        f"no session {project_id}/{session_id} in the store or its history "
        "(name it PROJECT/SESSION as it was)"
    )


def _from_bundle(
    store: Store, bundle: Path, project_id: str, session_id: str
) -> tuple[str, dict[str, bytes]]:
    """The session's files in a bundle (from its ``sessions/`` or ``archive/`` folder)."""
    rel = store.session_rel(project_id, session_id)
    for folder in (rel, _archive_rel(store, project_id, session_id)):
        got = extract.read_bundle_files(bundle, folder)
        if got is not None:
            tip, files = got
            return tip, {rel + path[len(folder) :]: data for path, data in files.items()}
    raise SessionNotFoundError(f"{bundle}: session {project_id}/{session_id} is not in the bundle")


def _unarchived(store: Store, moved: MoveResult) -> BringBackResult:
    back = store.session_rel(*moved.sessions[0].split("/"))
    manifest = _manifest_at(store, moved.commit, f"{back}/{MANIFEST}")
    return BringBackResult(
        session=moved.sessions[0],
        source="archive",
        target=store.git.resolve(f"{moved.commit}^"),
        phase=None,
        commit=moved.commit,
        written=tuple(sorted(store.git.list_tree(moved.commit, back))),
        status=manifest.status.value if manifest else None,
    )


def bring_back(
    store: Store,
    ref: str,
    *,
    bundle: str | os.PathLike[str] | None = None,
    author: Identity | str | None = None,
) -> BringBackResult:
    """Bring an archived or deleted session back into ``sessions/``, in one commit.

    * archived: moved back (as :func:`unarchive`);
    * deleted, ``bundle`` not given: its files as at the commit before its deletion
      (``Mdsessions-Kind: restore``, ``Mdsessions-Restored-From``);
    * ``bundle`` given: its files as at the bundle's tip (a bundle from
      :func:`~mdsessions.history.exchange.export_bundle` or ``delete(bundle=…)``).

    The files come back byte for byte as they were.

    Args:
        store: The store.
        ref: ``PROJECT/SESSION`` (a deleted session), or a name of an archived one.
        bundle: A bundle holding the session.
        author: Commit author (default: git's user, else the login).

    Returns:
        Where it came from (``source``), the commit whose files were written back
        (``target``), the new commit and the files written.

    Raises:
        SessionExistsError: The session is live already.
        SessionNotFoundError: Not archived, not in history, or not in the bundle.
        StoreError: The bundle is not one git can read.
    """
    project_id, _, session_id = ref.rpartition("/")
    try:
        live = store.find_session(ref)
    except (SessionNotFoundError, InvalidIdentifierError):
        live = None
    if live is not None:
        raise SessionExistsError(
            f"session {live.ref} is in the store; to go back to a checkpoint, name the "
            "commit (mdsessions restore SESSION COMMIT)"
        )
    if bundle is None:
        try:
            moved = unarchive(store, [ref], author=author)
        except SessionNotFoundError:
            if not project_id:
                raise SessionNotFoundError(
                    f"no archived session {ref!r}; name a deleted session as PROJECT/SESSION"
                ) from None
        else:
            return _unarchived(store, moved)
    if not project_id:
        raise InvalidArgumentError(f"name the session as PROJECT/SESSION, not {ref!r}")
    rel = store.session_rel(project_id, session_id)
    who = store.person(author)
    with store.writing():
        if bundle is not None:
            source_commit, files = _from_bundle(
                store, Path(bundle).resolve(), project_id, session_id
            )
            source: Literal["history", "bundle"] = "bundle"
        else:
            source_commit, old = _deleted_at(store, project_id, session_id)
            files = {
                rel + path[len(old) :]: _blob(store.git, sha)
                for path, sha in store.git.list_tree(source_commit, old).items()
            }
            source = "history"
        head = store.git.head()
        if head is not None and store.git.entry(head, f"{rel}/{MANIFEST}") is not None:
            raise SessionExistsError(f"session {ref} is in the store already")
        hidden = _archive_rel(store, project_id, session_id)
        if head is not None and store.git.entry(head, f"{hidden}/{MANIFEST}") is not None:
            raise SessionExistsError(
                f"session {ref} is archived ({hidden}); bring it back with "
                f"mdsessions unarchive {ref}"
            )
        manifest = _manifest_of(files.get(f"{rel}/{MANIFEST}"), f"{rel}/{MANIFEST}")
        sha = store.commit(
            dict(files),
            message=commit_message(
                f"restore({ref}): brought back from "
                + (f"history at {_short(source_commit)}" if bundle is None else Path(bundle).name),
                kind="restore",
                project=project_id,
                session=session_id,
                session_status=manifest.status.value if manifest else None,
                restored_from=source_commit,
            ),
            author=who,
        )
        if sha is None:  # pragma: no cover - the folder was absent
            raise StoreError(f"bringing back {ref} recorded nothing")
    return BringBackResult(
        session=ref,
        source=source,
        target=source_commit,
        phase=None,
        commit=sha,
        written=tuple(sorted(files)),
        status=manifest.status.value if manifest else None,
    )
