"""Planned writes: a session write is read, built and rendered first, then committed.

Rendering is the slow part of a write, so a :class:`~mdsessions.store.session.Session` plans
it (:func:`plan`) before it takes the writer lock, and other writers wait only for the commit
itself. A plan stays valid only while nothing changed underneath it:

* no entry of the session's folders changed while it was made (:func:`fingerprint`), else it
  is made again under the lock;
* the branch did not move to a commit that changed the session's files (someone's own
  ``git commit``): the git layer raises :class:`~mdsessions.errors.BranchMovedError` and the
  write is planned again on top of that commit, up to :data:`REPLANS` times.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mdsessions.documents.frontmatter import Document
from mdsessions.errors import BranchMovedError, MdsessionsError
from mdsessions.git.repo import Identity
from mdsessions.models.schema import Checkpoint, SessionManifest, utc_now
from mdsessions.store.commits import commit_message

if TYPE_CHECKING:
    from mdsessions.store.session import Session
    from mdsessions.store.store import Store

__all__ = ["REPLANS", "Plan", "apply", "fingerprint", "plan", "write_planned"]

#: Times a session write is planned again when a commit made outside mdsessions changed its
#: files while the write was being made (then :class:`BranchMovedError` is raised).
REPLANS = 3

T = TypeVar("T")

_log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int, int, int], ...]


@dataclass(frozen=True)
class Plan:
    """A rendered write: file bytes (``None``: delete), their documents, the commit message."""

    raw: dict[str, bytes | None]
    docs: dict[str, Document]
    message: str
    author: Identity | None
    check_edits: bool
    planned_on: str | None = None
    """The branch's commit before the plan read the session's files (see ``GitRepo.commit``)."""
    redacted: tuple[tuple[Document, Document], ...] = ()
    """(document given, document committed) for each document redaction changed."""

    def committed(self, given: T) -> T:
        """What was committed for ``given``: its redacted copy, or ``given`` itself."""
        for before, after in self.redacted:
            if before is given:
                return after  # type: ignore[return-value]
        return given


def plan(
    session: Session,
    files: dict[str, Document | bytes | None],
    manifest: SessionManifest,
    subject: str,
    *,
    author: Identity | None = None,
    check_edits: bool = True,
    write_manifest: bool = True,
    **trailers: Any,
) -> Plan:
    """Render what a session write commits (maybe before the lock: see :func:`write_planned`).

    Args:
        session: The session written.
        files: Store-relative path → document, raw bytes or ``None`` (delete); the manifest
            is added (with ``updated`` set to now) unless ``write_manifest`` is false.
        manifest: The session's manifest after the write.
        subject: The commit subject.
        author: Commit author (default: the store's runner identity).
        check_edits: Refuse to overwrite a person's unrecorded edit of these files.
        write_manifest: Write the manifest too.
        **trailers: ``kind`` and the other trailers of
            :func:`~mdsessions.store.commits.commit_message`; project, session and the
            session status are added.

    Returns:
        The plan.

    Raises:
        DocumentError: A document does not render (see ``Store.render``).
    """
    if write_manifest:
        manifest.updated = utc_now()
        files[session.manifest_rel] = manifest
    contexts: dict[str, Mapping[str, Any]] = {}
    for rel, doc in files.items():
        if isinstance(doc, Checkpoint):
            nxt = ""
            if doc.next_phase is not None:
                for p in manifest.phases:
                    if p.number == doc.next_phase:
                        nxt = p.name
            contexts[rel] = {"next_name": nxt}
    raw, docs = session.store._render_files(files, contexts)
    redacted = tuple(
        (given, doc)
        for rel, doc in docs.items()
        if (given := files[rel]) is not doc and given is not None and not isinstance(given, bytes)
    )
    message = commit_message(
        subject,
        kind=trailers.pop("kind"),
        project=session.project_id,
        session=session.session_id,
        **trailers,
        session_status=manifest.status.value,
    )
    return Plan(raw, docs, message, author, check_edits, redacted=redacted)


def apply(store: Store, planned: Plan) -> str | None:
    """Commit a plan (under the writer lock).

    Returns:
        The new commit id, or ``None`` when nothing changed.

    Raises:
        BranchMovedError: The branch moved since ``planned.planned_on`` to a commit that
            changed the planned files.
        UnrecordedEditError: A planned file holds a person's unrecorded edit.
    """
    return store._commit_rendered(
        planned.raw,
        planned.docs,
        message=planned.message,
        author=planned.author,
        check_edits=planned.check_edits,
        planned_on=planned.planned_on,
    )


def fingerprint(folder: Path) -> Fingerprint:
    """The identity of every entry in a session folder and its phase folders.

    Args:
        folder: The session folder.

    Returns:
        (path, inode, size, mtime ns, ctime ns), sorted: any write to the session, by anyone,
        changes it.
    """
    out: list[tuple[str, int, int, int, int]] = []
    pending = [str(folder)]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            out.append((entry.path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            if entry.is_dir(follow_symlinks=False) and current == str(folder):
                pending.append(entry.path)
    out.sort()
    return tuple(out)


def write_planned(session: Session, make_plan: Callable[[SessionManifest], tuple[T, Plan]]) -> T:
    """Plan a write (read the session, build and render its documents), then commit it.

    The plan is made before taking the writer lock when this thread does not hold it yet,
    so other writers wait only for the commit itself; it is used only if no entry of the
    session's folders changed meanwhile (:func:`fingerprint`), else it is made again
    under the lock. Errors come from the plan made under the lock. The plan is committed
    with ``session._apply``.

    Args:
        session: The session written.
        make_plan: Builds the write from the session's current manifest: returns what the
            write returns to its caller, and the :class:`Plan`.

    Returns:
        What ``make_plan`` returned with its :class:`Plan`.

    Raises:
        BranchMovedError: Commits made outside mdsessions changed the session's files
            while the write was planned, :data:`REPLANS` + 1 times in a row.
    """
    store = session.store
    git = store.git

    def make() -> tuple[T, Plan]:
        # The branch is read before the files: a commit someone makes after this point is
        # seen by GitRepo.commit, which makes the plan again if it changed these files.
        planned_on = git.read_ref(f"refs/heads/{git.branch}")
        result, planned = make_plan(session.manifest())
        return result, dataclasses.replace(planned, planned_on=planned_on)

    early: tuple[Fingerprint, T, Plan] | None = None
    if not git.holds_writer_lock():
        try:
            before = fingerprint(session.path)
            early = (before, *make())
        except (MdsessionsError, OSError, ValueError):
            early = None  # planned again under the lock, which raises it
        else:
            # Blobs written and the planned-on trees read now: other writers wait only
            # for what depends on the branch.
            git.prepare(early[2].raw, early[2].planned_on)
    with store.writing():
        if early is not None and fingerprint(session.path) == early[0]:
            result, planned = early[1], early[2]
        else:
            result, planned = make()
        for attempt in range(REPLANS + 1):
            try:
                session._apply(planned)
                return planned.committed(result)
            except BranchMovedError:
                # Someone's own git commit changed this session's files meanwhile: their
                # version is the new truth; plan again on top of it.
                if attempt == REPLANS:
                    raise
                _log.info(
                    "%s: a commit made beside mdsessions changed the session; planned again",
                    session.ref,
                    extra={"operation": "replan", "session": session.ref, "attempt": attempt + 1},
                )
                result, planned = make()
        raise AssertionError("unreachable")
