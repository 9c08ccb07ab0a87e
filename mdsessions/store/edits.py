"""People's edits: files in the store that differ from the last commit, and recording them.

A reviewer edits ``user_feedback.md`` (or any document) in an editor; :func:`record_edits`
commits the files that validate as that person's commit, applies a feedback file's decision
to the session manifest in the same commit (:func:`mdsessions.models.state.apply_feedback`),
and leaves files that do not validate on disk, uncommitted, with their errors.

A person's file is committed **byte for byte as saved**: recording never rewrites a file an
editor may hold (the only rewrite left is the redaction of a secret, which the store makes in
every file it commits). The decision's time is the commit's; its reviewer is the commit's
author (the file's ``reviewer:`` when the person wrote one). Saving the same bytes again (an
editor's ``:w`` after the recording) is no edit, so it makes no commit. A feedback file
whose body contradicts its frontmatter (:func:`mdsessions.documents.feedback.check_feedback_agrees`)
does not validate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mdsessions.documents.feedback import check_feedback_agrees
from mdsessions.documents.frontmatter import Document, loads
from mdsessions.errors import DocumentError, UnrecordedEditError
from mdsessions.git.repo import Identity
from mdsessions.models import state
from mdsessions.models.results import Result
from mdsessions.models.schema import UserFeedback, utc_now
from mdsessions.store.commits import CommitKind, commit_message
from mdsessions.store.config import is_editor_temp
from mdsessions.store.paths import FEEDBACK
from mdsessions.store.session import Session

if TYPE_CHECKING:
    from mdsessions.store.store import Store

__all__ = ["EditedFile", "check_edited", "record_edits", "unrecorded_edits"]


class EditedFile(Result):
    """A file in the store that differs from the last commit (a person's unrecorded edit)."""

    path: str
    """Store-relative path."""
    change: str
    """``modified``, ``added`` or ``deleted``."""
    error: str | None = None
    """Why the file does not validate, or ``null`` when it does."""


def unrecorded_edits(store: Store) -> list[EditedFile]:
    """The work of :meth:`mdsessions.store.store.Store.unrecorded_edits`.

    Editors' temp and backup files (:data:`mdsessions.store.config.EDITOR_TEMP_PATTERNS`)
    are never a person's edit, whether or not the store's ``.gitignore`` lists them.
    """
    base = "" if store.projects_dir == "." else store.projects_dir
    proc = store.git.git(
        "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", base or "."
    )
    out = []
    entries = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(entries):
        item = entries[i]
        i += 1
        if len(item) < 4:
            continue
        code, rel = item[:2], item[3:]
        if code[0] == "R":
            i += 1
        if is_editor_temp(rel):
            continue  # an editor's swap/backup file, even where .gitignore lacks it
        if code == "??":
            change = "added"
        elif "D" in code:
            change = "deleted"
        else:
            change = "modified"
        error = None
        if change != "deleted" and rel.endswith(".md"):
            try:
                check_edited(store, rel)
            except (DocumentError, OSError) as exc:
                error = str(exc)
        out.append(EditedFile(path=rel, change=change, error=error))
    return out


def check_edited(store: Store, rel: str) -> None:
    """Check that a document a person edited validates as it is on disk.

    Args:
        store: The store.
        rel: The document's store-relative path (a ``.md`` file).

    Raises:
        DocumentError: Naming the file, the line and the field: it does not parse, or it is
            a feedback file whose body contradicts its frontmatter.
        OSError: It cannot be read.
    """
    text = store.read_text(rel)
    loads(text, path=rel)
    if rel.rsplit("/", 1)[-1] == FEEDBACK:
        check_feedback_agrees(text, rel)


def record_edits(
    store: Store,
    paths: Sequence[str] | None = None,
    *,
    author: Identity | str | None = None,
    message: str | None = None,
) -> tuple[str | None, list[EditedFile]]:
    """The work of :meth:`mdsessions.store.store.Store.record_edits`."""
    with store.writing():
        edits = store.unrecorded_edits()
        edited = {e.path for e in edits}
        if paths is not None:
            wanted = {p.strip("/") for p in paths}
            edits = [e for e in edits if e.path in wanted]
        rejected = [e for e in edits if e.error]
        valid = [e for e in edits if not e.error]
        if not valid:
            return None, rejected
        files: dict[str, Document | bytes | None] = {}
        reviewers: list[str] = []
        sessions: dict[str, tuple[Session, list[UserFeedback]]] = {}
        as_read: dict[str, tuple[bytes, os.stat_result]] = {}
        for edit in valid:
            if edit.change == "deleted":
                files[edit.path] = None
                continue
            with (store.root / edit.path).open("rb") as fh:
                st = os.fstat(fh.fileno())
                files[edit.path] = data = fh.read()
            as_read[edit.path] = (data, st)
            if edit.path.endswith("/" + FEEDBACK):
                fb = store.read_doc(edit.path, UserFeedback)
                session = Session(store, fb.project_id, fb.session_id)
                sessions.setdefault(session.rel, (session, []))[1].append(fb)
                if fb.reviewer:
                    reviewers.append(fb.reviewer)
        contexts: dict[str, Mapping[str, Any]] = {}
        decisions = []
        for session, feedbacks in sessions.values():
            if session.manifest_rel in edited:
                raise UnrecordedEditError(
                    f"{session.manifest_rel} has edits that are not recorded yet, and "
                    "recording the review must update it; record the manifest first "
                    f"(mdsessions record {session.manifest_rel}) or discard the edit "
                    "(git restore), then record the review"
                )
            manifest = session.manifest()
            for fb in feedbacks:
                session.phase_entry(fb.phase, manifest)  # PhaseNotFoundError
                state.apply_feedback(manifest, fb.phase, fb.decision())
                decisions.append(f"phase {fb.phase} {fb.decision().value}")
            manifest.updated = utc_now()
            files[session.manifest_rel] = manifest
        who = store.person(author, reviewers)
        refs = ", ".join(sorted({s.ref for s, _ in sessions.values()}))
        subject = message or (
            f"{CommitKind.USER_FEEDBACK}({refs}): " + "; ".join(decisions)
            if decisions
            else f"edit: {len(valid)} file(s) recorded by {who.name}"
        )
        # Session trailers only when the commit touches exactly one session.
        first = next(iter(sessions.values())) if len(sessions) == 1 else None
        # A file committed as it was read is not written again (only its index entry):
        # an editor's newer save is never replaced by the bytes read before it.
        in_place = {rel: st for rel, (data, st) in as_read.items() if files.get(rel) == data}
        sha = store.commit(
            files,
            in_place=in_place,
            message=commit_message(
                subject,
                "\n".join(f"- {e.change}: {e.path}" for e in valid),
                kind=CommitKind.USER_FEEDBACK if decisions else CommitKind.EDIT,
                project=first[0].project_id if first else None,
                session=first[0].session_id if first else None,
                phase=first[1][0].phase if first and len(first[1]) == 1 else None,
                status=first[1][0].decision().value if first and len(first[1]) == 1 else None,
            ),
            author=who,
            check_edits=False,
            context=contexts,
        )
        return sha, rejected
