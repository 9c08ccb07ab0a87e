"""The review desk in process and as a real server: inbox, phase page, decisions, safety, live.

Pages are requested through Starlette's ``TestClient`` against a real store in ``tmp_path``
(real git, nothing mocked); ``mdsessions serve`` runs as a real process for the URL line,
the token, ``/events`` and the clean stop. The real-browser tests are in
tests/test_web_browser.py.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import (
    PERSON,
    REPO_ROOT,
    assert_clean,
    author,
    commit_count,
    git,
    head,
    snapshot,
    subject,
    trailers,
)
from starlette.testclient import TestClient

import mdsessions
from mdsessions import Session, Store
from mdsessions.web.app import create_app
from mdsessions.web.live import ChangeFeed
from mdsessions.web.review import REVIEWER_COOKIE
from mdsessions.web.security import COOKIE, CSP

ANN = "Ann Reviewer <ann@example.com>"
AGENT = "concept_expansion"
LIVE_LIMIT = 1.0  # seconds from a commit to its event on an open page: the acceptance figure
XSS = (
    "# Market\n\nPlain **bold** text.\n\n"
    "<script>alert('script')</script>\n\n"
    '<img src="x" onerror="alert(\'img\')">\n\n'
    "<a href=\"javascript:alert('link')\">click me</a>\n\n"
    "[md link](javascript:alert('md'))\n\n"
    '<div onclick="alert(\'div\')" style="color:red">styled</div>\n\n'
    '<iframe src="https://example.com"></iframe>\n'
)


# ------------------------------------------------------------------------------ helpers


def waiting_session(
    store: Store,
    project: str = "demo",
    sid: str = "s1",
    *,
    completed: str | None = None,
    content: str = "# Concept\n\nA leaderboard for small gyms.\n",
) -> Session:
    """A session whose phase 1 completed and awaits review (one output)."""
    session = store.create_session(project, sid, idea="A leaderboard for small gyms")
    extra: dict[str, Any] = {"completed": completed} if completed else {}
    if completed:
        extra["started"] = completed
    session.save_checkpoint(
        1,
        status="completed",
        outputs=[
            {
                "agent": AGENT,
                "content": content,
                "model": "gpt-4o-mini",
                "input_tokens": 1200,
                "output_tokens": 800,
                "cost": 0.0125,
                "duration": 12.5,
            }
        ],
        **extra,
    )
    return session


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    """A client of the desk over ``store`` (no lifespan: no observer thread)."""
    yield TestClient(create_app(store))


def form_of(html: str) -> dict[str, str]:
    """The hidden fields (token, csrf) and the reviewer default of ``form#decision``."""
    assert 'id="decision"' in html and "<form" in html, html
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    reviewer = re.search(r'name="reviewer" value="([^"]*)"', html)
    assert reviewer is not None
    fields["reviewer"] = reviewer.group(1).replace("&lt;", "<").replace("&gt;", ">")
    return fields


def post_decision(client: TestClient, url: str, **fields: str) -> httpx.Response:
    page = client.get(url)
    assert page.status_code == 200, page.text
    data = {**form_of(page.text), "comments": "", "requested_changes": "", **fields}
    return client.post(f"{url}/decide", data=data, follow_redirects=False)


class _Elements(HTMLParser):
    """Every start tag with its attributes, and where ``<article class="output">`` text is."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.tags


def by_id(html: str, element_id: str) -> bool:
    return any(attrs.get("id") == element_id for _tag, attrs in elements(html))


# -------------------------------------------------------------------------------- inbox


def test_inbox_lists_waiting_phases_oldest_first(store: Store, client: TestClient) -> None:
    waiting_session(store, "beta", "s-new", completed="2024-11-24T12:00:00Z")
    waiting_session(store, "alpha", "s-old", completed="2024-11-24T08:00:00Z")
    waiting_session(store, "alpha", "s-mid", completed="2024-11-24T10:00:00Z")
    store.create_session("alpha", "not-waiting", idea="x")
    page = client.get("/")
    assert page.status_code == 200
    rows = [a for tag, a in elements(page.text) if tag == "tr" and a.get("class") == "inbox-item"]
    assert [(r["data-session"], r["data-phase"]) for r in rows] == [
        ("alpha/s-old", "1"),
        ("alpha/s-mid", "1"),
        ("beta/s-new", "1"),
    ]
    links = [a["href"] for tag, a in elements(page.text) if a.get("class") == "review-link"]
    assert links == ["/s/alpha/s-old/phase/1", "/s/alpha/s-mid/phase/1", "/s/beta/s-new/phase/1"]
    assert "2024-11-24T08:00:00Z" in page.text and "Concept Expansion" in page.text
    assert not by_id(page.text, "paused") and not by_id(page.text, "inbox-empty")


def test_inbox_pages_the_oldest_first(
    store: Store, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdsessions.web import review

    monkeypatch.setattr(review, "INBOX_PAGE", 2)
    for n in range(5):
        waiting_session(store, "demo", f"s{n}", completed=f"2024-11-24T1{n}:00:00Z")

    def shown(url: str) -> list[str]:
        page = client.get(url)
        assert page.status_code == 200, page.text
        rows = [a for t, a in elements(page.text) if t == "tr" and a.get("class") == "inbox-item"]
        return [str(r["data-session"]) for r in rows]

    assert shown("/") == ["demo/s0", "demo/s1"]
    assert shown("/?skip=2") == ["demo/s2", "demo/s3"]
    assert shown("/?skip=4") == ["demo/s4"]
    first = client.get("/").text
    assert "5 phases await review" in first and 'href="/?skip=2"' in first
    last = client.get("/?skip=4").text
    assert 'href="/?skip=2"' in last and "newer" not in last
    past = client.get("/?skip=9").text
    assert by_id(past, "inbox-past-end") and not by_id(past, "inbox-empty")
    for bad in ("-1", "x", "1.5"):
        answer = client.get(f"/?skip={bad}")
        assert answer.status_code == 400 and "skip" in answer.text


def test_inbox_counts_paused_sessions_and_says_when_empty(store: Store, client: TestClient) -> None:
    empty = client.get("/")
    assert by_id(empty.text, "inbox-empty") and "Nothing awaits review" in empty.text
    waiting_session(store, "demo", "s1").pause()
    page = client.get("/")
    assert by_id(page.text, "inbox-empty") and "inbox-item" not in page.text
    assert "1 phase(s) of paused sessions not shown" in page.text


# --------------------------------------------------------------------------- phase page


def test_phase_page_renders_outputs_sanitized(store: Store, client: TestClient) -> None:
    waiting_session(store, content=XSS)
    page = client.get("/s/demo/s1/phase/1")
    assert page.status_code == 200
    html = page.text
    tags = elements(html)
    articles = [a for tag, a in tags if tag == "article"]
    assert articles == [{"class": "output", "data-agent": AGENT}]
    assert "<strong>bold</strong>" in html and "gpt-4o-mini" in html
    assert "2000 tokens" in html and "$0.0125" in html and "12 s" in html
    scripts = [a for tag, a in tags if tag == "script"]
    assert scripts == [{"src": "/static/live.js", "defer": None}]
    assert "alert('script')" not in html
    for tag, attrs in tags:
        assert tag not in ("iframe", "style", "object", "embed"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
            assert name != "style", (tag, attrs)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, attrs)
    assert by_id(html, "decision") and by_id(html, "decide")
    names = {a.get("name") for tag, a in tags if tag in ("input", "textarea")}
    assert names == {"action", "comments", "requested_changes", "reviewer", "token", "csrf"}
    radios = [a["value"] for tag, a in tags if tag == "input" and a.get("type") == "radio"]
    assert radios == ["approved", "revise", "rejected"]
    form = next(a for tag, a in tags if tag == "form")
    assert form["method"] == "post" and form["action"] == "/s/demo/s1/phase/1/decide"
    assert form_of(html)["reviewer"] == PERSON  # the store's git config
    assert form_of(html)["token"] == mdsessions.review_token(store.session("demo", "s1"), 1)
    assert 'class="status status-awaiting_review"' in html


def test_security_headers_on_every_page(store: Store, client: TestClient) -> None:
    waiting_session(store)
    for url in ("/", "/s/demo/s1/phase/1", "/static/live.js", "/s/demo/nope/phase/1"):
        answer = client.get(url)
        assert answer.headers["content-security-policy"] == CSP, url
        assert "default-src 'none'" in CSP and "script-src 'self'" in CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"


def test_a_phase_not_awaiting_review_shows_no_form(store: Store, client: TestClient) -> None:
    waiting_session(store)
    later = client.get("/s/demo/s1/phase/2")  # not reached yet
    assert later.status_code == 200
    assert by_id(later.text, "decision") and "<form" not in later.text
    assert "no agent output yet" in later.text


@pytest.mark.parametrize(
    "url",
    [
        "/s/demo/nope/phase/1",
        "/s/nope/s1/phase/1",
        "/s/demo/s1/phase/99",
        "/s/demo/s1/phase/0",
        "/s/demo/s1/phase/x",
        "/s/../../etc/phase/1",
        "/s/%2e%2e/%2e%2e/phase/1",
        "/s/demo/%2e%2e/phase/1",
        "/s/demo/..%2f..%2f..%2fetc/phase/1",
        "/s/.git/s1/phase/1",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fapp.py",
    ],
)
def test_unknown_or_traversing_paths_are_404(store: Store, client: TestClient, url: str) -> None:
    waiting_session(store)
    answer = client.get(url)
    assert answer.status_code == 404, (url, answer.text)
    assert "root:" not in answer.text and "import" not in answer.text
    assert str(store.root) not in answer.text  # the server's folders are not for the page
    if not url.startswith("/static"):
        assert "<main>" in answer.text


def test_a_recorded_flag_must_be_a_commit_id(store: Store, client: TestClient) -> None:
    waiting_session(store)
    page = client.get("/s/demo/s1/phase/1?recorded=<script>x</script>&action=<b>")
    assert not by_id(page.text, "decision-recorded") and "<b>" not in page.text


# ---------------------------------------------------------------------------- decisions


def twin_stores(tmp_path: Path) -> tuple[Store, Store]:
    """Two stores holding the same waiting session (one for the page, one for decide)."""
    stores = (Store.init(tmp_path / "page"), Store.init(tmp_path / "api"))
    for one in stores:
        waiting_session(one)
    return stores


@pytest.mark.parametrize(
    ("action", "comments", "changes"),
    [
        ("approved", "", ""),
        (
            "revise",
            "Focus on **students** (café — ✓),\r\nnot gyms.  \r\n\r\n- a dash line stays\r\n",
            "audience: students\r\n\r\n- pricing: free tier \r\n",
        ),
        ("rejected", "Not viable.\r\n", ""),
    ],
)
def test_a_decision_on_the_page_is_the_commit_decide_makes(
    tmp_path: Path, action: str, comments: str, changes: str
) -> None:
    on_page, by_api = twin_stores(tmp_path)
    try:
        client = TestClient(create_app(on_page))
        before = commit_count(on_page.root)
        answer = post_decision(
            client,
            "/s/demo/s1/phase/1",
            action=action,
            comments=comments,
            requested_changes=changes,
            reviewer=ANN,
        )
        assert answer.status_code == 303, answer.text
        sha = head(on_page.root)
        assert answer.headers["location"] == f"/s/demo/s1/phase/1?recorded={sha}&action={action}"
        assert commit_count(on_page.root) == before + 1
        expected_changes = [c for c in ("audience: students", "pricing: free tier") if changes]
        decision = mdsessions.decide(
            by_api.session("demo", "s1"),
            1,
            action,
            comments=comments.replace("\r\n", "\n"),
            requested_changes=expected_changes,
            author=ANN,
            expected=mdsessions.review_token(by_api.session("demo", "s1"), 1),
        )
        assert decision.commit == head(by_api.root)
        assert subject(on_page.root) == subject(by_api.root)
        assert trailers(on_page.root) == trailers(by_api.root)
        assert author(on_page.root) == author(by_api.root) == ANN
        rel = on_page.session("demo", "s1").document_rel(1, "feedback")
        assert (on_page.root / rel).read_bytes() == (by_api.root / rel).read_bytes()
        assert comments.replace("\r\n", "\n").encode() in (on_page.root / rel).read_bytes()
        shown = client.get(answer.headers["location"])
        assert by_id(shown.text, "decision-recorded") and sha[:10] in shown.text
        assert by_id(shown.text, "decision") and "<form" not in shown.text
        assert "Ann Reviewer &lt;ann@example.com&gt;" in shown.text  # who decided
        assert_clean(on_page.root)
        assert on_page.validate() == []
    finally:
        on_page.close()
        by_api.close()


def test_the_reviewer_is_remembered_in_a_cookie(store: Store, client: TestClient) -> None:
    waiting_session(store, "demo", "s1")
    waiting_session(store, "demo", "s2")
    answer = post_decision(client, "/s/demo/s1/phase/1", action="approved", reviewer=ANN)
    assert answer.status_code == 303
    assert REVIEWER_COOKIE in answer.headers["set-cookie"]
    assert form_of(client.get("/s/demo/s2/phase/1").text)["reviewer"] == ANN
    desk = TestClient(create_app(store, reviewer="Bo Desk <bo@example.com>"))
    assert form_of(desk.get("/s/demo/s2/phase/1").text)["reviewer"] == "Bo Desk <bo@example.com>"


@pytest.mark.parametrize("csrf", [None, "", "wrong"])
def test_a_post_without_the_csrf_token_is_refused(
    store: Store, client: TestClient, csrf: str | None
) -> None:
    waiting_session(store)
    fields = form_of(client.get("/s/demo/s1/phase/1").text)
    fields.update(action="approved", comments="ok")
    if csrf is None:
        del fields["csrf"]
    else:
        fields["csrf"] = csrf
    before = snapshot(store.root)
    answer = client.post("/s/demo/s1/phase/1/decide", data=fields, follow_redirects=False)
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert snapshot(store.root) == before


def test_a_post_from_another_site_is_refused(store: Store, client: TestClient) -> None:
    waiting_session(store)
    fields = {**form_of(client.get("/s/demo/s1/phase/1").text), "action": "approved"}
    before = snapshot(store.root)
    answer = client.post(
        "/s/demo/s1/phase/1/decide",
        data=fields,
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert snapshot(store.root) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"action": ""}, "action"),
        ({"action": "maybe"}, "action"),
        ({"action": "approved", "reviewer": "Ann without an email"}, "reviewer"),
        ({"action": "approved", "token": ""}, "token"),
    ],
)
def test_invalid_input_is_400_naming_the_field(
    store: Store, client: TestClient, fields: dict[str, str], field: str
) -> None:
    waiting_session(store)
    before = snapshot(store.root)
    answer = post_decision(client, "/s/demo/s1/phase/1", comments="kept text", **fields)
    assert answer.status_code == 400
    assert by_id(answer.text, "errors") and f'data-field="{field}"' in answer.text
    assert "kept text" in answer.text  # what was typed is offered again
    assert snapshot(store.root) == before


def test_a_stale_token_is_409_and_shows_the_new_state(store: Store, client: TestClient) -> None:
    session = waiting_session(store)
    url = "/s/demo/s1/phase/1"
    old = form_of(client.get(url).text)
    mdsessions.decide(session, 1, "revise", comments="Another reviewer was first.", author=ANN)
    before = snapshot(store.root)
    answer = client.post(
        f"{url}/decide",
        data={**old, "action": "approved", "comments": "my text", "requested_changes": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 409
    assert by_id(answer.text, "stale") and "review-revise" in answer.text
    assert snapshot(store.root) == before
    forged = client.post(
        f"{url}/decide",
        data={**old, "token": "0" * 12, "action": "approved"},
        follow_redirects=False,
    )
    assert forged.status_code == 409 and by_id(forged.text, "stale")
    assert snapshot(store.root) == before


def test_a_token_from_before_a_change_gets_a_fresh_form(store: Store, client: TestClient) -> None:
    waiting_session(store)
    url = "/s/demo/s1/phase/1"
    fields = form_of(client.get(url).text)
    answer = client.post(
        f"{url}/decide",
        data={**fields, "token": "f" * 12, "action": "approved", "comments": "typed"},
        follow_redirects=False,
    )
    assert answer.status_code == 409 and by_id(answer.text, "stale")
    fresh = form_of(answer.text)
    assert fresh["token"] == fields["token"] and "typed" in answer.text
    again = client.post(
        f"{url}/decide", data={**fresh, "action": "approved"}, follow_redirects=False
    )
    assert again.status_code == 303


def test_an_unrecorded_edit_is_never_overwritten(store: Store, client: TestClient) -> None:
    session = waiting_session(store)
    url = "/s/demo/s1/phase/1"
    fields = form_of(client.get(url).text)
    path = store.root / session.document_rel(1, "feedback")
    mine = path.read_bytes() + b"\nI am still typing in vim.\n"
    path.write_bytes(mine)
    before = snapshot(store.root)
    answer = client.post(
        f"{url}/decide",
        data={**fields, "action": "approved", "comments": "from the page"},
        follow_redirects=False,
    )
    assert answer.status_code == 409
    assert by_id(answer.text, "errors") and "mdsessions record" in answer.text
    assert 'class="notice warn unrecorded"' in answer.text
    assert "from the page" in answer.text
    assert path.read_bytes() == mine
    assert snapshot(store.root) == before


# ----------------------------------------------------------------------------- security


def test_a_token_guards_every_request(store: Store) -> None:
    waiting_session(store)
    app = create_app(store, token="s3cret-token")
    client = TestClient(app)
    assert client.get("/").status_code == 401
    assert client.get("/s/demo/s1/phase/1").status_code == 401
    assert client.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    entry = client.get("/s/demo/s1/phase/1?token=s3cret-token", follow_redirects=False)
    assert entry.status_code == 303 and entry.headers["location"] == "/s/demo/s1/phase/1"
    cookie = entry.headers["set-cookie"]
    assert f"{COOKIE}=s3cret-token" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert client.get("/").status_code == 200  # the client keeps the cookie
    stranger = TestClient(app)
    stranger.cookies.set(COOKIE, "nope")
    assert stranger.get("/?token=wrong").status_code == 401


def test_a_foreign_host_header_is_refused(store: Store) -> None:
    hosts = ("127.0.0.1:8765", "localhost:8765")
    client = TestClient(create_app(store, hosts=hosts), base_url="http://127.0.0.1:8765")
    assert client.get("/").status_code == 200
    assert client.get("/", headers={"host": "localhost:8765"}).status_code == 200
    rebound = client.get("/", headers={"host": "evil.example:8765"})
    assert rebound.status_code == 400 and "Host" in rebound.text
    assert client.get("/", headers={"host": "127.0.0.1:9999"}).status_code == 400


# --------------------------------------------------------------------------------- live


def test_the_feed_counts_refs_and_markdown_saves(tmp_path: Path) -> None:
    git_dir, projects = tmp_path / ".git", tmp_path / "projects"
    feed = ChangeFeed(git_dir, projects, lambda: None)
    assert feed.matters(git_dir / "HEAD") and feed.matters(git_dir / "packed-refs")
    assert feed.matters(git_dir / "refs" / "heads" / "main")
    assert feed.matters(git_dir / "logs" / "HEAD")
    assert not feed.matters(git_dir / "refs" / "heads" / "main.lock")
    assert not feed.matters(git_dir / "index") and not feed.matters(git_dir / "objects" / "ab")
    assert feed.matters(projects / "p" / "sessions" / "s" / "phase_1_x" / "user_feedback.md")
    assert not feed.matters(projects / "p" / ".user_feedback.md.swp")
    assert not feed.matters(projects / "p" / "user_feedback.md~")
    assert not feed.matters(tmp_path / "README.md")


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), out.get("PYTHONPATH")) if p)
    return out


class Served:
    """``mdsessions serve`` as a real process; its URL from the first stdout line."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mdsessions", "--store", str(root), "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env(),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            self.line = lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            raise AssertionError("serve printed no URL within 60 s") from None
        match = re.fullmatch(r"Serving (http://[^/]+/)(\?token=(\S+))?\n", self.line)
        assert match is not None, (self.line, self.stderr())
        self.base, self.token = match.group(1), match.group(3)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"serve did not stop within {timeout:g} s") from None


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    waiting_session(store)
    server = Served(store.root, "--port", "0")
    try:
        yield server
    finally:
        server.stop()


def read_events(response: httpx.Response, into: queue.Queue[tuple[float, str]]) -> None:
    """Put each ``change`` event's data (with its arrival time) into ``into``."""
    event = None
    try:
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "change":
                into.put((time.monotonic(), line[6:]))
    except httpx.HTTPError:
        pass
    into.put((time.monotonic(), "<end>"))


def test_events_announce_another_process_commit_within_a_second(
    store: Store, served: Served
) -> None:
    assert served.token is None
    events: queue.Queue[tuple[float, str]] = queue.Queue()
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=30)) as http,
        http.stream("GET", served.base + "events") as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        reader = threading.Thread(target=read_events, args=(stream, events), daemon=True)
        reader.start()
        time.sleep(0.5)  # the page's stream is open before the commit (not an assertion)
        subprocess.run(
            ["git", "commit", "-q", "--allow-empty", "-m", "a commit by another process"],
            cwd=store.root,
            check=True,
            env=env(),
        )
        committed = time.monotonic()
        sha = head(store.root)
        arrived, data = events.get(timeout=10)
        assert json.loads(data) == {"head": sha}
        assert arrived - committed <= LIVE_LIMIT, arrived - committed
        # a saved (unrecorded) feedback edit is announced too
        feedback = store.root / store.session("demo", "s1").document_rel(1, "feedback")
        feedback.write_bytes(feedback.read_bytes() + b"\n")
        arrived, data = events.get(timeout=10)
        assert json.loads(data) == {"head": sha}
        # SIGTERM with the stream still open: the server ends it and exits 0, promptly
        stopped = time.monotonic()
        assert served.stop(timeout=10) == 0, served.stderr()
        assert time.monotonic() - stopped < 5
        reader.join(timeout=5)
        assert events.get(timeout=5)[1] == "<end>"
    assert "Traceback" not in served.stderr()


def test_serve_pages_and_a_decision_from_the_real_server(store: Store, served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=30) as http:
        inbox = http.get("/")
        assert inbox.status_code == 200 and 'data-session="demo/s1"' in inbox.text
        other_host = http.get("/", headers={"host": "evil.example"})
        assert other_host.status_code == 400
        fields = form_of(http.get("/s/demo/s1/phase/1").text)
        answer = http.post(
            "/s/demo/s1/phase/1/decide",
            data={**fields, "action": "approved", "comments": "Fine.\r\n"},
        )
        assert answer.status_code == 303
        assert head(store.root) in answer.headers["location"]
        assert author(store.root) == PERSON
    assert served.stop(signal.SIGINT) == 130
    assert_clean(store.root)


def test_serve_on_all_addresses_requires_and_prints_a_token(store: Store) -> None:
    server = Served(store.root, "--host", "0.0.0.0", "--port", "0")
    try:
        assert server.token and len(server.token) >= 32
        port = server.base.rsplit(":", 1)[1].rstrip("/")
        local = f"http://127.0.0.1:{port}/"
        with httpx.Client(timeout=30) as http:
            assert http.get(local).status_code == 401
            entered = http.get(f"{local}?token={server.token}", follow_redirects=True)
            assert entered.status_code == 200 and "Awaiting review" in entered.text
        with httpx.Client(timeout=30) as http:
            bearer = {"authorization": f"Bearer {server.token}"}
            assert http.get(local, headers=bearer).status_code == 200
            # other machines name this one by its host name; any other name is refused
            named = {**bearer, "host": f"{socket.gethostname()}:{port}"}
            assert http.get(local, headers=named).status_code == 200
            foreign = {**bearer, "host": f"evil.example:{port}"}
            assert http.get(local, headers=foreign).status_code == 400
    finally:
        assert server.stop() == 0
    given = Served(store.root, "--host", "0.0.0.0", "--port", "0", "--token", "my-token")
    try:
        assert given.token == "my-token"
    finally:
        given.stop()


def test_serve_explains_a_missing_web_extra(store: Store) -> None:
    code = (
        "import sys\n"
        "sys.modules['uvicorn'] = None\n"
        "from mdsessions.cli import main\n"
        f"main(['--store', {str(store.root)!r}, 'serve', '--port', '0'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env(), check=False
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "Error: mdsessions serve needs the web extra: pip install 'mdsessions[web]'\n"
    )
    assert proc.stdout == ""


def test_serve_refuses_a_bad_reviewer(store: Store) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(store.root), "serve",
         "--reviewer", "nobody"],
        capture_output=True, text=True, env=env(), check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.startswith("Error: --reviewer: expected")


def test_inbox_waiting_time_is_shown(store: Store, client: TestClient) -> None:
    since = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(hours=3, minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    waiting_session(store, completed=since)
    page = client.get("/")
    assert re.search(r'<td class="waited">3 h [45] min</td>', page.text), page.text
    git(store.root, "status")  # the page wrote nothing
    assert_clean(store.root)


def test_run_wait_goes_on_after_a_decision_on_the_page(store: Store, tmp_path: Path) -> None:
    from helpers import command_agent, write_two_phase_workflow

    from mdsessions import Runner, SessionStatus

    workflow = write_two_phase_workflow(
        tmp_path / "wf.toml",
        name="pagewait",
        first=command_agent("print('# Draft')"),
        second=command_agent("print('# Final')"),
    )
    session = Runner(store, workflow).start("demo", "s1", idea="gyms").session
    assert session.status is SessionStatus.AWAITING_REVIEW
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", "--store", str(store.root), "run", "demo/s1",
         "--wait", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env(),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        stderr = proc.stderr
        line: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: line.put(stderr.readline()), daemon=True).start()
        assert "for the review of phase 1" in line.get(timeout=60)
        client = TestClient(create_app(store))
        answer = post_decision(client, "/s/demo/s1/phase/1", action="approved", reviewer=ANN)
        assert answer.status_code == 303, answer.text
        decided = time.monotonic()
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - decided < 10  # not the --wait timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert session.status is SessionStatus.COMPLETED
    log = git(store.root, "log", "--format=%an <%ae> %s").splitlines()
    people = [line for line in log if not line.startswith("mdsessions <")]
    assert people == [f"{ANN} user_feedback(demo/s1): phase 1 approved"], log
    assert_clean(store.root)


def test_the_remembered_inbox_follows_the_store(store: Store) -> None:
    waiting_session(store, "demo", "s1")
    with TestClient(create_app(store)) as client:  # the lifespan starts the change feed
        assert client.get("/").text.count('class="inbox-item"') == 1
        other = Store.open(store.root)  # another writer (same effect as another process)
        try:
            waiting_session(other, "demo", "s2")
            other.session("demo", "s1").pause()
        finally:
            other.close()
        deadline = time.monotonic() + 10
        while True:
            page = client.get("/").text
            if 'data-session="demo/s2"' in page and 'data-session="demo/s1"' not in page:
                break
            assert time.monotonic() < deadline, page
            time.sleep(0.05)
        assert "1 phase(s) of paused sessions not shown" in page


def test_an_idle_stream_sends_heartbeats_and_ends_with_the_feed(tmp_path: Path) -> None:
    import asyncio

    from mdsessions.web.live import event_stream

    async def scenario() -> list[str]:
        feed = ChangeFeed(tmp_path / ".git", tmp_path / "projects", lambda: None)
        feed._loop = asyncio.get_running_loop()  # as start() does, without an observer
        chunks: list[str] = []

        async def read() -> None:
            async for chunk in event_stream(feed, heartbeat=0.05):
                chunks.append(chunk)
                if chunk.startswith(": heartbeat") and feed.streams:
                    feed._broadcast('{"head": "abc"}')
                if chunk.startswith("event: change"):
                    feed.end_streams()

        await asyncio.wait_for(read(), timeout=10)
        assert feed.streams == 0
        return chunks

    chunks = asyncio.run(scenario())
    assert chunks == [
        "retry: 2000\n\n",
        ": heartbeat\n\n",
        'event: change\ndata: {"head": "abc"}\n\n',
    ]


def test_serve_says_when_the_port_is_taken(store: Store) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "mdsessions", "--store", str(store.root), "serve",
             "--port", str(port)],
            capture_output=True, text=True, env=env(), check=False, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: "), proc.stderr


def test_a_refused_decision_holds_the_page_and_its_url_leads_back(
    store: Store, client: TestClient
) -> None:
    waiting_session(store)
    refused = post_decision(client, "/s/demo/s1/phase/1", action="")
    assert refused.status_code == 400 and by_id(refused.text, "live-hold")
    assert not by_id(client.get("/s/demo/s1/phase/1").text, "live-hold")
    back = client.get("/s/demo/s1/phase/1/decide", follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/s/demo/s1/phase/1"
