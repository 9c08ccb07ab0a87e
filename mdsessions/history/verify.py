"""Verify a store: git's integrity checks and the store's own invariants.

``git fsck --strict``, every document against its schema, trailers against the paths each
commit touched, manifests against the session state machine.
"""

from __future__ import annotations

from pydantic import Field, computed_field

from mdsessions.errors import (
    InvalidIdentifierError,
    MdsessionsError,
)
from mdsessions.git import maintain
from mdsessions.models.results import Result
from mdsessions.models.state import derive_status
from mdsessions.store.paths import ARCHIVE_DIR
from mdsessions.store.store import (
    CONFIG_FILE,
    WORKFLOWS_DIR,
    Problem,
    Session,
    Store,
)

__all__ = [
    "VerifyReport",
    "verify",
]


class VerifyReport(Result):
    """What :func:`verify` found."""

    problems: tuple[Problem, ...]
    """Each with the file (or ``commit <id>`` / ``git fsck``) and the reason."""
    commits: int = Field(serialization_alias="commit_count")
    """Commits whose trailers were checked."""
    sessions: int = Field(serialization_alias="session_count")
    """Sessions validated."""

    @computed_field(alias="valid")  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def _imported(store: Store, session: Session) -> bool:
    """Whether an import (a JSON export of another store) created the session's manifest.

    A fork imported from another store names a commit of that store in ``forked_from``.
    """
    added = store.git.log([session.manifest_rel], max_count=1, extra=["--diff-filter=A"])
    return bool(added) and added[0].trailer("Mdsessions-Kind") == "import"


def verify(store: Store) -> VerifyReport:
    """Check a store's integrity: git objects, documents, manifests and commit trailers.

    * ``git fsck --strict`` finds no error (dangling objects are not errors);
    * every document validates and every manifest agrees with its checkpoint files
      (:meth:`Store.validate`), and a fork's ``forked_from`` commit exists (unless the
      session was imported from another store's export);
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
    _, found = maintain.fsck(store.root)
    problems += [Problem(path="git fsck", reason=line) for line in found]
    problems += store.validate()
    sessions = 0
    for session in store.iter_sessions():
        sessions += 1
        try:
            manifest = session.manifest()
        except MdsessionsError:
            continue  # reported by validate()
        derived = manifest.model_copy(deep=True)
        derive_status(derived)
        if (derived.status, derived.current_phase) != (manifest.status, manifest.current_phase):
            problems.append(
                Problem(
                    path=session.manifest_rel,
                    reason=f"status {manifest.status.value} "
                    f"(current phase {manifest.current_phase}) "
                    f"contradicts the phase table, which says {derived.status.value} (current "
                    f"phase {derived.current_phase})",
                )
            )
        origin = manifest.forked_from
        if origin is not None:
            if not maintain.has_commit(git, origin.commit) and not _imported(store, session):
                problems.append(
                    Problem(
                        path=session.manifest_rel,
                        reason=f"forked_from names commit {origin.commit}, "
                        "which is not in the store",
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
            archived = store.rel(project, ARCHIVE_DIR, sid)  # archive/unarchive move it
        except InvalidIdentifierError as exc:
            problems.append(Problem(path=where, reason=f"invalid session trailers: {exc}"))
            continue
        stray = [
            p
            for p in info.paths
            if p != CONFIG_FILE
            and not p.startswith(rel + "/")
            and not p.startswith(archived + "/")
            and not p.startswith(WORKFLOWS_DIR + "/")
        ]
        if stray:
            problems.append(
                Problem(
                    path=where,
                    reason=f"trailers name session {project}/{sid} but the commit also touches "
                    + ", ".join(stray[:5])
                    + (f" and {len(stray) - 5} more" if len(stray) > 5 else ""),
                )
            )
    return VerifyReport(problems=tuple(problems), commits=len(commits), sessions=sessions)
