"""People's edits: files in the store that differ from the last commit, and recording them.

A reviewer edits ``user_feedback.md`` (or any document) in an editor; :func:`record_edits`
commits the files that validate as that person's commit, applies a feedback file's decision
to the session manifest in the same commit (:func:`mdsessions.models.state.apply_feedback`),
and leaves files that do not validate on disk, uncommitted, with their errors.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mdsessions.documents.frontmatter import Document, load_as, loads
from mdsessions.errors import DocumentError, UnrecordedEditError
from mdsessions.git.repo import Identity
from mdsessions.models import state
from mdsessions.models.results import Result
from mdsessions.models.schema import FeedbackAction, UserFeedback, utc_now
from mdsessions.store.commits import CommitKind, commit_message
from mdsessions.store.config import is_editor_temp
from mdsessions.store.paths import FEEDBACK
from mdsessions.store.session import Session

if TYPE_CHECKING:
    from mdsessions.store.store import Store

__all__ = ["EditedFile", "record_edits", "settle_feedback", "unrecorded_edits"]


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
                loads(store.read_text(rel), path=rel)
            except (DocumentError, OSError) as exc:
                error = str(exc)
        out.append(EditedFile(path=rel, change=change, error=error))
    return out


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
        for session, feedbacks in sessions.values():
            for fb in feedbacks:
                rel = f"{session.phase_rel(fb.phase)}/{FEEDBACK}"
                current = files[rel]
                if isinstance(current, bytes):
                    files[rel] = settle_feedback(current, fb, who.name)
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


def settle_feedback(data: bytes, fb: UserFeedback, reviewer: str) -> bytes:
    """Make a person's decision explicit in their own file, changing nothing else.

    Only the top-level frontmatter lines ``reviewed``, ``approved``, ``action``, ``timestamp``
    and ``reviewer`` are rewritten (the body — comments, changes, anything else the person
    wrote — stays byte for byte). When the lines cannot be found exactly once, or the result
    would not read back as the same decision, the person's bytes are kept as they are.
    """
    decision = fb.decision()
    if decision is FeedbackAction.PENDING:
        return data
    text = data.decode("utf-8")
    head_end = text.find("\n---", 3)
    if not text.startswith("---") or head_end < 0:
        return data
    head, rest = text[:head_end], text[head_end:]
    values = {
        "reviewed": "true",
        "approved": "true" if decision is FeedbackAction.APPROVED else "false",
        "action": decision.value,
        "timestamp": f"'{(fb.timestamp or utc_now()).strftime('%Y-%m-%dT%H:%M:%SZ')}'",
        "reviewer": json.dumps(fb.reviewer or reviewer, ensure_ascii=False),
    }
    for key, value in values.items():
        pattern = re.compile(rf"^{key}:[^\r\n]*", re.MULTILINE)
        if len(pattern.findall(head)) != 1:
            return data
        head = pattern.sub(f"{key}: {value}".replace("\\", "\\\\"), head)
    body_values = {
        "Reviewed": "true",
        "Approved": values["approved"],
        "Timestamp": values["timestamp"].strip("'"),
        "Reviewer": fb.reviewer or reviewer,
        "Action": decision.value,
    }
    for label, value in body_values.items():
        # The template's own status lines in the body, kept in step when they are there once.
        pattern = re.compile(rf"^- {label}: [^\r\n]*", re.MULTILINE)
        if len(pattern.findall(rest)) == 1:
            rest = pattern.sub(f"- {label}: {value}".replace("\\", "\\\\"), rest)
    settled = (head + rest).encode("utf-8")
    try:
        back = load_as(UserFeedback, head + rest)
    except DocumentError:
        return data
    if back.decision() is not decision or back.comments != fb.comments:
        return data
    return settled
