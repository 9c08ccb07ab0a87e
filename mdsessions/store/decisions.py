"""A reviewer's decision made by a program (the browser's review desk, a script).

:func:`decide` makes the edit a person makes in an editor — the ``approved:`` and
``action:`` lines, the ``requested_changes:`` block, the comments under
``## User Comments``; nothing else of the file changes (:func:`edit_feedback_text`) — writes
it atomically and records it through :func:`mdsessions.store.edits.record_edits`, so its
commit (subject, trailers, file bytes) is the one ``mdsessions review`` makes for the same
edit. A person's unrecorded edit is never overwritten (:class:`UnrecordedEditError`), and a
decision on a phase that changed since the decider looked at it is refused
(:class:`StaleDecisionError`, through the phase's :func:`review_token`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mdsessions.documents.feedback import check_feedback_agrees, requested_changes_in_body
from mdsessions.documents.frontmatter import (
    _FENCE,
    _heading,
    _load_yaml,
    decode,
    is_old_feedback_body,
    load_as,
    split,
)
from mdsessions.documents.yaml import emit_scalar
from mdsessions.errors import DocumentError, StaleDecisionError, StoreError, UnrecordedEditError
from mdsessions.git.fsutil import TMP_SUFFIX, write_new
from mdsessions.git.repo import Identity
from mdsessions.models.results import Result
from mdsessions.models.schema import FeedbackAction, ReviewState, UserFeedback
from mdsessions.store.paths import FEEDBACK

if TYPE_CHECKING:
    from mdsessions.store.session import Session

__all__ = ["Decision", "decide", "edit_feedback_text", "review_token"]

_DECISIONS = (FeedbackAction.APPROVED, FeedbackAction.REVISE, FeedbackAction.REJECTED)
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class Decision(Result):
    """What :func:`decide` recorded."""

    commit: str
    """The commit that records the decision (40 hex digits)."""
    phase: int
    """The phase decided on."""
    action: FeedbackAction
    """``approved``, ``revise`` or ``rejected``."""
    path: str
    """The store-relative ``user_feedback.md`` written."""
    token: str
    """The phase's review token after the decision (:func:`review_token`)."""


def review_token(session: Session, phase: int) -> str:
    """A short hash of where a phase stands with its reviewer, to detect a stale decision.

    It changes when the phase's status, retry count or review state changes, or when its
    ``user_feedback.md`` is committed anew (another decision, a re-run's new pending file).
    A person's unrecorded save does not change it (:func:`decide` refuses that case itself).

    Args:
        session: The session.
        phase: The phase number.

    Returns:
        16 hex digits.

    Raises:
        PhaseNotFoundError: The session has no such phase.
        DocumentError: The manifest does not parse.
    """
    manifest = session.manifest()
    entry = session.phase_entry(phase, manifest)
    rel = f"{session.phase_rel(phase, manifest)}/{FEEDBACK}"
    git = session.store.git
    head = git.head()
    found = git.entry(head, rel) if head else None
    blob = found[1].hex() if found else "-"
    state = f"{entry.status.value}\0{entry.retry_count}\0{entry.review.value}\0{blob}"
    return hashlib.sha256(state.encode("utf-8")).hexdigest()[:16]


def _action(action: FeedbackAction | str) -> FeedbackAction:
    try:
        parsed = FeedbackAction.parse(action)
    except ValueError as exc:
        raise DocumentError(str(exc), field="action") from None
    if parsed not in _DECISIONS:
        raise DocumentError(
            f"expected approved, revise or rejected, got {action!r}", field="action"
        )
    return parsed


def _changes(changes: Sequence[str], action: FeedbackAction) -> list[str]:
    if isinstance(changes, str):
        raise DocumentError("expected a list of changes, got one text", field="requested_changes")
    out = []
    for n, change in enumerate(changes, 1):
        text = change.strip() if isinstance(change, str) else ""
        if not text or _LINE_BREAKS.search(text):
            raise DocumentError(
                f"change {n} must be one line of text, got {change!r}", field="requested_changes"
            )
        out.append(text)
    if out and action is not FeedbackAction.REVISE:
        raise DocumentError(
            f"changes are requested with action revise, not {action.value}",
            field="requested_changes",
        )
    return out


def _set_key(head: str, key: str, value: str, nl: str) -> str:
    """Set the top-level ``key:`` line of the frontmatter (added at its end when missing)."""
    pattern = re.compile(rf"^{key}:[^\r\n]*", re.MULTILINE)
    if pattern.search(head) is None:
        return f"{head}{key}: {value}{nl}"
    return pattern.sub(lambda _m: f"{key}: {value}", head, count=1)


def _set_changes(head: str, changes: list[str], nl: str) -> str:
    """Replace the ``requested_changes:`` block unless it already holds exactly ``changes``.

    The block is the key's line and the ``- ``/indented lines under it; it is added at the
    frontmatter's end when missing. An empty list is the bare key, as the template writes it.
    """
    block = "requested_changes:" + "".join(f"{nl}- {emit_scalar(c)}" for c in changes)
    found = re.search(r"^requested_changes:", head, re.MULTILINE)
    if found is None:
        return f"{head}{block}{nl}"
    start = found.start()
    lines = head[start:].split(nl)
    count = 1
    while count < len(lines) and lines[count][:1] in (" ", "\t", "-"):
        count += 1
    old = nl.join(lines[:count])
    try:
        current = _changes_in_block(old)
    except DocumentError:
        current = None
    if current == changes:
        return head
    return head[:start] + block + head[start + len(old) :]


def _changes_in_block(block: str) -> list[str] | None:
    """The changes a ``requested_changes:`` block holds (``None``: not a list of text)."""
    value = _load_yaml(block + "\n", None).get("requested_changes")
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    return None


def _set_comments(body: str, comments: str, nl: str) -> str:
    """Put ``comments`` verbatim under ``## User Comments`` (framed as the template does)."""
    start = _heading(body, "User Comments")
    if start is None:
        lead = "" if body.endswith(nl) or not body else nl
        return f"{body}{lead}{nl}## User Comments{nl}{nl}{comments}{nl}"
    if not is_old_feedback_body(body):
        return body[: start.end()] + nl + comments + nl
    after = body[start.end() :]
    ends = [
        m.start()
        for title in ("Requested Changes", "Action Taken")
        if (m := _heading(after, title, last=True)) is not None
    ]
    end = min(ends) if ends else len(after)
    return body[: start.end()] + nl + comments + nl + (nl if ends else "") + after[end:]


def _set_old_body(body: str, action: FeedbackAction, changes: list[str], nl: str) -> str:
    """In a file of the old layout, the body's decision lines follow the frontmatter's."""
    approved = "true" if action is FeedbackAction.APPROVED else "false"
    for label, value in (("Approved", approved), ("Action", action.value)):
        pattern = re.compile(rf"^- {label}:[^\r\n]*", re.MULTILINE)
        if len(pattern.findall(body)) == 1:
            found = pattern.search(body)
            assert found is not None
            body = f"{body[: found.start()]}- {label}: {value}{body[found.end() :]}"
    listed = requested_changes_in_body(body)
    if listed is not None and listed[0] != changes:
        heading = _heading(body, "Requested Changes", last=True)
        assert heading is not None
        following = re.search(r"^## ", body[heading.end() :], re.MULTILINE)
        end = heading.end() + following.start() if following else len(body)
        items = "".join(f"- {c}{nl}" for c in changes)
        body = body[: heading.end()] + items + (nl if following else "") + body[end:]
    return body


def edit_feedback_text(
    text: str,
    action: FeedbackAction | str,
    comments: str = "",
    requested_changes: Sequence[str] = (),
) -> str:
    """Make a reviewer's decision in a ``user_feedback.md`` text, as a person does in an editor.

    Sets the frontmatter's ``approved:`` (``true`` for approved, else ``false``) and
    ``action:`` lines and its ``requested_changes:`` block (``- `` lines, each change a YAML
    scalar, quoted where it must be: ``- 'Price: per seat'``; left as it is when it already
    holds the same changes), and puts ``comments`` verbatim under ``## User Comments`` (left
    as it is when ``comments`` is empty). Nothing else changes: every other byte, the line
    ends (LF or CRLF) included, stays. In a file of the old layout (the decision repeated in
    the body) the body's ``- Approved:``/``- Action:`` lines and ``## Requested Changes`` list
    are set to agree too.

    Args:
        text: The file's text.
        action: ``approved``, ``revise`` or ``rejected`` (or ``approve``/``reject``).
        comments: The reviewer's comments (verbatim; empty leaves the section as it is).
        requested_changes: One line of text each; only with ``revise``.

    Returns:
        The edited text; it parses as that decision (:func:`mdsessions.loads`).

    Raises:
        DocumentError: Naming the field: an action that is not a decision, a change that is
            empty or not one line, changes with another action than ``revise``; or the text
            is not a feedback file.
    """
    parsed = _action(action)
    changes = _changes(requested_changes, parsed)
    split(text)  # the fences are there (DocumentError naming the line)
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    opening = _FENCE.match(text, len(bom))
    assert opening is not None
    closing = _FENCE.search(text, opening.end())
    assert closing is not None
    nl = "\r\n" if opening.group(0).endswith("\r") else "\n"
    first = opening.end() + 1  # past the opening fence's line end
    head, body = text[first : closing.start()], text[closing.start() :]
    head = _set_key(head, "approved", "true" if parsed is FeedbackAction.APPROVED else "false", nl)
    head = _set_key(head, "action", parsed.value, nl)
    head = _set_changes(head, changes, nl)
    fence_end = body.find("\n") + 1 if "\n" in body else len(body)
    fence, rest = body[:fence_end], body[fence_end:]
    if comments:
        rest = _set_comments(rest, comments, nl)
    if is_old_feedback_body(rest):
        rest = _set_old_body(rest, parsed, changes, nl)
    edited = text[:first] + head + fence + rest
    doc = load_as(UserFeedback, edited)
    if doc.decision() is not parsed or doc.requested_changes != changes:
        raise DocumentError("the file's frontmatter cannot hold this decision", field="action")
    if comments and doc.comments != comments:
        raise DocumentError(
            "the comments would not read back as written (they hold a heading the file "
            "uses for its own sections)",
            field="comments",
        )
    return edited


def _stale(session: Session, phase: int, token: str, why: str) -> StaleDecisionError:
    entry = session.phase_entry(phase)
    return StaleDecisionError(
        f"phase {phase} of {session.ref} {why} (now: status {entry.status.value}, review "
        f"{entry.review.value}, retry {entry.retry_count}); look at it again and decide anew",
        token=token,
        status=entry.status.value,
        review=entry.review.value,
        retry_count=entry.retry_count,
    )


def decide(
    session: Session,
    phase: int,
    action: FeedbackAction | str,
    *,
    comments: str = "",
    requested_changes: Sequence[str] = (),
    author: Identity | str | None = None,
    expected: str | None = None,
) -> Decision:
    """Decide on a phase awaiting review, as a person editing its ``user_feedback.md`` does.

    The file's text is edited by :func:`edit_feedback_text`, written atomically (a temp file
    in its folder, then a rename) and recorded by ``record_edits`` as one commit by
    ``author``: the same commit (subject, trailers, bytes) ``mdsessions review`` makes when a
    person makes that edit in an editor.

    Args:
        session: The session.
        phase: The phase awaiting review.
        action: ``approved``, ``revise`` or ``rejected`` (``approve``/``reject`` too).
        comments: The reviewer's comments, verbatim (empty: the section is left as it is).
        requested_changes: One line of text each; only with ``revise``.
        author: The reviewer (``"Name <email>"`` or an :class:`Identity`; default: the
            file's ``reviewer:``, else git's ``user.name``/``user.email``).
        expected: The phase's :func:`review_token` when the decider looked at it; ``None``
            skips the check.

    Returns:
        The :class:`Decision`: commit, phase, action, path and the new review token.

    Raises:
        StaleDecisionError: ``expected`` no longer matches; nothing was written.
        UnrecordedEditError: The feedback file (or the manifest) holds a person's edit that
            is not recorded yet, or one landed while deciding; nothing was written and the
            person's bytes are untouched.
        DocumentError: A bad ``action``, change or comment (naming the field); nothing written.
        StoreError: The phase is not awaiting review.
        PhaseNotFoundError: No such phase.
    """
    store = session.store
    with store.writing():
        token = review_token(session, phase)
        if expected is not None and expected != token:
            raise _stale(session, phase, token, "changed since it was read")
        entry = session.phase_entry(phase)
        if entry.review is not ReviewState.PENDING:
            raise StoreError(
                f"phase {phase} of {session.ref} is not awaiting review "
                f"(review {entry.review.value})"
            )
        rel = f"{session.phase_rel(phase)}/{FEEDBACK}"
        edited = {e.path for e in store.unrecorded_edits()}
        for held in (rel, session.manifest_rel):
            if held in edited:
                raise UnrecordedEditError(
                    f"{held} has an edit that is not recorded yet (a person saved it); record "
                    f"it (mdsessions record {held}) or discard it (git restore) and decide "
                    "again; nothing was written"
                )
        path = store.root / rel
        with path.open("rb") as fh:
            before = os.fstat(fh.fileno())
            data = fh.read()
        text = edit_feedback_text(decode(data, rel), action, comments, requested_changes)
        check_feedback_agrees(text, rel)
        ours = text.encode("utf-8")
        head = store.git.head()
        written = _write_unless_changed(path, ours, data, before)
        try:
            sha, rejected = store.record_edits([rel], author=author)
            if sha is None:  # cannot happen for a file that validated
                raise DocumentError((rejected[0].error if rejected else None) or "not recorded")
        except BaseException:
            # Put the file back, unless the decision's commit landed (then the file is what
            # HEAD holds) or someone saved it since our write (theirs is kept).
            if store.git.head() == head:
                with contextlib.suppress(OSError, UnrecordedEditError):
                    _write_unless_changed(path, data, ours, written)
            raise
        return Decision(
            commit=sha,
            phase=phase,
            action=_action(action),
            path=rel,
            token=review_token(session, phase),
        )


def _write_unless_changed(
    target: Path, new: bytes, old: bytes, seen: os.stat_result
) -> os.stat_result:
    """Put ``new`` in place of ``target`` atomically, unless it changed since it was read.

    A temp file beside it, then a rename; refused when its bytes or stat are no longer
    ``old``/``seen``: an editor's save that landed meanwhile is kept.

    Returns:
        The stat of ``target`` as written (to check, later, that nobody saved it since).

    Raises:
        UnrecordedEditError: The file changed; nothing was written.
        OSError: The temp file cannot be written (nothing is left behind).
    """
    tmp = target.with_name(f".{target.name}.decide{secrets.token_hex(4)}{TMP_SUFFIX}")
    write_new(tmp, new, seen.st_mode & 0o777, fsync=False)
    try:
        now = target.stat()
        same = (now.st_mtime_ns, now.st_size, now.st_ino) == (
            seen.st_mtime_ns,
            seen.st_size,
            seen.st_ino,
        )
        if not same or target.read_bytes() != old:
            raise UnrecordedEditError(
                f"{target.name} was saved by someone else while deciding; their edit is kept "
                "and nothing was written: record or discard it, then decide again"
            )
        tmp.replace(target)
        return target.stat()
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
