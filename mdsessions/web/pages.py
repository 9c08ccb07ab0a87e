"""The reading pages: a session, a document at any version, a diff, search.

Every page reads the store through the public API (:class:`mdsessions.Store`,
:mod:`mdsessions.history`, :func:`mdsessions.search_sessions`) and git, under the desk's lock;
none writes. Documents and diffs are read from git objects only (:mod:`.pages_docs`), never
from a path taken from the URL. Text from agents and people goes through
:func:`~mdsessions.web.render.markdown_html` (sanitized) or is escaped by the templates.

==============================  ===============================================================
route                           page
==============================  ===============================================================
``/s/{project}/{session}``      header, ``table#phases``, ``#costs``, ``ol#timeline``
``/doc/{path}?at=C&raw=1``      ``#frontmatter``, ``#rendered``, ``ol#versions`` (raw: bytes)
``/diff/{path}?from=A&to=B``    ``#diff-rendered``, ``pre#diff-raw`` (``git diff A B -- path``)
``/search?q=…&status=…``        ``tr.result`` per session or matching line; 400 ``#errors``
==============================  ===============================================================
"""

from __future__ import annotations

import datetime as _dt
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mdsessions import (
    DocumentError,
    MdsessionsError,
    Session,
    SessionFilter,
    SessionManifest,
    SessionNotFoundError,
    SessionStatus,
    Store,
    history,
    search_sessions,
)
from mdsessions.web import app as _app
from mdsessions.web.pages_docs import (
    MAX_VERSIONS,
    TREE_MODES,
    NotServed,
    check_path,
    crumbs,
    diff_files,
    flatten,
    frontmatter_of,
    keep_version,
    previous,
    raw_diff,
    resolve_commit,
    shown_version,
    tracked,
    versions_of,
)
from mdsessions.web.render import markdown_html, page

__all__ = ["TIMELINE_PAGE", "routes"]

TIMELINE_PAGE = 200
"""Commits on one page of a session's timeline (newest first; ``?skip=`` for older ones)."""

SEARCH_ROWS = 500
"""Sessions, and matching lines, listed at most on a search page."""

_FILTER_FIELDS = ("project", "mode", "workflow", "model", "agent", "phase")


def routes() -> list[BaseRoute]:
    """The routes of this module (``/s/…``, ``/doc/…``, ``/diff/…``, ``/search``)."""
    return [
        Route("/s/{project}/{session}", session_page, name="session"),
        Route("/doc/{path:path}", document_page, name="doc"),
        Route("/diff/{path:path}", diff_page, name="diff"),
        Route("/search", search_page, name="search"),
    ]


def _not_found(request: Request, message: str) -> Response:
    return page(request, "pages_error.html", 404, title="Not found", errors=[message])


# ---------------------------------------------------------------------------- session page


def _skip(request: Request) -> int | None:
    text = request.query_params.get("skip", "0")
    return int(text) if text.isdigit() and len(text) < 10 else None


def _phase_rows(store: Store, session: Session, manifest: SessionManifest) -> list[dict[str, Any]]:
    """Each phase row with its documents at HEAD (checkpoint, feedback, agent outputs)."""
    head = store.git.head()
    rows = []
    for entry in manifest.phases:
        folder = f"{session.rel}/{entry.directory}"
        files = set(store.git.list_tree(head, folder)) if head is not None else set()
        names = sorted(f[len(folder) + 1 :] for f in files if f.count("/") == folder.count("/") + 1)
        rows.append(
            {
                "entry": entry,
                "folder": folder,
                "checkpoint": f"{folder}/checkpoint.md" if "checkpoint.md" in names else None,
                "feedback": f"{folder}/user_feedback.md" if "user_feedback.md" in names else None,
                "outputs": [
                    (n[:-3], f"{folder}/{n}")
                    for n in names
                    if n.endswith(".md") and n not in ("checkpoint.md", "user_feedback.md")
                ],
            }
        )
    return rows


def session_page(request: Request) -> Response:
    """``/s/{project}/{session}``: the session's header, phases, costs and timeline."""
    project = request.path_params["project"]
    name = request.path_params["session"]
    skip = _skip(request)
    if skip is None:
        return page(
            request, "pages_error.html", 400, title="Bad request",
            errors=["skip: expected a number of commits (0 or more)"],
        )  # fmt: skip
    with _app.desk(request).using() as store:
        try:
            session = store.session(project, name)
        except (SessionNotFoundError, ValueError) as exc:
            return _not_found(request, str(exc))
        try:
            manifest = session.manifest()
        except DocumentError as exc:  # a person's edit in progress: say where it breaks
            return page(
                request, "pages_error.html", 500, title="The session manifest does not parse",
                errors=[str(exc)], links=[("the last committed manifest",
                                           f"/doc/{quote(session.manifest_rel)}")],
            )  # fmt: skip
        except SessionNotFoundError as exc:
            return _not_found(request, str(exc))
        rows = _phase_rows(store, session, manifest)
        timeline = history.versions(session, limit=TIMELINE_PAGE, offset=skip)
    return page(
        request,
        "session.html",
        session=session,
        manifest=manifest,
        metadata=flatten(manifest.metadata),
        idea=markdown_html(manifest.idea or ""),
        notes=markdown_html(manifest.notes or ""),
        rows=rows,
        timeline=timeline,
    )


# -------------------------------------------------------------------------- document page


def document_page(request: Request) -> Response:
    """``/doc/{path}``: a tracked document at a commit (``?at=``, default HEAD), or its bytes.

    ``?raw=1`` answers the stored bytes as ``text/plain; charset=utf-8``. A tracked folder
    (a session, a phase) lists its files at that commit. Anything else (not tracked below
    the projects folder, a symlink, a ``?at=`` that is not a commit) is 404.
    """
    path = request.path_params["path"]
    with _app.desk(request).using() as store:
        try:
            check_path(store, path)  # before git is asked anything about it
            at = resolve_commit(store, request.query_params.get("at"))
            mode = tracked(store, path, at.sha, folders=True)
            if mode is None:
                raise NotServed(f"no document {path!r} at {at.short} ({at.given})")
        except NotServed as exc:
            return _not_found(request, str(exc))
        raw = request.query_params.get("raw") not in (None, "", "0")
        folder = mode in TREE_MODES
        if folder and raw:
            return _not_found(request, f"{path!r} is a folder: it has no bytes of its own")
        data = b"" if folder else store.read_at(at.sha, path)
        if raw:
            return Response(data, media_type="text/plain; charset=utf-8")
        listing = sorted(store.git.list_tree(at.sha, path)) if folder else None
        versions = versions_of(store, path, limit=MAX_VERSIONS + 1)
        more = len(versions) > MAX_VERSIONS
        versions = versions[:MAX_VERSIONS]
        head = store.git.head()
        current = shown_version(store, path, at.sha, versions)
        context = {
            "path": path,
            "name": path.rsplit("/", 1)[-1],
            "at": at,
            "latest": at.sha == head,
            "current": current,
            "versions": versions,
            "more": more,
            "crumbs": crumbs(store, path),
            "listing": listing,
        }
    if listing is not None:
        return page(request, "doc.html", fields=None, error=None, rendered=None, **context)
    fields, body, _line, error = frontmatter_of(data.decode("utf-8", "replace"))
    rendered = markdown_html(body) if path.endswith(".md") else None
    if rendered is not None and "at" in request.query_params:
        rendered = keep_version(rendered, at.sha)
    return page(
        request, "doc.html", fields=fields, error=error, rendered=rendered, text=body, **context
    )


# ------------------------------------------------------------------------------ diff page


def diff_page(request: Request) -> Response:
    """``/diff/{path}?from=A&to=B``: what changed in a file (or folder) between two commits.

    ``to`` defaults to HEAD, ``from`` to the previous version of the path before ``to``
    (the empty tree when there is none). Unknown commits and untracked paths are 404.
    """
    path = request.path_params["path"]
    with _app.desk(request).using() as store:
        try:
            check_path(store, path)  # before git is asked anything about it
            to = resolve_commit(store, request.query_params.get("to"))
            given = request.query_params.get("from")
            old = resolve_commit(store, given) if given else None
            old_sha = old.sha if old is not None else previous(store, path, to.sha)
            there = tracked(store, path, to.sha, folders=True)
            if there is None and tracked(store, path, old_sha, folders=True) is None:
                raise NotServed(f"no document or folder {path!r} at {to.short} ({to.given})")
        except NotServed as exc:
            return _not_found(request, str(exc))
        files = diff_files(store, old_sha, to.sha, path)
        raw = raw_diff(store, old_sha, to.sha, path)
    return page(
        request,
        "diff.html",
        path=path,
        crumbs=crumbs(store, path),
        old=old_sha,
        new=to.sha,
        files=files,
        raw=raw,
    )


# ---------------------------------------------------------------------------- search page


def _time(errors: list[str], name: str, value: str) -> _dt.datetime | None:
    if not value:
        return None
    try:
        when = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        errors.append(
            f"{name}: {value!r} is not a UTC day (2024-11-24) or ISO-8601 time "
            "(2024-11-24T10:00:00Z)"
        )
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.timezone.utc)


def _filters(request: Request, errors: list[str]) -> SessionFilter:
    """The search form's filters (``errors`` gets one line per bad field, named)."""
    query = request.query_params
    statuses = tuple(s for s in query.getlist("status") if s)
    allowed = [s.value for s in SessionStatus]
    for status in statuses:
        if status not in allowed:
            errors.append(f"status: {status!r} is not one of {', '.join(allowed)}")
    values: dict[str, str | None] = {k: query.get(k, "").strip() or None for k in _FILTER_FIELDS}
    for key, value in values.items():
        if value is not None and (len(value) > 200 or any(c in value for c in "\0\n\r")):
            errors.append(f"{key}: expected one line of at most 200 characters")
    metadata = []
    for item in query.getlist("meta"):
        key, sep, value = item.partition("=")
        if item and (not sep or not key.strip()):
            errors.append(f"meta: {item!r} is not KEY=VALUE")
        elif item:
            metadata.append((key.strip(), value))
    return SessionFilter(
        metadata=tuple(metadata),
        project=values["project"],
        status=statuses,
        tags=tuple(t.strip() for t in query.getlist("tag") if t.strip()),
        mode=values["mode"],
        workflow=values["workflow"],
        model=values["model"],
        agent=values["agent"],
        phase=values["phase"],
        since=_time(errors, "since", query.get("since", "")),
        until=_time(errors, "until", query.get("until", "")),
    )


def search_page(request: Request) -> Response:
    """``/search``: sessions by the #14 filters and, with ``q``, the matching lines.

    Bad filter values answer 400 with ``#errors`` naming each field.
    """
    query = request.query_params
    errors: list[str] = []
    filters = _filters(request, errors)
    text = query.get("q", "") or None
    regex = query.get("regex") == "1"
    ignore_case = query.get("i") == "1"
    context: dict[str, Any] = {
        "query": query,
        "statuses": [s.value for s in SessionStatus],
        "limit": SEARCH_ROWS,
        "result": None,
        "at": None,
    }
    if text is not None and (len(text) > 1000 or "\0" in text or "\n" in text):
        errors.append("q: expected one line of at most 1000 characters")
    at_text = query.get("at", "").strip() or None
    if not errors:
        with _app.desk(request).using() as store:
            try:
                at = resolve_commit(store, at_text).sha if at_text else None
            except NotServed as exc:
                errors.append(f"at: {exc}")
            else:
                context["at"] = at
                try:
                    context["result"] = search_sessions(
                        store, text, filters=filters, at=at, regex=regex, ignore_case=ignore_case
                    )
                except MdsessionsError as exc:
                    field = "project" if "project id" in str(exc) else "q"
                    errors.append(f"{field}: {exc}")
    status = 400 if errors else 200
    return page(request, "search.html", status, errors=errors, **context)
