"""Fork a session: its files at a commit, ids rewritten, committed as a new session."""

from __future__ import annotations

from pydantic import Field, computed_field

from mdsessions.documents.frontmatter import Document, load_as, loads
from mdsessions.errors import (
    DocumentError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
)
from mdsessions.history.common import _blob, _decode, _short
from mdsessions.models.results import OpenSessionResult, SessionResult
from mdsessions.models.schema import (
    ForkOrigin,
    SessionManifest,
    utc_now,
)
from mdsessions.models.state import derive_status
from mdsessions.store.commits import commit_message
from mdsessions.store.links import render_session
from mdsessions.store.store import (
    MANIFEST,
    Identity,
    Session,
    Store,
    check_id,
)

__all__ = [
    "ForkResult",
    "ForkSource",
    "fork",
]


class ForkSource(SessionResult):
    """The session a fork was taken from, and the commit it was taken at."""

    commit: str
    """Full id of the commit forked at."""


class ForkResult(OpenSessionResult):
    """What :func:`fork` made."""

    session: Session = Field(exclude=True)
    """The new session."""
    commit: str
    """Full id of the fork commit."""
    source: str = Field(exclude=True)
    """``project/session`` forked from."""
    at: str = Field(exclude=True)
    """Full id of the commit forked at."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def path(self) -> str:
        """The new session's folder, store-relative."""
        return self.session.rel

    @computed_field  # type: ignore[prop-decorator]
    @property
    def forked_from(self) -> ForkSource:
        """The session forked from and the commit it was forked at."""
        return ForkSource(session=self.source, commit=self.at)


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
            # A fork is a new session: it is neither paused nor ended, whatever its source is.
            doc.paused = doc.ended = doc.end_reason = None
            derive_status(doc)
            names = {p.number: p.name for p in doc.phases}
        docs[target] = doc
    out.update(render_session(store, docs, names))  # the whole session is in docs
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
            message=commit_message(
                f"fork({project_id}/{new_id}): from {session.ref} at {_short(commit)}",
                kind="fork",
                project=project_id,
                session=new_id,
                session_status=manifest.status.value,
                forked_from=f"{session.ref}@{commit}",
            ),
            author=store.person(author),
        )
        if sha is None:  # pragma: no cover - a new folder always changes the tree
            raise StoreError(f"fork of {session.ref} recorded nothing")
        return ForkResult(
            session=Session(store, project_id, new_id), commit=sha, source=session.ref, at=commit
        )
