"""Restore a session's files at an old commit, written back as a **new** commit.

History is never rewritten: the restore is one more commit on the branch.
"""

from __future__ import annotations

from pydantic import Field

from mdsessions.documents.frontmatter import Document
from mdsessions.errors import (
    PhaseNotFoundError,
    StoreError,
    UnrecordedEditError,
)
from mdsessions.history.common import _blob, _manifest_at, _short
from mdsessions.models.results import SessionResult
from mdsessions.models.schema import (
    SessionManifest,
    utc_now,
)
from mdsessions.models.state import derive_status
from mdsessions.store.commits import commit_message
from mdsessions.store.store import (
    Identity,
    Session,
)

__all__ = [
    "RestoreResult",
    "restore",
]


class RestoreResult(SessionResult):
    """What :func:`restore` did."""

    target: str = Field(serialization_alias="target_commit")
    """Full id of the commit restored to."""
    phase: int | None
    """The phase restored, or ``null`` for the whole session."""
    commit: str | None
    """The new commit, or ``null`` when the session already was in that state."""
    written: tuple[str, ...] = ()
    """Store-relative files written back."""
    deleted: tuple[str, ...] = ()
    """Store-relative files deleted (they did not exist at the target)."""
    reset_phases: tuple[int, ...] = ()
    """Phases whose files and manifest row were set to the target's."""
    overwritten: tuple[str, ...] = ()
    """Unrecorded edits that ``force`` discarded (store-relative)."""
    status: str | None = None
    """The session status afterwards."""


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
    who = store.person(author)
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
            derive_status(manifest)
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
                message=commit_message(
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
