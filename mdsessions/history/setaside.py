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
from dataclasses import dataclass
from typing import Any

from mdsessions.git.repo import GitRepo

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


@dataclass(frozen=True)
class SetAside:
    """A version sync set aside: reachable and named by a ref, and how to get it back.

    Attributes:
        ref: ``refs/mdsessions/set-aside/<project>/<session>/<12 hex>``, or
            ``refs/mdsessions/set-aside/_store/<12 hex>`` for store files.
        commit: Full id of the commit that holds the version set aside.
        session: ``project/session``, or ``None`` for store files.
        paths: The store files set aside (empty for a session).
        side: Whose version it is: ``mine`` (this store's) or ``theirs`` (the remote's);
            ``None`` when only listed.
        status: The session's status in that version.
        created: Whether this call made the ref (``False``: it existed, e.g. fetched).
        time: Author time of the commit, UTC ISO-8601 with ``Z`` (when listed).
    """

    ref: str
    commit: str
    session: str | None = None
    paths: tuple[str, ...] = ()
    side: str | None = None
    status: str | None = None
    created: bool = False
    time: str | None = None

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

    def to_json(self) -> dict[str, Any]:
        """The set-aside version as a JSON-ready mapping."""
        return {
            "ref": self.ref,
            "commit": self.commit,
            "session": self.session,
            "paths": list(self.paths),
            "side": self.side,
            "status": self.status,
            "created": self.created,
            "time": self.time,
            "get_back": self.get_back,
        }


@dataclass(frozen=True)
class SessionChange:
    """What a pull did to one session.

    Attributes:
        session: ``project/session``.
        change: ``added``, ``updated`` (the remote's version builds on ours), ``deleted``,
            ``replaced`` (the remote's version does **not** include ours: ours is set
            aside, and this is a warning), ``kept-mine`` / ``kept-theirs`` (a conflict
            resolved; the other version set aside) or ``forked`` (a conflict: ours kept,
            the remote's added as ``fork``).
        status_before: The session's status before the pull (``None``: absent).
        status_after: Its status after.
        phase_before: The current phase before.
        phase_after: The current phase after.
        set_aside: The version set aside, if any.
        fork: The session that holds the other version (``forked``), or the fork the
            other side made of ours (``replaced``), if any.
    """

    session: str
    change: str
    status_before: str | None = None
    status_after: str | None = None
    phase_before: int | None = None
    phase_after: int | None = None
    set_aside: SetAside | None = None
    fork: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The change as a JSON-ready mapping."""
        return {
            "session": self.session,
            "change": self.change,
            "status": {"before": self.status_before, "after": self.status_after},
            "current_phase": {"before": self.phase_before, "after": self.phase_after},
            "set_aside": self.set_aside.to_json() if self.set_aside else None,
            "fork": self.fork,
        }


@dataclass(frozen=True)
class StoreFileChange:
    """What a pull did to a store file outside the sessions (``mdsessions.toml``, workflows).

    Attributes:
        path: Store-relative path.
        change: ``added``, ``updated``, ``deleted``, ``merged`` (``mdsessions.toml`` merged
            key by key), ``replaced`` (the remote's version does not include ours: set
            aside, a warning), ``kept-mine`` or ``kept-theirs`` (a conflict resolved).
        keys: ``mdsessions.toml`` keys (``[workflows] aflow``) taken from the remote
            (``merged``) or in conflict (``kept-*``).
        set_aside: The version set aside, if any.
    """

    path: str
    change: str
    keys: tuple[str, ...] = ()
    set_aside: SetAside | None = None

    def to_json(self) -> dict[str, Any]:
        """The change as a JSON-ready mapping."""
        return {
            "path": self.path,
            "change": self.change,
            "keys": list(self.keys),
            "set_aside": self.set_aside.to_json() if self.set_aside else None,
        }


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
