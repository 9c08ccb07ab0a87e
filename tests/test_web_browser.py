"""The review desk in a real browser: Debian's Chromium, driven by Playwright, on ``serve``.

One store and one ``mdsessions serve`` process for the module (each test works on its own
sessions of it, so the order of the tests does not matter), one Chromium for the module and
a new browser context (no cookies) per test. Every decision is checked with git itself
(``git log``, ``git show``): author, trailers and the bytes of ``user_feedback.md``.
Nothing is mocked; no sleep is an assertion (tests wait for a condition with a deadline).
``MDSESSIONS_SCREENSHOT=1`` also writes ``docs/images/review-desk.png``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import frontmatter
import pytest
from helpers import REPO_ROOT, Lines, assert_clean, git, head, trailers

pytest.importorskip("playwright", reason="Playwright is missing (pip install -e '.[test]')")
from playwright.sync_api import expect  # noqa: E402
from web_helpers import (  # noqa: E402
    ANN,
    PROJECT,
    WORKFLOW,
    Desk,
    Tab,
    browser,
    build_demo_store,
    fill_decision,
    git_env,
    http,
    mds,
    needs_browser,
    new_gitconfig,
    process_env,
    start_server,
    tab,
)

from mdsessions import Store  # noqa: E402

__all__ = ["browser", "tab"]  # fixtures (imported so pytest finds them)

pytestmark = needs_browser

SESSIONS = [
    "first-waiting",
    "approve-me",
    "revise-me",
    "reject-me",
    "stale",
    "live-decided",
    "live-typing",
    "edited-on-disk",
    "csrf",
    "runner-waits",
]
XSS = "xss"
LIVE_LIMIT = 1.0  # seconds from a commit to the open page showing it: the acceptance figure
# A reviewer's comment as people write them: markdown, non-ASCII, a blank line, trailing
# spaces (a markdown line break), a line of only spaces, an HTML-looking bit.
COMMENT = (
    "Gut — aber **schärfer**: wer zahlt? 你好 🚀  \n"
    "Second line with `code` and <b>not html</b>.\n"
    "\n"
    "   \n"
    "- a point\n"
    "> a quote   "
)
CHANGES = ("Focus on students, not gyms — 学生", "Name one competitor: `Strava`")
PAYLOAD = textwrap.dedent(
    """\
    # Output with payloads

    <script>window.__pwned = "script"; alert("script")</script>

    <img src=x onerror="window.__pwned='img'; alert('img')">

    [click me](javascript:window.__pwned='link';alert('link'))

    <a href="#" onclick="window.__pwned='onclick'; alert('onclick')">an anchor</a>

    <svg onload="window.__pwned='svg'; alert('svg')"><circle r="4"/></svg>

    <iframe src="javascript:alert('iframe')"></iframe>

    <form action="javascript:alert('form')"><button id="evil">go</button></form>

    Plain text after the payloads: **still bold**.
    """
)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """A demo-like store (one session per test, each waiting at phase 1) and its server."""
    base = tmp_path_factory.mktemp("desk")
    gitconfig = new_gitconfig(base / "home")
    root = base / "store"
    build_demo_store(root, gitconfig, SESSIONS)
    with git_env(gitconfig):
        store = Store.open(root)
        try:
            session = store.create_session(
                PROJECT, XSS, workflow=store.workflow(WORKFLOW), idea="payloads", mode="mvp"
            )
            session.save_agent_output(1, "concept_expansion", PAYLOAD)
            session.save_checkpoint(1, status="completed")
        finally:
            store.close()
    server = start_server(root, gitconfig, base / "serve.log")
    try:
        yield Desk(root, gitconfig, server)
    finally:
        code = server.stop()
    assert code == 0, f"serve exited {code} on SIGTERM:\n{server.stderr()}"


def feedback_rel(sid: str, phase: int = 1, slug: str = "concept") -> str:
    return f"projects/{PROJECT}/sessions/{sid}/phase_{phase}_{slug}/user_feedback.md"


def committed(root: Path, rel: str, rev: str = "HEAD") -> bytes:
    """The bytes of a file in a commit, as ``git show`` prints them."""
    return subprocess.run(
        ["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True, check=True
    ).stdout


def shown_sha(tab: Tab) -> str:
    """The short commit sha ``#decision-recorded`` shows."""
    text = tab.page.inner_text("#decision-recorded")
    found = re.search(r"\b[0-9a-f]{7,40}\b", text)
    assert found, text
    return found.group(0)


# ----------------------------------------------------------------------------- reading


def test_inbox_lists_waiting_phases_oldest_first_and_links_to_the_phase(
    desk: Desk, tab: Tab
) -> None:
    response = tab.goto(desk.server.url)
    assert response.status == 200
    csp = response.headers.get("content-security-policy") or ""
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
    rows = tab.page.locator("tr.inbox-item")
    listed = [
        (rows.nth(i).get_attribute("data-session"), rows.nth(i).get_attribute("data-phase"))
        for i in range(rows.count())
    ]
    # Oldest first, as the library orders them (`mdsessions inbox --json`: waiting since,
    # to the second, then the session's name).
    items = json.loads(mds(desk.root, desk.gitconfig, "inbox", "--json").stdout)
    assert listed == [(f"{i['project']}/{i['session']}", str(i["phase"])) for i in items]
    assert (f"{PROJECT}/first-waiting", "1") in listed
    expect(tab.page.locator("nav a[href='/']").first).to_be_attached()
    expect(tab.page.locator("nav a[href^='/search']").first).to_be_attached()
    expect(tab.page.locator("main")).to_have_count(1)

    row = tab.page.locator(f"tr.inbox-item[data-session='{PROJECT}/first-waiting']")
    with tab.page.expect_navigation():
        row.locator("a.review-link").click()
    assert urlsplit(tab.page.url).path == f"/s/{PROJECT}/first-waiting/phase/1"
    output = tab.page.locator("article.output[data-agent=concept_expansion]")
    expect(output).to_have_count(1)
    # The agent's markdown is rendered: its headings are elements, not "# ..." text.
    source = (desk.root / feedback_rel("first-waiting")).parent / "concept_expansion.md"
    body = frontmatter.load(str(source)).content
    written = {line.lstrip("#").strip() for line in body.splitlines() if line.startswith("#")}
    shown = {h.strip() for h in output.locator("h1, h2, h3").all_inner_texts()}
    assert len(written & shown) >= 2, (written, shown)
    assert not any(line.startswith("#") for line in output.inner_text().splitlines())
    form = tab.page.locator("form#decision")
    assert form.get_attribute("method", timeout=5000).lower() == "post"
    assert form.get_attribute("action") == f"/s/{PROJECT}/first-waiting/phase/1/decide"
    for value in ("approved", "revise", "rejected"):
        expect(form.locator(f"input[type=radio][name=action][value={value}]")).to_have_count(1)
    for name in ("comments", "requested_changes"):
        expect(form.locator(f"textarea[name={name}]")).to_have_count(1)
    expect(form.locator("input[name=reviewer]")).to_have_value(
        re.compile(r"^Test Person <person@example\.com>$")
    )
    expect(form.locator("input[type=hidden][name=token]")).to_have_count(1)
    expect(form.locator("input[type=hidden][name=csrf]")).to_have_count(1)
    expect(tab.page.locator(".status-awaiting_review").first).to_be_attached()
    if os.environ.get("MDSESSIONS_SCREENSHOT") == "1":
        target = REPO_ROOT / "docs" / "images" / "review-desk.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        fill_decision(  # typed, not sent: the README shows a decision being made
            tab.page,
            "revise",
            comments="Good start. Who pays: the gym or its members?",
            changes=("Pick one kind of gym", "Name two competitors"),
        )
        tab.page.screenshot(path=str(target))
    assert tab.dialogs == []


# ---------------------------------------------------------------------------- deciding


def test_approve_revise_and_reject_are_commits_by_the_reviewer(desk: Desk, tab: Tab) -> None:
    root = desk.root
    cases = [
        ("approve-me", "approved", COMMENT, ()),
        ("revise-me", "revise", COMMENT, CHANGES),
        ("reject-me", "rejected", "Not for us.", ()),
    ]
    for sid, action, comment, changes in cases:
        before = head(root)
        tab.goto(desk.phase_url(sid, 1))
        fill_decision(tab.page, action, comments=comment, changes=changes)
        response = tab.submit()
        assert response.status == 200, response.text()
        assert urlsplit(tab.page.url).path == f"/s/{PROJECT}/{sid}/phase/1"
        recorded = tab.page.locator("#decision-recorded")
        expect(recorded).to_contain_text(action)
        sha = git(root, "rev-parse", "HEAD").strip()
        assert sha.startswith(shown_sha(tab))
        assert git(root, "rev-parse", "HEAD^").strip() == before  # exactly one commit
        # The phase is decided: its decision shows, the form does not.
        expect(tab.page.locator("form#decision")).to_have_count(0)
        expect(tab.page.locator("#decision")).to_contain_text(action)

        log = git(root, "log", "-1", "--format=%an <%ae>%n%cn <%ce>%n%s")
        author_line, _committer, subject = log.splitlines()
        assert author_line == ANN
        assert subject == f"user_feedback({PROJECT}/{sid}): phase 1 {action}"
        found = trailers(root)
        assert found["Mdsessions-Kind"] == "user_feedback"
        assert found["Mdsessions-Project"] == PROJECT
        assert found["Mdsessions-Session"] == sid
        assert found["Mdsessions-Phase"] == "1"
        assert found["Mdsessions-Status"] == action
        rel = feedback_rel(sid)
        manifest = f"projects/{PROJECT}/sessions/{sid}/session_manifest.md"
        touched = git(root, "show", "--format=", "--name-only", "HEAD").split()
        assert rel in touched and set(touched) <= {rel, manifest}, touched
        blob = committed(root, rel)
        assert blob == (root / rel).read_bytes()  # the file on disk is what was committed
        assert comment.encode("utf-8") in blob  # byte for byte: no CRLF, no trimming
        meta = frontmatter.loads(blob.decode("utf-8")).metadata
        assert meta.get("reviewer") in (None, ANN)  # the reviewer is the commit's author
        assert (meta.get("requested_changes") or []) == list(changes)
        if action == "approved":
            assert meta["approved"] is True
        else:
            assert meta["action"] == action
    assert_clean(root)
    assert mds(root, desk.gitconfig, "verify").returncode == 0
    assert tab.dialogs == []


def test_agent_output_payloads_execute_nothing_and_show_sanitized(desk: Desk, tab: Tab) -> None:
    page = tab.page
    response = tab.goto(desk.phase_url(XSS, 1))
    assert response.status == 200
    output = page.locator("article.output[data-agent=concept_expansion]")
    expect(output).to_contain_text("Plain text after the payloads")
    expect(output.locator("strong")).to_contain_text("still bold")
    # Click and hover everything a payload could hang on (a capturing listener keeps the
    # page from following the links, after any handler of theirs would have run).
    page.evaluate(
        """() => {
          document.addEventListener('click', e => e.preventDefault(), true);
          for (const el of document.querySelectorAll('article.output *')) {
            for (const type of ['mouseover', 'focus', 'click']) {
              el.dispatchEvent(new MouseEvent(type, {bubbles: true, cancelable: true}));
            }
          }
        }"""
    )
    page.wait_for_load_state("load")
    assert urlsplit(page.url).path == f"/s/{PROJECT}/{XSS}/phase/1"
    assert page.evaluate("() => window.__pwned") is None
    assert tab.dialogs == []
    # What is left is inert: no script, no handler attribute, no javascript: URL, no frame
    # (a "javascript:" in the text, shown as text, is fine).
    assert output.locator("script, iframe, form, object, embed").count() == 0
    attributes = page.eval_on_selector_all(
        "article.output *",
        "els => els.flatMap(e => [...e.attributes].map(a => [e.tagName, a.name, a.value]))",
    )
    assert not [a for a in attributes if a[1].lower().startswith("on")], attributes
    assert not [a for a in attributes if "javascript:" in a[2].lower()], attributes
    expect(output).to_contain_text("an anchor")
    # The page itself loads only its own script.
    sources = page.eval_on_selector_all("script", "els => els.map(e => e.src)")
    assert all(src.startswith(desk.server.base + "/static/") for src in sources), sources
    inline = page.eval_on_selector_all("script", "els => els.filter(e => !e.src).length")
    assert inline == 0


def test_a_stale_decision_is_refused_with_the_new_state(desk: Desk, browser: object) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    root = desk.root
    one = browser.new_context().new_page()
    two = browser.new_context().new_page()
    try:
        one.goto(desk.phase_url("stale", 1))
        two.goto(desk.phase_url("stale", 1))
        old_token = two.get_attribute("form#decision input[name=token]", "value")
        # The reviewer in tab two is writing (so the page does not reload under them) when
        # tab one's decision is committed.
        fill_decision(two, "revise", comments="From tab two.", changes=("late",))
        fill_decision(one, "approved", comments="From tab one.")
        with one.expect_navigation():
            one.click("button#decide")
        expect(one.locator("#decision-recorded")).to_contain_text("approved")
        after_first = head(root)
        expect(two.locator("#live-banner")).to_be_visible()
        with two.expect_navigation() as nav:
            two.click("button#decide")
        response = nav.value
        assert response is not None and response.status == 409
        stale = two.locator("#stale")
        expect(stale).to_be_visible()
        expect(stale).to_contain_text("approved")
        assert head(root) == after_first  # nothing committed
        assert_clean(root)
        blob = committed(root, feedback_rel("stale")).decode("utf-8")
        assert "From tab one." in blob and "From tab two." not in blob
        # Shown again with the new token, or not at all now that the phase is decided.
        tokens = two.locator("form#decision input[name=token]")
        if tokens.count():
            assert tokens.get_attribute("value") != old_token
    finally:
        one.context.close()
        two.context.close()


def test_a_post_without_the_csrf_token_is_refused(desk: Desk, tab: Tab) -> None:
    root = desk.root
    before = head(root)
    tab.goto(desk.phase_url("csrf", 1))
    fill_decision(tab.page, "approved", comments="no csrf")
    tab.page.evaluate("document.querySelector('form#decision input[name=csrf]').remove()")
    response = tab.submit()
    assert response.status in (400, 403), response.status
    tab.goto(desk.phase_url("csrf", 1))
    fill_decision(tab.page, "approved", comments="wrong csrf")
    tab.page.evaluate("document.querySelector('form#decision input[name=csrf]').value = 'forged'")
    response = tab.submit()
    assert response.status in (400, 403), response.status
    # A cross-site form post (no cookie, no token): plain HTTP, no browser.
    status, _ = http(
        desk.phase_url("csrf", 1) + "/decide",
        data=b"action=approved&comments=x&requested_changes=&reviewer=",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status in (400, 403)
    assert head(root) == before
    assert_clean(root)


def test_a_wrong_host_header_is_refused(desk: Desk) -> None:
    port = desk.server.base.rsplit(":", 1)[1]
    status, _ = http(desk.server.base + "/", headers={"Host": f"rebound.example:{port}"})
    assert status in (400, 403, 421)
    assert http(desk.server.base + "/")[0] == 200


# -------------------------------------------------------------------------- in the loop


def test_an_unrecorded_edit_on_disk_is_never_overwritten(desk: Desk, tab: Tab) -> None:
    root = desk.root
    rel = feedback_rel("edited-on-disk")
    tab.goto(desk.phase_url("edited-on-disk", 1))
    fill_decision(tab.page, "rejected", comments="From the browser.")
    # Meanwhile a person's editor saves the same file (not recorded yet).
    path = root / rel
    mine = path.read_bytes().replace(
        b"## User Comments\n", b"## User Comments\n\nTyped in vim, not saved to git yet.\n", 1
    )
    path.write_bytes(mine)
    before = head(root)
    response = tab.submit()
    assert response.status in (400, 409), response.status
    expect(tab.page.locator("#unrecorded, #stale, #errors").first).to_be_visible()
    expect(tab.page.locator("form#decision textarea[name=comments]")).to_have_value(
        "From the browser."
    )
    assert path.read_bytes() == mine
    assert head(root) == before
    # The person records their own edit; nothing of the browser's decision is in it.
    path.write_bytes(mine.replace(b"approved: false", b"approved: true", 1))
    mds(root, desk.gitconfig, "record")
    assert b"From the browser." not in committed(root, rel)
    assert_clean(root)


def _commit_time_ms() -> float:
    return time.time() * 1000


def _reloaded_at(page: object) -> float:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    return float(page.evaluate("() => performance.timeOrigin"))


def test_open_pages_update_within_a_second_when_another_process_commits(
    desk: Desk, tab: Tab
) -> None:
    root = desk.root
    page = tab.page
    tab.goto(desk.server.url)
    loaded = _reloaded_at(page)
    # Another process starts a session that reaches its review (the runner's commits).
    code = (
        "import sys; from mdsessions import Runner, Store; "
        "s = Store.open(sys.argv[1]); "
        "r = Runner(s, sys.argv[2]).start('sample', 'live-new', idea='x', mode='mvp'); "
        "print(r.status.value)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(root), str(WORKFLOW)],
        capture_output=True, text=True, env=process_env(desk.gitconfig), check=False,
    )  # fmt: skip
    done = _commit_time_ms()
    assert proc.stdout.strip() == "awaiting_review", proc.stderr
    expect(page.locator(f"tr.inbox-item[data-session='{PROJECT}/live-new']")).to_have_count(
        1, timeout=10_000
    )
    reloaded = _reloaded_at(page)
    assert reloaded > loaded  # the page reloaded itself; the test never did
    assert (reloaded - done) / 1000 < LIVE_LIMIT

    # An open phase page follows a decision made elsewhere (here: the CLI).
    tab.goto(desk.phase_url("live-decided", 1))
    expect(page.locator("form#decision")).to_have_count(1)
    mds(root, desk.gitconfig, "feedback", f"{PROJECT}/live-decided", "1", "--approve")
    done = _commit_time_ms()
    expect(page.locator("#decision")).to_contain_text("approved", timeout=10_000)
    expect(page.locator("form#decision")).to_have_count(0)
    assert (_reloaded_at(page) - done) / 1000 < LIVE_LIMIT
    assert tab.dialogs == []


def test_a_change_while_typing_keeps_the_typed_text_and_shows_a_banner(
    desk: Desk, tab: Tab
) -> None:
    page = tab.page
    tab.goto(desk.phase_url("live-typing", 1))
    loaded = _reloaded_at(page)
    page.type("form#decision textarea[name=comments]", "Half a thought…")
    mds(desk.root, desk.gitconfig, "tag", "add", f"{PROJECT}/first-waiting", "live")
    expect(page.locator("#live-banner")).to_be_visible(timeout=10_000)
    assert _reloaded_at(page) == loaded  # not reloaded under the reviewer's hands
    expect(page.locator("form#decision textarea[name=comments]")).to_have_value("Half a thought…")


def test_run_wait_goes_on_after_a_decision_made_on_the_page(desk: Desk, tab: Tab) -> None:
    root = desk.root
    ref = f"{PROJECT}/runner-waits"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "run", ref, "--wait", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        env=process_env(desk.gitconfig),
    )  # fmt: skip
    try:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        err.wait_for("for the review of phase 1", 30)
        tab.goto(desk.phase_url("runner-waits", 1))
        fill_decision(tab.page, "approved", comments="Go on.")
        assert tab.submit().status == 200
        # The runner records nothing itself (already committed) and runs on to phase 3's gate,
        # long before its own 60 s wait would end.
        err.wait_for("for the review of phase 3", 20)
        tab.goto(desk.phase_url("runner-waits", 3))
        expect(tab.page.locator("article.output").first).to_be_visible()
        fill_decision(tab.page, "rejected", comments="Stop here.")
        assert tab.submit().status == 200
        code = proc.wait(timeout=20)
        stdout, stderr = out.rest(), err.rest()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
    assert code in (0, 1), (code, stderr)
    assert "rejected" in stdout + stderr, stdout + stderr
    subjects = git(root, "log", "--format=%an|%s", "-12").splitlines()
    mine = [s for s in subjects if s.startswith("Ann Reviewer") and "runner-waits" in s]
    assert mine == [
        f"Ann Reviewer|user_feedback({ref}): phase 3 rejected",
        f"Ann Reviewer|user_feedback({ref}): phase 1 approved",
    ]
    assert f"checkpoint({ref}): phase 2" in "\n".join(subjects)
    assert_clean(root)


def test_a_non_local_bind_requires_the_printed_token(desk: Desk, tmp_path: Path, tab: Tab) -> None:
    server = start_server(desk.root, desk.gitconfig, tmp_path / "serve.log", "--host", "0.0.0.0")
    try:
        assert "?token=" in server.url and server.url.startswith("http://0.0.0.0:")
        token = server.url.split("?token=", 1)[1]
        assert len(token) >= 16
        local = server.base.replace("0.0.0.0", "127.0.0.1")
        for path in ("/", f"/s/{PROJECT}/first-waiting/phase/1", "/events", "/static/live.js"):
            status, _ = http(local + path)
            assert status in (401, 403), (path, status)
            status, _ = http(local + path + "?token=wrong")
            assert status in (401, 403), (path, status)
        status, body = http(f"{local}/", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and "inbox-item" in body, (status, body)
        # In the browser: the token URL opens the inbox, and links from there go on working.
        tab.goto(f"{local}/?token={token}")
        with tab.page.expect_navigation():
            tab.page.locator(
                f"tr.inbox-item[data-session='{PROJECT}/first-waiting'] a.review-link"
            ).click()
        expect(tab.page.locator("form#decision")).to_have_count(1)
    finally:
        code = server.stop()
    assert code == 0, server.stderr()
    with git_env(desk.gitconfig):
        assert_clean(desk.root)
