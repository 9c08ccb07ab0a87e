"""Search: metadata filters over every session, and full-text search with ``git grep``.

Seed 000 ``search_sessions``. The filters read the session index's summaries and facts
(:mod:`mdsessions.cache.sessions`, :mod:`mdsessions.cache.facts`), validated against the
files on every call; the text search is ``git grep`` over the projects folder, at a commit
or in the working tree. No other index: git and the manifests are the truth.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mdsessions.cache.sessions import SessionSummary
from mdsessions.errors import StoreError
from mdsessions.models.query import SearchMatch, SearchResult, SessionFilter, SessionHit

if TYPE_CHECKING:
    from mdsessions.store.store import Store

__all__ = ["find_sessions", "search_sessions"]

#: With at most this many sessions passing the filters, ``git grep`` is given their folders.
_FEW = 200
_UTC = _dt.timezone.utc

Check = Callable[[SessionSummary], bool]


def _phase_check(value: str) -> Check:
    wanted = value.strip().lower()
    number = int(wanted) if wanted.isdigit() else None

    def check(s: SessionSummary) -> bool:
        for row in (s.facts_data or [[], {}, [], [], None])[3]:
            if row[0] == number or str(row[1]).lower() == wanted:
                return True
            if str(row[1]).lower().replace(" ", "_") == wanted:
                return True
        return False

    return check


def _agent_check(index: int, value: str) -> Check:
    def check(s: SessionSummary) -> bool:
        facts = s.facts_data
        if facts is None:
            return False
        return any(a[index] == value for row in facts[3] for a in row[12])

    return check


def _checks(f: SessionFilter) -> list[Check]:
    """One predicate per filter that is set (the cheapest first)."""
    checks: list[Check] = []
    if f.status:
        statuses = frozenset(f.status)
        checks.append(lambda s: s.status.value in statuses)
    if f.workflow is not None:
        workflow = f.workflow
        checks.append(lambda s: s.workflow == workflow)
    if f.mode is not None:
        mode = f.mode
        checks.append(lambda s: s.mode == mode)
    if f.since is not None:
        since = f.since.astimezone(_UTC)
        checks.append(lambda s: s.created >= since)
    if f.until is not None:
        until = f.until.astimezone(_UTC)
        checks.append(lambda s: s.created < until)
    if f.tags:
        tags = frozenset(f.tags)
        checks.append(lambda s: s.facts_data is not None and tags.issubset(s.facts_data[0]))
    for key, value in f.metadata:
        checks.append(_metadata_check(key, value))
    if f.agent is not None:
        checks.append(_agent_check(0, f.agent))
    if f.model is not None:
        checks.append(_agent_check(1, f.model))
    if f.phase is not None:
        checks.append(_phase_check(f.phase))
    return checks


def _metadata_check(key: str, value: str) -> Check:
    def check(s: SessionSummary) -> bool:
        facts = s.facts_data
        return facts is not None and key in facts[1] and _text(facts[1][key]) == value

    return check


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _active(f: SessionFilter) -> bool:
    return any(
        (f.status, f.tags, f.metadata, f.mode, f.workflow, f.model, f.agent, f.phase, f.since)
    ) or (f.until is not None)


def find_sessions(store: Store, filters: SessionFilter | None = None) -> list[SessionSummary]:
    """The sessions passing every filter, from the validated session index.

    Args:
        store: The store.
        filters: The filters (``None``: every session).

    Returns:
        Summaries in listing order (project, creation time, session id); ``summary.facts``
        holds tags, metadata, totals and phase rows.

    Raises:
        OSError: If the store's files cannot be read.
    """
    f = filters or SessionFilter()
    summaries = store.list_sessions(f.project)
    checks = _checks(f)
    if not checks:
        return summaries
    return [s for s in summaries if all(check(s) for check in checks)]


def _hit(s: SessionSummary) -> SessionHit:
    return SessionHit(
        project=s.project_id,
        session=s.session_id,
        status=s.status.value,
        workflow=s.workflow,
        mode=s.mode,
        created=s.created,
        tags=tuple(s.facts_data[0]) if s.facts_data is not None else (),
        path=s.path,
    )


def _resolve(store: Store, at: str) -> str:
    proc = store.git.git("rev-parse", "--verify", "--quiet", f"{at}^{{commit}}", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise StoreError(f"--at {at!r}: not a commit of this store (expected a commit id or ref)")
    return proc.stdout.decode().strip()


def _grep(
    store: Store, text: str, *, at: str | None, paths: list[str], regex: bool, ignore_case: bool
) -> list[tuple[str, int, str]]:
    """``git grep -n`` of ``text`` below ``paths``: ``(path, line, text)`` per match."""
    args = ["-c", "grep.lineNumber=true", "grep", "-n", "-I", "-z", "--no-color", "--full-name"]
    args.append("-E" if regex else "-F")
    if ignore_case:
        args.append("-i")
    args += ["-e", text]
    if at is not None:
        args.append(at)
    args += ["--", *paths]
    proc = store.git.git(*args, check=False)
    if proc.returncode not in (0, 1):
        error = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise StoreError(f"search {text!r}: git grep failed: {error[-1] if error else ''}")
    cut = len(at) + 1 if at is not None else 0
    out = []
    for record in proc.stdout.decode("utf-8", "replace").split("\n"):
        if not record:
            continue
        path, _, rest = record.partition("\0")
        number, _, line = rest.partition("\0")
        out.append((path[cut:], int(number), line))
    return out


def search_sessions(
    store: Store,
    text: str | None = None,
    *,
    filters: SessionFilter | None = None,
    at: str | None = None,
    regex: bool = False,
    ignore_case: bool = False,
    hits: bool = True,
) -> SearchResult:
    """Sessions passing the filters and, with a text, the document lines that contain it.

    Seed 000 ``search_sessions``. The text search is ``git grep -n`` over the projects
    folder (fixed text unless ``regex``), in the working tree or at commit ``at``; only the
    documents of sessions in ``sessions/`` folders (not ``archive/``) are matched, and with
    filters only those of the sessions passing them (filters read the sessions as they are
    now, also with ``at``).

    Args:
        store: The store.
        text: The text to find (``None``: filters only).
        filters: Metadata filters (``None``: none).
        at: A commit (id, ref, ``HEAD~3``) to search instead of the working tree.
        regex: ``text`` is an extended regular expression (``git grep -E``).
        ignore_case: Match regardless of case.
        hits: With a text and no filter, also list the sessions of the matching lines (a
            listing of the store: ``False`` leaves ``sessions`` empty, what a caller that
            prints only the lines needs).

    Returns:
        The sessions (with a text: those with a matching line) and the matching lines.

    Raises:
        StoreError: If ``at`` is not a commit, or ``git grep`` fails.
        OSError: If the store's files cannot be read.
    """
    f = filters or SessionFilter()
    if text is None:
        return SearchResult(sessions=tuple(_hit(s) for s in find_sessions(store, f)))
    commit = _resolve(store, at) if at is not None else None
    rev = at if commit is not None else None
    filtered = _active(f) or f.project is not None
    chosen = find_sessions(store, f) if filtered else []
    base = "" if store.projects_dir == "." else store.projects_dir + "/"
    if filtered and len(chosen) <= _FEW:
        paths = [s.path.rpartition("/")[0] + "/" for s in chosen]
        if not paths:
            return SearchResult(text=text, at=commit)
    elif f.project is not None:
        paths = [f"{base}{f.project}/sessions/"]
    else:
        paths = [base or "."]
    keep = {(s.project_id, s.session_id): s for s in chosen}
    folders = {s.path.rpartition("/")[0]: (s.project_id, s.session_id) for s in chosen}
    matches: list[SearchMatch] = []
    found: dict[tuple[str, str], None] = {}
    for path, number, line in _grep(
        store, text, at=rev, paths=paths, regex=regex, ignore_case=ignore_case
    ):
        parts = path[len(base) :].split("/", 3)
        if len(parts) < 4 or parts[1] != "sessions":
            continue
        ids = folders.get(f"{base}{parts[0]}/sessions/{parts[2]}", (parts[0], parts[2]))
        if filtered and ids not in keep:
            continue
        found[ids] = None
        matches.append(
            SearchMatch(path=path, line=number, text=line, project=ids[0], session=ids[1])
        )
    if filtered:
        sessions = tuple(_hit(keep[ids]) for ids in keep if ids in found)
    elif hits and found:
        sessions = tuple(
            _hit(s) for s in store.list_sessions() if (s.project_id, s.session_id) in found
        )
    else:
        sessions = ()
    return SearchResult(text=text, at=commit, sessions=sessions, matches=tuple(matches))
