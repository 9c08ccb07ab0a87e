"""Session names as people type them: ``PROJECT/SESSION``, a bare id, a unique prefix, ``latest``.

Generated ids (``session-20261202-211204-b43c``) are long to type (issue 14 item 7), so
wherever a session is named (:meth:`Store.find_session`) these resolve, in this order:

1. ``PROJECT/SESSION`` exactly; ``PROJECT`` may itself be a unique prefix of a project;
2. ``PROJECT/latest``: the project's most recently created session (its manifest's
   ``created``, whole seconds; ties broken by the greater session id), unless a session is
   literally named ``latest``;
3. ``PROJECT/PREFIX``: the one session of the project whose id starts with ``PREFIX``;
4. ``SESSION``: a session id that exactly one project holds;
5. ``PREFIX``: the one session of the store whose id starts with ``PREFIX``.

An unknown name raises :class:`~mdsessions.errors.SessionNotFoundError` listing close
matches (``difflib``); an ambiguous one lists what it matched; an archived session
(``{project}/archive/{session}/``) names the command that brings it back. Only folder
names are read (``scandir``), plus the session index for ``latest``: resolving a name in a
store of 10,000 sessions costs a listing of the folders, not a parse of the manifests.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mdsessions.errors import SessionNotFoundError
from mdsessions.store.paths import ARCHIVE_DIR, MANIFEST, check_id

if TYPE_CHECKING:
    from mdsessions.store.store import Store

__all__ = ["LATEST", "complete", "resolve"]

LATEST = "latest"
"""``PROJECT/latest``: the project's most recently created session."""

_SHOWN = 8  # names listed in an error message at most


def _base(store: Store) -> Path:
    return store.root if store.projects_dir == "." else store.root / store.projects_dir


def _dirs(folder: Path) -> list[str]:
    """Names of the sub-folders of ``folder`` (none if it is missing), sorted."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _projects(store: Store) -> list[str]:
    base = _base(store)
    return [p for p in _dirs(base) if (base / p / "sessions").is_dir()]


def _sessions(store: Store, project: str, folder: str = "sessions") -> list[str]:
    """Ids of the sessions of ``project`` (in ``sessions/``, or ``archive/``)."""
    return _dirs(_base(store) / project / folder)


def _exists(store: Store, project: str, session: str, folder: str = "sessions") -> bool:
    return (_base(store) / project / folder / session / MANIFEST).is_file()


def _listed(refs: list[str]) -> str:
    more = f" and {len(refs) - _SHOWN} more" if len(refs) > _SHOWN else ""
    return ", ".join(refs[:_SHOWN]) + more


def _close(word: str, candidates: dict[str, list[str]]) -> str:
    """``; close matches: P/S, …`` of the ids closest to ``word`` (id → its refs)."""
    found = difflib.get_close_matches(word, list(candidates), n=5, cutoff=0.6)
    refs = [ref for name in found for ref in candidates[name]][:5]
    return f"; close matches: {', '.join(refs)}" if refs else ""


def _archived(store: Store, project: str | None, prefix: str) -> str:
    """``; P/S is archived: run …`` when archived sessions match, else ``""``."""
    projects = [project] if project else _projects(store)
    found = [
        f"{p}/{s}"
        for p in projects
        for s in _sessions(store, p, ARCHIVE_DIR)
        if s.startswith(prefix) and _exists(store, p, s, ARCHIVE_DIR)
    ]
    if not found:
        return ""
    if len(found) == 1:
        return f"; {found[0]} is archived: run `mdsessions unarchive {found[0]}` to bring it back"
    return f"; archived sessions match: {_listed(found)} (see `mdsessions unarchive`)"


def _project(store: Store, word: str, ref: str) -> str:
    check_id(word, "project id")
    if (_base(store) / word / "sessions").is_dir():
        return word
    projects = _projects(store)
    found = [p for p in projects if p.startswith(word)]
    if len(found) == 1:
        return found[0]
    if found:
        raise SessionNotFoundError(
            f"project {word!r} of {ref!r} is ambiguous: it starts {_listed(found)}; "
            "type more of the project id"
        )
    close = _close(word, {p: [f"{p}/"] for p in projects})
    raise SessionNotFoundError(f"no project {word!r} in {store.root}{close}")


def _latest(store: Store, project: str) -> tuple[str, str]:
    summaries = store.list_sessions(project)
    if not summaries:
        raise SessionNotFoundError(f"project {project} has no sessions ({project}/{LATEST})")
    last = max(summaries, key=lambda s: (s.created, s.session_id))
    return last.project_id, last.session_id


def _in_project(store: Store, project: str, word: str, ref: str) -> tuple[str, str]:
    if _exists(store, project, word):
        return project, word
    if word == LATEST:
        return _latest(store, project)
    ids = _sessions(store, project)
    found = [s for s in ids if s.startswith(word) and _exists(store, project, s)]
    if len(found) == 1:
        return project, found[0]
    if found:
        refs = [f"{project}/{s}" for s in found]
        raise SessionNotFoundError(
            f"{ref!r} matches {len(found)} sessions: {_listed(refs)}; type more of the id"
        )
    rel = f"{store.rel(project, 'sessions', word)}/{MANIFEST}"
    raise SessionNotFoundError(
        f"no session {project}/{word} in {store.root} (expected {rel})"
        + (_archived(store, project, word) or _close(word, {s: [f"{project}/{s}"] for s in ids}))
    )


def resolve(store: Store, ref: str) -> tuple[str, str]:
    """The project and session id a name stands for (the module docstring's rules).

    Args:
        store: The store.
        ref: ``PROJECT/SESSION``, ``PROJECT/latest``, a session id, or a unique prefix of
            either (``demo/session-20261202``, ``session-20261202-2112``).

    Returns:
        ``(project_id, session_id)`` of an existing session.

    Raises:
        InvalidIdentifierError: A part is not an id (``a/b/c``, ``..``).
        SessionNotFoundError: No session, or several, match; the message lists close
            matches, the sessions matched, or the command that brings an archived one back.
    """
    if "/" in ref:
        word, _, session = ref.partition("/")
        check_id(session, "session id")
        return _in_project(store, _project(store, word, ref), session, ref)
    check_id(ref, "session id")
    projects = _projects(store)
    exact = [p for p in projects if _exists(store, p, ref)]
    if len(exact) == 1:
        return exact[0], ref
    if exact:
        raise SessionNotFoundError(
            f"session id {ref!r} exists in several projects ({', '.join(exact)}); "
            "write it as PROJECT/SESSION"
        )
    ids = {p: _sessions(store, p) for p in projects}
    found = [(p, s) for p in projects for s in ids[p] if s.startswith(ref) and _exists(store, p, s)]
    if len(found) == 1:
        return found[0]
    if found:
        refs = [f"{p}/{s}" for p, s in found]
        raise SessionNotFoundError(
            f"{ref!r} matches {len(found)} sessions: {_listed(refs)}; type more of the id "
            "or write PROJECT/SESSION"
        )
    names: dict[str, list[str]] = {}
    for p in projects:
        for s in ids[p]:
            names.setdefault(s, []).append(f"{p}/{s}")
    raise SessionNotFoundError(
        f"no session {ref!r} in {store.root}" + (_archived(store, None, ref) or _close(ref, names))
    )


def complete(store: Store, incomplete: str = "") -> list[str]:
    """Session names that start with what was typed so far (shell completion).

    Args:
        store: The store.
        incomplete: The partial name: without ``/``, projects (as ``PROJECT/``) and session
            ids match; with ``/``, the project's sessions and ``PROJECT/latest``.

    Returns:
        Matching names, sorted: ``PROJECT/`` and bare session ids, or ``PROJECT/SESSION``.
    """
    if "/" in incomplete:
        word, _, prefix = incomplete.partition("/")
        if word not in _projects(store):
            return []
        names = [LATEST, *_sessions(store, word)]
        return sorted(f"{word}/{s}" for s in set(names) if s.startswith(prefix))
    projects = _projects(store)
    out = {f"{p}/" for p in projects if p.startswith(incomplete)}
    out.update(s for p in projects for s in _sessions(store, p) if s.startswith(incomplete))
    return sorted(out)
