"""What a pull keeps and what it sets aside: result models, set-aside refs, lineage checks.

Used by :mod:`mdsessions.history` (``pull``, ``push``, ``sync``). DESIGN.md "Sharing the
store": sync may set a version aside, never lose it silently — the loser stays reachable
under a name, and the command says so and how to get it back.

A version set aside is named by a ref ``refs/mdsessions/set-aside/<project>/<session>/<id>``
(``refs/mdsessions/set-aside/_store/<id>`` for store files such as ``mdsessions.toml``),
where ``<id>`` is the first 12 hex digits of the commit that holds the losing version.
``push`` pushes these refs and ``pull`` fetches them, so every machine can find them.

A pull brings the remote's version of a path. That version *keeps* ours when ours is in
its lineage: walking back from the remote's commit, through plain commits to their parent
and through merges to the parent(s) whose version the merge took, one reaches a commit we
already have that holds our version. When the other side resolved a conflict with
``--keep mine`` over our work, the walk reaches only older versions: ours is *replaced*,
and the pull names it (a ref, made before the branch moves) and warns.
"""

from __future__ import annotations

import re

from pydantic import Field, computed_field

from mdsessions.git.repo import GitRepo
from mdsessions.models.results import Change, NumberChange, Result, SessionRef, SessionResult

__all__ = [
    "SET_ASIDE_PREFIX",
    "STORE_FILES",
    "Lineage",
    "SessionChange",
    "SetAside",
    "StoreFileChange",
    "parse_set_aside_ref",
    "set_aside_ref",
]

SET_ASIDE_PREFIX = "refs/mdsessions/set-aside/"
#: The ref folder of store files set aside (not a valid project id, so never a session's).
STORE_FILES = "_store"
#: The refspec that pushes and fetches every set-aside ref under the same name.
SET_ASIDE_REFSPEC = f"{SET_ASIDE_PREFIX}*:{SET_ASIDE_PREFIX}*"


_LOCKISH = re.compile(r"\.lock_*$")


def _ref_part(name: str) -> str:
    """An id as a ref component: git refuses one ending in ``.lock``, so a ``_`` is added."""
    return name + "_" if _LOCKISH.search(name) else name


def _id_part(component: str) -> str:
    """The id a ref component names (inverse of :func:`_ref_part`)."""
    return component[:-1] if _LOCKISH.search(component) and component.endswith("_") else component


def set_aside_ref(session: str | None, commit: str) -> str:
    """``refs/mdsessions/set-aside/<project>/<session>/<12 hex>`` (or ``…/_store/<12 hex>``)."""
    if session is None:
        where = STORE_FILES
    else:
        project_id, _, session_id = session.partition("/")
        where = f"{_ref_part(project_id)}/{_ref_part(session_id)}"
    return f"{SET_ASIDE_PREFIX}{where}/{commit[:12]}"


def parse_set_aside_ref(name: str) -> tuple[bool, str | None]:
    """``(is a set-aside ref, "project/session" or None for store files)``."""
    if not name.startswith(SET_ASIDE_PREFIX):
        return False, None
    parts = name[len(SET_ASIDE_PREFIX) :].split("/")
    if len(parts) == 3:
        return True, f"{_id_part(parts[0])}/{_id_part(parts[1])}"
    return (len(parts) == 2 and parts[0] == STORE_FILES), None


def _fork_id(session_id: str, commit: str) -> str:
    suffix = f"-{commit[:8]}"
    return session_id[: 128 - len(suffix)] + suffix


class SetAside(Result):
    """A version sync set aside: reachable and named by a ref, and how to get it back."""

    ref: str
    """``refs/mdsessions/set-aside/<project>/<session>/<12 hex>``, or
    ``refs/mdsessions/set-aside/_store/<12 hex>`` for store files."""
    commit: str
    """Full id of the commit that holds the version set aside."""
    session: str | None = Field(default=None, exclude=True)
    """``project/session``, or ``None`` for store files."""
    paths: tuple[str, ...] = ()
    """The store files set aside (empty for a session)."""
    side: str | None = None
    """Whose version it is: ``mine`` (this store's) or ``theirs`` (the remote's); ``null``
    when only listed."""
    status: str | None = None
    """The session's status in that version."""
    created: bool = False
    """Whether this call made the ref (``false``: it existed, e.g. fetched)."""
    time: str | None = None
    """Author time of the commit, UTC ISO-8601 with ``Z`` (when listed)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def project(self) -> str | None:
        """The session's project id (``null`` for store files)."""
        return self.session.partition("/")[0] if self.session is not None else None

    @computed_field(alias="session")  # type: ignore[prop-decorator]
    @property
    def session_id(self) -> str | None:
        """The session's id (``null`` for store files)."""
        return self.session.partition("/")[2] if self.session is not None else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def get_back(self) -> str:
        """The command that brings it back.

        ``mdsessions fork P/S S-1a2b3c4d --at <id>`` (a new session beside the current one;
        ``mdsessions restore P/S <id>`` makes it the current state instead), or
        ``git show <id>:mdsessions.toml`` for a store file.
        """
        if self.session is not None:
            sid = self.session.partition("/")[2]
            return (
                f"mdsessions fork {self.session} {_fork_id(sid, self.commit)} "
                f"--at {self.commit[:12]}"
            )
        return f"git show {self.commit[:12]}:{self.paths[0] if self.paths else 'mdsessions.toml'}"


class SessionChange(SessionResult):
    """What a pull did to one session."""

    change: str
    """``added``, ``updated`` (the remote's version builds on ours), ``deleted``,
    ``replaced`` (the remote's version does **not** include ours: ours is set aside, and this
    is a warning), ``kept-mine`` / ``kept-theirs`` (a conflict resolved; the other version set
    aside) or ``forked`` (a conflict: ours kept, the remote's added as ``fork``)."""
    status_before: str | None = Field(default=None, exclude=True)
    """The session's status before the pull (``None``: absent)."""
    status_after: str | None = Field(default=None, exclude=True)
    """Its status after."""
    phase_before: int | None = Field(default=None, exclude=True)
    """The current phase before."""
    phase_after: int | None = Field(default=None, exclude=True)
    """The current phase after."""
    set_aside: SetAside | None = None
    """The version set aside, if any."""
    fork: str | None = Field(default=None, exclude=True)
    """The session (``project/session``) that holds the other version (``forked``), or the
    fork the other side made of ours (``replaced``), if any."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Change:
        """The session's status before and after the pull (``null``: absent)."""
        return Change(before=self.status_before, after=self.status_after)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def current_phase(self) -> NumberChange:
        """The session's current phase before and after the pull."""
        return NumberChange(before=self.phase_before, after=self.phase_after)

    @computed_field(alias="fork")  # type: ignore[prop-decorator]
    @property
    def fork_session(self) -> SessionRef | None:
        """The session holding the other version (``forked``), or the other side's fork of ours."""
        return SessionRef.of(self.fork) if self.fork is not None else None


class StoreFileChange(Result):
    """What a pull did to a store file outside the sessions (``mdsessions.toml``, workflows)."""

    path: str
    """Store-relative path."""
    change: str
    """``added``, ``updated``, ``deleted``, ``merged`` (``mdsessions.toml`` merged key by key),
    ``replaced`` (the remote's version does not include ours: set aside, a warning),
    ``kept-mine`` or ``kept-theirs`` (a conflict resolved)."""
    keys: tuple[str, ...] = ()
    """``mdsessions.toml`` keys (``[workflows] aflow``) taken from the remote (``merged``) or
    in conflict (``kept-*``)."""
    set_aside: SetAside | None = None
    """The version set aside, if any."""


class Lineage:
    """Whether the remote's version of a path builds on ours (see the module docstring).

    Args:
        git: The store's repository.
        ours: Our commit (``HEAD``).
        theirs: The remote's commit (fetched).
    """

    def __init__(self, git: GitRepo, ours: str, theirs: str) -> None:
        self.git = git
        self.ours = ours
        self.theirs = theirs
        self._new: dict[str, tuple[str, ...]] | None = None

    def _version(self, commit: str, rel: str) -> bytes | None:
        found = self.git.entry(commit, rel)
        return found[1] if found is not None else None

    def keeps(self, rel: str) -> bool:
        """Whether the remote's version of ``rel`` (a session folder or a file) includes ours.

        Meant for paths the remote changed and we did not change since the common ancestor
        (or for a fast-forward): then only a conflict resolved against our version on the
        other side makes the answer ``False``.
        """
        mine = self._version(self.ours, rel)
        if mine is None:
            return True  # nothing of ours to lose
        if self._new is None:
            self._new = self.git.commit_parents(self.theirs, self.ours)
        new = self._new
        if not any(len(parents) > 1 for parents in new.values()):
            return True  # no merge on their side: their history runs through our version
        stack, seen = [self.theirs], set()
        while stack:
            commit = stack.pop()
            if commit in seen:
                continue
            seen.add(commit)
            parents = new.get(commit)
            if parents is None:  # a commit we have: the walk left their new history
                if self._version(commit, rel) == mine:
                    return True
                continue
            if len(parents) <= 1:
                stack.extend(parents)
                continue
            here = self._version(commit, rel)
            same = [p for p in parents if self._version(p, rel) == here]
            stack.extend(same or parents)
        return False
