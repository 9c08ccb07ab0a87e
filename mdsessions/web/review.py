"""The reviewer's pages: the inbox, a phase with its outputs beside the decision form, live events.

Routes (the page contract of issue 16):

* ``GET /`` — the inbox: every phase awaiting review across projects, oldest first
  (:meth:`mdsessions.Store.inbox`), and how many phases of paused sessions are left out;
* ``GET /s/{project}/{session}/phase/{n}`` — the phase's agent outputs rendered (through the
  sanitizer) beside ``form#decision`` while the phase awaits review, else its decision;
* ``POST /s/{project}/{session}/phase/{n}/decide`` — the decision, made with
  :func:`mdsessions.decide` (the same file edit and commit as an editor review): 303 back to
  the phase page on success; 409 with ``#stale`` (the phase as it is now, a fresh form)
  when the phase changed since the page was loaded; 409 with ``#errors.unrecorded`` when a
  person's editor holds an unrecorded edit of the file (nothing is overwritten); 400 with
  ``#errors`` naming the field at fault; 403 without the form's CSRF token;
* ``GET /events`` — server-sent ``change`` events (:mod:`mdsessions.web.live`).

Form text is taken as typed, except that line breaks are normalized: browsers send a
textarea's line breaks as CRLF (the HTML standard), so CRLF becomes LF and nothing
else changes (the comments reach ``user_feedback.md`` byte for byte as typed). The
requested changes are one per line; blank lines are dropped and so is a leading ``- `` (the
markdown list marker people type out of habit).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

import mdsessions
from mdsessions import (
    ConflictError,
    DocumentError,
    Identity,
    MdsessionsError,
    ReviewState,
    SessionNotFoundError,
    Store,
    UnrecordedEditError,
)
from mdsessions.store.lifecycle import without_paused
from mdsessions.web.live import event_stream
from mdsessions.web.render import page
from mdsessions.web.security import check_csrf

if TYPE_CHECKING:
    from mdsessions import InboxItem, PhaseEntry, Session, SessionManifest
    from mdsessions.web.app import Desk

__all__ = ["ACTIONS", "REVIEWER_COOKIE", "routes"]

ACTIONS = ("approved", "revise", "rejected")
"""The decisions the form offers (values of its ``action`` radio buttons)."""

REVIEWER_COOKIE = "mdsessions_reviewer"
"""The cookie that remembers the reviewer identity of the last decision (URL-encoded)."""

_FIELDS = ("action", "comments", "requested_changes", "reviewer", "token", "csrf")
_SHA = re.compile(r"[0-9a-f]{7,64}")


def routes() -> list[BaseRoute]:
    """The routes of this module (inbox ``/``, phase pages and decisions, ``/events``)."""
    return [
        Route("/", inbox, methods=["GET"], name="inbox"),
        Route("/s/{project}/{session}/phase/{n:int}", phase_page, methods=["GET"], name="phase"),
        Route("/s/{project}/{session}/phase/{n:int}/decide", decide, methods=["POST"]),
        Route("/s/{project}/{session}/phase/{n:int}/decide", to_phase, methods=["GET"]),
        Route("/events", events, methods=["GET"], name="events"),
    ]


def _desk(request: Request) -> Desk:
    from mdsessions.web.app import desk

    return desk(request)


# --------------------------------------------------------------------------------- inbox


INBOX_PAGE = 100
"""Phases the inbox lists a page (``?skip=N`` for the next ones; the count names them all)."""


def inbox(request: Request) -> Response:
    """``GET /``: every phase awaiting review, oldest first, across projects.

    ``?skip=N`` (default 0) starts the list after the N oldest; each page lists
    :data:`INBOX_PAGE` phases and says how many await review in all.
    """
    the_desk = _desk(request)
    raw = request.query_params.get("skip", "0")
    skip = int(raw) if raw.isdigit() else -1
    if skip < 0:
        return page(
            request, "review_error.html", status_code=400,
            title="Bad request", message=f"skip: expected a whole number >= 0, got {raw!r}",
        )  # fmt: skip
    with the_desk.using() as store:
        items, paused = the_desk.remembered("inbox", lambda: _inbox(store))
    return page(
        request,
        "inbox.html",
        items=items[skip : skip + INBOX_PAGE],
        total=len(items),
        skip=skip,
        size=INBOX_PAGE,
        paused=paused,
    )


def warm(desk: Desk) -> None:
    """Read the inbox once (at start), so the session index is loaded before the first page."""
    with desk.using() as store:
        desk.remembered("inbox", lambda: _inbox(store))


def rewarm(desk: Desk) -> None:
    """After a change: read the inbox again if a page showed it (called before pages reload)."""
    if "inbox" in desk.memo:
        warm(desk)


def _inbox(store: Store) -> tuple[list[InboxItem], int]:
    """The phases awaiting review of sessions not paused, and how many more paused ones have.

    Two validated reads of the session index (the inbox, then the statuses), where
    ``store.inbox()`` and ``store.inbox(paused=True)`` would be three.
    """
    waiting = store.inbox(paused=True)
    if not waiting:
        return [], 0
    items = without_paused(store, waiting, None)
    return items, len(waiting) - len(items)


# ---------------------------------------------------------------------------- phase page


def _load(store: Store, request: Request) -> tuple[Session, SessionManifest, PhaseEntry]:
    """The session, its manifest and the phase row the URL names, else a 404.

    Ids go through the store's checks (``[A-Za-z0-9][A-Za-z0-9._-]*``), so ``..`` or a
    slash never reaches the file system.
    """
    params = request.path_params
    ref = f"{params['project']}/{params['session']}"
    try:
        session = store.session(str(params["project"]), str(params["session"]))
        manifest = session.manifest()
        entry = session.phase_entry(int(params["n"]), manifest)
    except SessionNotFoundError:  # its message names the store's folder: not for the page
        raise HTTPException(404, f"There is no session {ref} in this store.") from None
    except MdsessionsError as exc:
        raise HTTPException(404, str(exc)) from None
    return session, manifest, entry


def _default_reviewer(request: Request, store: Store) -> str:
    remembered = unquote(request.cookies.get(REVIEWER_COOKIE, ""))
    if remembered:
        try:
            return str(Identity.parse(remembered).checked())
        except ValueError:
            pass
    configured = _desk(request).reviewer
    return str(configured) if configured else str(store.person())


def _outputs(session: Session, number: int) -> tuple[list[dict[str, Any]], str | None]:
    """The phase's outputs for the page (name, figures, path), or the error reading them."""
    try:
        found = session.outputs([number]).get(number, {})
    except MdsessionsError as exc:
        return [], str(exc)
    folder = session.phase_rel(number)
    rows = [
        {
            "name": name,
            "path": f"{folder}/{name}.md",
            "model": doc.model,
            "status": doc.status.value,
            "tokens": doc.input_tokens + doc.output_tokens,
            "input_tokens": doc.input_tokens,
            "output_tokens": doc.output_tokens,
            "cost": doc.cost,
            "duration": doc.duration,
            "error": doc.error,
            "content": doc.content,
        }
        for name, doc in found.items()
    ]
    return rows, None


def _phase(
    request: Request,
    store: Store,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Render the phase page (also the answer of a refused decision, with its messages)."""
    session, manifest, entry = _load(store, request)
    number = entry.number
    outputs, outputs_error = _outputs(session, number)
    try:
        feedback = session.feedback(number)
        feedback_error = None
    except MdsessionsError as exc:
        feedback, feedback_error = None, str(exc)
    awaiting = entry.review is ReviewState.PENDING and (
        feedback is not None or feedback_error is not None
    )
    values = {
        "action": "",
        "comments": feedback.comments if feedback is not None else "",
        "requested_changes": "\n".join(feedback.requested_changes) if feedback else "",
        "reviewer": _default_reviewer(request, store),
    }
    values.update(form or {})
    recorded = request.query_params.get("recorded", "")
    action = request.query_params.get("action", "")
    context: dict[str, Any] = {
        "session": session,
        "manifest": manifest,
        "entry": entry,
        "outputs": outputs,
        "outputs_error": outputs_error,
        "feedback": feedback,
        "feedback_error": feedback_error,
        "awaiting": awaiting,
        "token": mdsessions.review_token(session, number) if awaiting else "",
        "values": values,
        "actions": ACTIONS,
        "recorded": recorded if _SHA.fullmatch(recorded) else None,
        "recorded_action": action if action in ACTIONS else None,
        "errors": [],
        "stale": None,
        "unrecorded": None,
        "decided": None,
        "feedback_rel": f"{session.phase_rel(number, manifest)}/user_feedback.md",
    }
    if not awaiting and entry.review.value in ACTIONS:
        # Who decided, and when: the decision is the feedback file's last commit.
        last = store.log(paths=[context["feedback_rel"]], max_count=1)
        context["decided"] = last[0] if last else None
    context.update(extra)
    return page(request, "phase.html", status_code=status_code, **context)


def phase_page(request: Request) -> Response:
    """``GET /s/{project}/{session}/phase/{n}``: the outputs beside the decision."""
    with _desk(request).using() as store:
        return _phase(request, store)


# ------------------------------------------------------------------------------ decision


def to_phase(request: Request) -> Response:
    """``GET …/decide`` (a refused decision's page reloaded, or its URL reopened): the phase."""
    return RedirectResponse(request.url.path.removesuffix("/decide"), status_code=303)


def _text(value: str) -> str:
    """A textarea's text as typed: CRLF (what browsers send) → LF, nothing else."""
    return value.replace("\r\n", "\n")


def _changes(value: str) -> list[str]:
    lines = (line.strip() for line in _text(value).split("\n"))
    return [line[2:].strip() if line.startswith("- ") else line for line in lines if line]


def _check(fields: dict[str, str]) -> list[tuple[str, str]]:
    """The form's own mistakes, as ``(field, message)``; the store checks the rest."""
    errors = []
    if fields.get("action", "") not in ACTIONS:
        errors.append(("action", "choose a decision: approved, revise or rejected"))
    reviewer = fields.get("reviewer", "").strip()
    if reviewer:
        try:
            Identity.parse(reviewer).checked()
        except ValueError as exc:
            errors.append(("reviewer", f"{exc} (write it as Name <email>)"))
    if not fields.get("token"):
        errors.append(("token", "the form has no review token: reload the page"))
    return errors


async def decide(request: Request) -> Response:
    """``POST …/phase/{n}/decide``: make the decision (one commit) or say why not."""
    form = await request.form()
    fields = {name: value for name in _FIELDS if isinstance(value := form.get(name), str)}
    return await run_in_threadpool(_decide, request, fields)


def _decide(request: Request, fields: dict[str, str]) -> Response:
    the_desk = _desk(request)
    typed = {k: fields.get(k, "") for k in ("action", "comments", "requested_changes")}
    typed["reviewer"] = fields.get("reviewer", "").strip()
    with the_desk.using() as store:
        if not check_csrf(the_desk.csrf, fields.get("csrf")):
            # Refused, with the typed text in a fresh form (a tab left open across a restart
            # of the desk carries an old token: the reviewer's comments are not lost).
            message = (
                "this form has no valid CSRF token (it is older than this desk, or it came "
                "from another site): nothing was recorded; decide again with this form"
            )
            return _phase(request, store, 403, typed, errors=[("csrf", message)])
        session, _manifest, entry = _load(store, request)
        errors = _check(fields)
        if errors:
            return _phase(request, store, 400, typed, errors=errors)
        try:
            decision = mdsessions.decide(
                session,
                entry.number,
                typed["action"],
                comments=_text(typed["comments"]),
                requested_changes=_changes(typed["requested_changes"]),
                author=typed["reviewer"] or None,
                expected=fields["token"],
            )
        except mdsessions.StaleDecisionError as exc:
            return _phase(request, store, 409, typed, stale=str(exc))
        except UnrecordedEditError as exc:
            return _phase(request, store, 409, typed, unrecorded=str(exc))
        except DocumentError as exc:
            where = exc.field or "comments"
            return _phase(request, store, 400, typed, errors=[(where, str(exc))])
        except ConflictError as exc:
            return _phase(request, store, 409, typed, errors=[("store", str(exc))])
        except (MdsessionsError, ValueError) as exc:
            return _phase(request, store, 400, typed, errors=[("decision", str(exc))])
        the_desk.forget()  # the feed sees the commit too, a moment later
    url = request.url.path.removesuffix("/decide")
    response = RedirectResponse(
        f"{url}?recorded={decision.commit}&action={typed['action']}", status_code=303
    )
    if typed["reviewer"]:
        response.set_cookie(
            REVIEWER_COOKIE,
            quote(typed["reviewer"]),
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="strict",
        )
    return response


# -------------------------------------------------------------------------------- events


async def events(request: Request) -> Response:
    """``GET /events``: the store's changes as server-sent events, until the server stops."""
    feed = _desk(request).feed
    assert feed is not None
    return StreamingResponse(
        event_stream(feed),
        media_type="text/event-stream",
        headers={"x-accel-buffering": "no"},
    )
