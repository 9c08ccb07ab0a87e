"""Tests for the reading pages of the review desk (mdsessions/web/pages.py, pages_docs.py).

In-process: Starlette's TestClient over ``create_app(store)`` on a real store in ``tmp_path``
(a session run by plain Python agents through a revision, so it has history). Documents and
diffs are compared with what real git prints. The real-browser tests live elsewhere.
"""

from __future__ import annotations

import html
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import PERSON, git, head, snapshot

pytest.importorskip("starlette")
pytest.importorskip("nh3")

from starlette.testclient import TestClient  # noqa: E402

from mdsessions import AgentContext, Runner, Session, Store, idea_validation  # noqa: E402
from mdsessions.web.app import create_app  # noqa: E402

P, S = "project-123", "session-456"
XSS_OUTPUT = (
    "# Concept\n\nA plan.\n\n<script>alert('output')</script>\n\n"
    "[click](javascript:alert(1)) <img src=x onerror=\"alert('img')\">\n"
    '<a href="JaVaScRiPt:alert(2)" onclick="alert(3)">x</a>\n\n'
    "See [the other output](market_intelligence.md).\n"
)
XSS_COMMENT = "Please <b onmouseover=\"alert('c')\">fix</b> <script>alert('comment')</script>"
AGENTS = [name for phase in idea_validation().phases for name in phase.agents]


# ------------------------------------------------------------------------------ a tiny DOM

VOID = {"br", "hr", "img", "input", "meta", "link", "col", "wbr", "source", "area", "base"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str | Node] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
        ]

    def by_id(self, ident: str) -> Node:
        found = [n for n in self.walk() if n.attrs.get("id") == ident]
        assert len(found) == 1, f"expected one #{ident}, found {len(found)}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def dom(text: str) -> Node:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root


def assert_inert(root: Node) -> None:
    """No script but the desk's own, no event handler, no javascript: URL."""
    for node in root.walk():
        if node.tag == "script":
            assert node.attrs.get("src") == "/static/live.js", node.attrs
            assert not node.text.strip()
        for name, value in node.attrs.items():
            assert not name.startswith("on"), (node.tag, name, value)
            if name in ("href", "src", "action", "formaction"):
                assert not value.strip().lower().startswith(("javascript:", "data:")), value


# ------------------------------------------------------------------------------ fixtures


def _agent(name: str) -> Callable[[AgentContext], str]:
    def run(ctx: AgentContext) -> str:
        if name == "concept_expansion":
            return XSS_OUTPUT + f"\nretry {ctx.retry_count}\n"
        return f"# {name}\n\nWork of {name} on a gym leaderboard, retry {ctx.retry_count}.\n"

    return run


@pytest.fixture
def session(store: Store) -> Session:
    """Phase 1 revised (with a hostile comment), run again, approved; phase 3 waiting."""
    runner = Runner(store, agents={name: _agent(name) for name in AGENTS})
    result = runner.start(P, S, idea="Gym leaderboard <script>alert('idea')</script>")
    s = result.session
    assert result.waiting_for_review == 1
    s.save_feedback(1, action="revise", comments=XSS_COMMENT, author=PERSON)
    assert runner.run(s).waiting_for_review == 1
    s.save_feedback(1, approved=True, author=PERSON)
    assert runner.run(s).waiting_for_review == 3
    s.add_tags(["pilot"], author=PERSON)
    return s


@pytest.fixture
def client(store: Store, session: Session) -> TestClient:
    return TestClient(create_app(store))


def feedback_rel(session: Session) -> str:
    return session.document_rel(1, "feedback")


def output_rel(session: Session) -> str:
    return session.document_rel(1, "concept_expansion")


def file_commits(store: Store, rel: str) -> list[str]:
    return git(store.root, "log", "--format=%H", "--", rel).split()


# ------------------------------------------------------------------------------ session page


def test_session_page_shows_header_phases_costs_and_timeline(
    store: Store, session: Session, client: TestClient
) -> None:
    answer = client.get(f"/s/{P}/{S}")
    assert answer.status_code == 200
    page = dom(answer.text)
    header = page.by_id("session-header")
    assert f"{P}" in header.text and S in header.text
    assert header.find_all("span", "status-awaiting_review")
    assert "idea_validation" in header.text and "mvp" in header.text
    assert "pilot" in page.by_id("tags").text
    manifest = session.manifest()
    rows = page.by_id("phases").find_all("tr", "phase-row")
    assert [r.attrs["data-phase"] for r in rows] == [str(p.number) for p in manifest.phases]
    first = rows[0]
    assert first.find_all("span", "status-completed") and first.find_all("span", "status-approved")
    cells = [c.text.strip() for c in first.find_all("td")]
    assert cells[4] == "1"  # one retry: the revision
    links = {a.attrs["href"] for a in first.find_all("a")}
    assert f"/s/{P}/{S}/phase/1" in links
    assert f"/doc/{session.rel}/phase_1_concept/checkpoint.md" in links
    assert f"/doc/{feedback_rel(session)}" in links and f"/doc/{output_rel(session)}" in links
    waiting = next(r for r in rows if r.attrs["data-phase"] == "3")
    assert waiting.find_all("span", "status-required") or waiting.find_all("span", "status-pending")
    costs = page.by_id("costs")
    assert costs.find_all("dd", "cost") and costs.find_all("dd", "tokens-in")
    expected = git(store.root, "log", "--format=%H%x1f%s%x1f%an <%ae>", "--", session.rel)
    items = page.by_id("timeline").find_all("li")
    assert len(items) == len(expected.splitlines())
    for item, line in zip(items, expected.splitlines(), strict=True):
        sha, subject, author = line.split("\x1f")
        assert item.attrs["data-commit"] == sha
        assert sha[:8] in item.text and subject in item.text and author in item.text
        assert item.find_all("span", "kind")[0].text.strip()
    kinds = [i.find_all("span", "kind")[0].text for i in items]
    assert "user_feedback" in kinds and "checkpoint" in kinds and kinds[-1] == "session"
    assert_inert(page)


def test_session_timeline_pages_with_skip(
    store: Store, session: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdsessions.web import pages

    monkeypatch.setattr(pages, "TIMELINE_PAGE", 5)
    everything = file_commits(store, session.rel)
    first = dom(client.get(f"/s/{P}/{S}").text)
    shown = [i.attrs["data-commit"] for i in first.by_id("timeline").find_all("li")]
    assert shown == everything[:5]
    assert first.by_id("older").attrs["href"] == "?skip=5"
    second = dom(client.get(f"/s/{P}/{S}?skip=5").text)
    shown = [i.attrs["data-commit"] for i in second.by_id("timeline").find_all("li")]
    assert shown == everything[5:10]
    assert client.get(f"/s/{P}/{S}?skip=-1").status_code == 400


def test_unknown_or_invalid_session_is_404(client: TestClient) -> None:
    assert client.get(f"/s/{P}/nope").status_code == 404
    answer = client.get("/s/bad%20id/x")
    assert answer.status_code == 404
    assert dom(answer.text).by_id("errors").text.strip()


def test_a_manifest_broken_by_an_edit_is_named_with_a_link_to_the_committed_one(
    store: Store, session: Session, client: TestClient
) -> None:
    manifest = store.root / session.manifest_rel
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("status:", "status: [", 1))
    before = snapshot(store.root)
    answer = client.get(f"/s/{P}/{S}")
    assert answer.status_code == 500
    page = dom(answer.text)
    assert "session_manifest.md" in page.by_id("errors").text
    assert f"/doc/{session.manifest_rel}" in {a.attrs["href"] for a in page.find_all("a")}
    assert client.get(f"/doc/{session.manifest_rel}").status_code == 200  # HEAD's version
    assert snapshot(store.root) == before


# ------------------------------------------------------------------------------ documents


def test_document_page_renders_frontmatter_body_and_versions(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = feedback_rel(session)
    answer = client.get(f"/doc/{rel}")
    assert answer.status_code == 200
    page = dom(answer.text)
    table = page.by_id("frontmatter")
    fields = {r.attrs["data-field"]: r for r in table.find_all("tr")}
    assert "approved" in fields and fields["approved"].find_all("td")[0].text.strip() == "true"
    rendered = page.by_id("rendered")
    assert rendered.find_all("h1")
    links = [a.attrs["href"] for a in rendered.find_all("a")]
    assert "concept_expansion.md" in links  # relative: resolves to /doc/…/concept_expansion.md
    versions = page.by_id("versions").find_all("li")
    commits = file_commits(store, rel)
    assert [v.attrs["data-commit"] for v in versions] == commits
    for v, sha in zip(versions, commits, strict=True):
        hrefs = {a.attrs["href"] for a in v.find_all("a")}
        assert f"/doc/{rel}?at={sha}" in hrefs and f"/diff/{rel}?to={sha}" in hrefs
    assert "current" in versions[0].classes
    target = client.get(f"/doc/{rel.rsplit('/', 1)[0]}/concept_expansion.md")
    assert target.status_code == 200


def test_document_versions_are_cut_and_say_so(
    store: Store, session: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdsessions.web import pages

    monkeypatch.setattr(pages, "MAX_VERSIONS", 2)
    rel = feedback_rel(session)
    page = dom(client.get(f"/doc/{rel}").text)
    shown = [v.attrs["data-commit"] for v in page.by_id("versions").find_all("li")]
    assert shown == file_commits(store, rel)[:2]
    assert page.by_id("more-versions").text.strip()
    oldest = file_commits(store, rel)[-1]
    page = dom(client.get(f"/doc/{rel}?at={oldest}").text)
    assert not [v for v in page.by_id("versions").find_all("li") if "current" in v.classes]


def test_document_at_an_older_version_is_the_blob_git_shows(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = feedback_rel(session)
    commits = file_commits(store, rel)
    assert len(commits) >= 3
    for sha in commits:
        expected = subprocess.run(
            ["git", "show", f"{sha}:{rel}"], cwd=store.root, capture_output=True, check=True
        ).stdout
        raw = client.get(f"/doc/{rel}?at={sha}&raw=1")
        assert raw.status_code == 200
        assert raw.content == expected
        assert raw.headers["content-type"] == "text/plain; charset=utf-8"
        assert raw.headers["x-content-type-options"] == "nosniff"
    oldest = client.get(f"/doc/{rel}?at={commits[-1][:10]}")
    assert oldest.status_code == 200
    page = dom(oldest.text)
    assert "current" in page.by_id("versions").find_all("li")[-1].classes
    # links inside a versioned view stay at that version
    links = [a.attrs["href"] for a in page.by_id("rendered").find_all("a")]
    assert f"concept_expansion.md?at={commits[-1]}" in links


def test_document_at_a_commit_that_did_not_touch_it_marks_the_version_seen(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = feedback_rel(session)
    page = dom(client.get(f"/doc/{rel}?at=HEAD").text)
    current = [v for v in page.by_id("versions").find_all("li") if "current" in v.classes]
    assert [v.attrs["data-commit"] for v in current] == file_commits(store, rel)[:1]


def test_a_folder_lists_its_files_at_a_version_and_pages_link_up(
    store: Store, session: Session, client: TestClient
) -> None:
    first = file_commits(store, session.rel)[-1]
    for at, expected in ((None, "HEAD"), (first, first)):
        url = f"/doc/{session.rel}" + (f"?at={at}" if at else "")
        page = dom(client.get(url).text)
        files = git(store.root, "ls-tree", "-r", "--name-only", expected, "--", session.rel)
        links = [a.attrs["href"].split("?")[0] for a in page.by_id("listing").find_all("a")]
        assert links == [f"/doc/{f}" for f in sorted(files.split())]
    assert client.get(f"/doc/{session.rel}?raw=1").status_code == 404
    crumbs = dom(client.get(f"/doc/{feedback_rel(session)}").text).find_all("p", "crumbs")[0]
    assert [a.attrs["href"] for a in crumbs.find_all("a")] == [f"/s/{P}/{S}", f"/s/{P}/{S}/phase/1"]


@pytest.mark.parametrize(
    "url",
    [
        "/doc/../../etc/passwd",
        "/doc/%2e%2e/%2e%2e/etc/passwd",
        "/doc/projects/%2e%2e/%2e%2e/etc/passwd",
        "/doc/projects/..%2f..%2fetc%2fpasswd",
        "/doc/.git/config",
        "/doc/projects/.git/config",
        "/doc/%2Fetc%2Fpasswd",
        "/doc//etc/passwd",
        "/doc/projects/x%00y",
        "/doc/mdsessions.toml",
        "/doc/.gitignore",
        "/doc/projects",
        "/doc/projects/project-123/sessions/session-456/nope.md",
        "/doc/projects/project-123/sessions/session-456/session_manifest.md/x",
    ],
)
def test_paths_outside_the_tracked_documents_are_404(
    store: Store, session: Session, client: TestClient, url: str
) -> None:
    before = snapshot(store.root)
    for each in (url, url.replace("/doc/", "/diff/", 1), url + "?raw=1"):
        answer = client.get(each)
        assert answer.status_code == 404, each
        assert "root:" not in answer.text and "[core]" not in answer.text
    assert snapshot(store.root) == before


def test_symlinks_in_the_store_are_never_followed(
    store: Store, session: Session, client: TestClient, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n", encoding="utf-8")
    folder = store.root / session.rel
    (folder / "leak.md").symlink_to(secret)
    untracked = client.get(f"/doc/{session.rel}/leak.md")
    assert untracked.status_code == 404 and "TOP SECRET" not in untracked.text
    git(store.root, "add", f"{session.rel}/leak.md")
    git(store.root, "commit", "-q", "-m", "a symlink")
    for url in (f"/doc/{session.rel}/leak.md", f"/doc/{session.rel}/leak.md?raw=1"):
        answer = client.get(url)
        assert answer.status_code == 404 and "TOP SECRET" not in answer.text
    # a link to a folder outside: nothing below it resolves either
    (folder / "outside").symlink_to(tmp_path)
    git(store.root, "add", f"{session.rel}/outside")
    git(store.root, "commit", "-q", "-m", "a folder symlink")
    answer = client.get(f"/doc/{session.rel}/outside/secret.txt?raw=1")
    assert answer.status_code == 404 and "TOP SECRET" not in answer.text


@pytest.mark.parametrize("at", ["nope", "0" * 40, "--output=x", "HEAD..HEAD~1", "HEAD^{tree}"])
def test_a_revision_that_is_not_a_commit_is_404_with_a_message(
    store: Store, session: Session, client: TestClient, at: str
) -> None:
    answer = client.get(f"/doc/{feedback_rel(session)}", params={"at": at})
    assert answer.status_code == 404
    assert "is not a commit of this store" in dom(answer.text).by_id("errors").text


def test_tree_and_blob_ids_are_not_commits(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = feedback_rel(session)
    for obj in (f"HEAD:{session.rel}", f"HEAD:{rel}"):
        sha = git(store.root, "rev-parse", obj).strip()
        assert client.get(f"/doc/{rel}?at={sha}").status_code == 404


def test_other_files_show_as_escaped_text_and_binary_bytes_stay_exact(
    store: Store, session: Session, client: TestClient
) -> None:
    folder = store.root / session.rel
    (folder / "notes.txt").write_text("plain <b>text</b>\n", encoding="utf-8")
    (folder / "blob.bin").write_bytes(b"\x00\x01\xff\xfe binary")
    git(store.root, "add", f"{session.rel}/notes.txt", f"{session.rel}/blob.bin")
    git(store.root, "commit", "-q", "-m", "other files")
    page = dom(client.get(f"/doc/{session.rel}/notes.txt").text)
    rendered = page.by_id("rendered")
    assert rendered.find_all("pre")[0].text == "plain <b>text</b>\n"
    assert not rendered.find_all("b")
    raw = client.get(f"/doc/{session.rel}/blob.bin?raw=1")
    assert raw.content == b"\x00\x01\xff\xfe binary"
    diff = dom(client.get(f"/diff/{session.rel}").text)
    notes = {s.attrs["data-path"]: s.text for s in diff.find_all("section", "diff-file")}
    assert "binary file" in notes[f"{session.rel}/blob.bin"]
    assert diff.by_id("diff-raw").text == _git_diff(store, "HEAD^", "HEAD", session.rel)


# ------------------------------------------------------------------------------ diffs


def _git_diff(store: Store, a: str, b: str, rel: str) -> str:
    return git(store.root, "diff", a, b, "--", rel)


def test_diff_raw_is_what_git_diff_prints_and_rendered_marks_changes(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = feedback_rel(session)
    commits = file_commits(store, rel)
    new, old = commits[0], commits[-1]
    answer = client.get(f"/diff/{rel}", params={"from": old, "to": new})
    assert answer.status_code == 200
    page = dom(answer.text)
    assert page.by_id("diff-raw").text == _git_diff(store, old, new, rel)
    rendered = page.by_id("diff-rendered")
    assert rendered.find_all("ins") and rendered.find_all("del")
    fields = {r.attrs["data-field"]: r for r in rendered.find_all("tr", "field-change")}
    assert "action" in fields
    assert fields["action"].find_all("del")[0].text == "pending"
    assert fields["action"].find_all("ins")[0].text == "approved"
    assert_inert(page)


def test_rendered_diff_marks_the_words_that_changed_in_a_line(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = output_rel(session)
    new, old = file_commits(store, rel)[:2]
    page = dom(client.get(f"/diff/{rel}", params={"from": old, "to": new}).text)
    rows = [(r, r.find_all("td", "code")) for r in page.by_id("diff-rendered").find_all("tr")]
    deleted = [c[0] for r, c in rows if "line-del" in r.classes and c[0].text == "retry 0"]
    inserted = [c[0] for r, c in rows if "line-ins" in r.classes and c[0].text == "retry 1"]
    assert len(deleted) == len(inserted) == 1
    assert [d.text for d in deleted[0].find_all("del")] == ["0"]
    assert [i.text for i in inserted[0].find_all("ins")] == ["1"]


def test_diff_defaults_to_the_last_change_of_the_file(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = feedback_rel(session)
    commits = file_commits(store, rel)
    page = dom(client.get(f"/diff/{rel}").text)  # HEAD did not touch the file
    header = page.find_all("header", "diff-header")[0]
    assert (header.attrs["data-from"], header.attrs["data-to"]) == (commits[1], head(store.root))
    assert page.by_id("diff-raw").text == _git_diff(store, commits[1], "HEAD", rel)
    first = dom(client.get(f"/diff/{rel}?to={commits[-1]}").text)  # the file's first version
    assert first.find_all("header", "diff-header")[0].attrs["data-from"] == ""
    raw = first.by_id("diff-raw").text
    assert raw == _git_diff(store, f"{commits[-1]}^", commits[-1], rel)
    assert "new file mode" in raw


def test_diff_of_a_session_folder_shows_every_changed_file(
    store: Store, session: Session, client: TestClient
) -> None:
    sha = file_commits(store, session.rel)[0]
    page = dom(client.get(f"/diff/{session.rel}?to={sha}").text)
    raw = page.by_id("diff-raw").text
    assert raw == _git_diff(store, f"{sha}^", sha, session.rel)
    changed = git(store.root, "diff", "--name-only", f"{sha}^", sha, "--", session.rel).split()
    shown = [s.attrs["data-path"] for s in page.find_all("section", "diff-file")]
    assert shown == sorted(changed)


def test_diff_refuses_unknown_commits_and_paths(
    store: Store, session: Session, client: TestClient
) -> None:
    rel = feedback_rel(session)
    assert client.get(f"/diff/{rel}?from=nope").status_code == 404
    assert client.get(f"/diff/{rel}?to={'1' * 40}").status_code == 404
    assert client.get("/diff/.git/config").status_code == 404
    assert client.get(f"/diff/{session.rel}/nope.md").status_code == 404


# ------------------------------------------------------------------------------ XSS


def test_hostile_agent_output_and_comments_render_inert(
    store: Store, session: Session, client: TestClient
) -> None:
    for rel in (output_rel(session), feedback_rel(session)):
        for version in file_commits(store, rel):
            answer = client.get(f"/doc/{rel}?at={version}")
            assert answer.status_code == 200
            assert_inert(dom(answer.text))
            assert "<script>alert" not in answer.text
    out = dom(client.get(f"/doc/{output_rel(session)}").text)
    assert "A plan." in out.by_id("rendered").text
    revised = file_commits(store, feedback_rel(session))
    texts = [client.get(f"/doc/{feedback_rel(session)}?at={c}").text for c in revised]
    assert any("fix" in t for t in texts)
    for url in (f"/s/{P}/{S}", f"/diff/{output_rel(session)}", f"/diff/{session.rel}"):
        answer = client.get(url)
        assert answer.status_code == 200
        assert_inert(dom(answer.text))
        assert "<script>alert" not in answer.text
    found = client.get("/search", params={"q": "alert"})
    assert found.status_code == 200 and "<script>alert" not in found.text
    assert_inert(dom(found.text))


# ------------------------------------------------------------------------------ search


def test_search_filters_list_sessions(store: Store, session: Session, client: TestClient) -> None:
    other = store.create_session("other", "s-2", mode="mvp")
    assert other.ref == "other/s-2"
    page = dom(client.get("/search").text)
    refs = [r.attrs["data-session"] for r in page.find_all("tr", "result")]
    assert sorted(refs) == sorted([f"{P}/{S}", "other/s-2"])
    for params, expected in [
        ({"tag": "pilot"}, [f"{P}/{S}"]),
        ({"status": "awaiting_review"}, [f"{P}/{S}"]),
        ({"status": "created"}, ["other/s-2"]),
        ({"project": "other"}, ["other/s-2"]),
        ({"agent": "niche_selection"}, [f"{P}/{S}"]),
        ({"since": "2000-01-01", "until": "2999-01-01", "workflow": "idea_validation"}, None),
        ({"until": "2000-01-01"}, []),
    ]:
        answer = client.get("/search", params=params)
        assert answer.status_code == 200, params
        rows = dom(answer.text).find_all("tr", "result")
        got = sorted(r.attrs["data-session"] for r in rows)
        if expected is not None:
            assert got == sorted(expected), params
        for row in rows:
            ref = row.attrs["data-session"]
            assert {a.attrs["href"] for a in row.find_all("a")} == {f"/s/{ref}"}


def test_search_text_links_each_line_to_its_document(
    store: Store, session: Session, client: TestClient
) -> None:
    answer = client.get("/search", params={"q": "gym leaderboard", "i": "1"})
    assert answer.status_code == 200
    rows = dom(answer.text).find_all("tr", "result")
    expected = git(store.root, "grep", "-n", "-i", "-F", "gym leaderboard", "--", "projects")
    assert len(rows) == len(expected.splitlines()) > 0
    for row in rows:
        path, line = row.attrs["data-path"], row.attrs["data-line"]
        assert f"{path}:{line}:" in expected
        hrefs = {a.attrs["href"] for a in row.find_all("a")}
        assert f"/doc/{path}" in hrefs and f"/s/{P}/{S}" in hrefs


def test_search_at_a_commit_and_by_metadata(
    store: Store, session: Session, client: TestClient
) -> None:
    first = file_commits(store, output_rel(session))[-1]
    now = dom(client.get("/search", params={"q": "retry 1"}).text).find_all("tr", "result")
    assert output_rel(session) in {r.attrs["data-path"] for r in now}
    then = dom(client.get("/search", params={"q": "retry 1", "at": first[:10]}).text)
    assert output_rel(session) not in {r.attrs["data-path"] for r in then.find_all("tr", "result")}
    older = dom(client.get("/search", params={"q": "retry 0", "at": first}).text)
    rows = [
        r for r in older.find_all("tr", "result") if r.attrs["data-path"] == output_rel(session)
    ]
    assert rows and f"/doc/{output_rel(session)}?at={first}" in {
        a.attrs["href"] for a in rows[0].find_all("a")
    }
    store.create_session("other", "s-2")
    session.set_metadata({"owner": "ann"}, author=PERSON)
    found = dom(client.get("/search", params={"meta": "owner=ann"}).text).find_all("tr", "result")
    assert [r.attrs["data-session"] for r in found] == [f"{P}/{S}"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-45"}, "until"),
        ({"q": "(", "regex": "1"}, "q"),
        ({"project": "x\ny"}, "project"),
        ({"project": "../x"}, "project"),
        ({"meta": "novalue"}, "meta"),
        ({"at": "nope"}, "at"),
        ({"at": "--all", "q": "x"}, "at"),
    ],
)
def test_search_bad_filter_is_400_naming_the_field(
    store: Store, session: Session, client: TestClient, params: dict[str, str], field: str
) -> None:
    answer = client.get("/search", params=params)
    assert answer.status_code == 400
    errors = dom(answer.text).by_id("errors").text
    assert errors.strip().startswith(f"{field}:"), errors
    assert html.escape(field) in answer.text


def test_pages_write_nothing(store: Store, session: Session, client: TestClient) -> None:
    before = snapshot(store.root)
    rel = feedback_rel(session)
    for url in (
        f"/s/{P}/{S}",
        f"/doc/{rel}",
        f"/doc/{rel}?raw=1",
        f"/diff/{rel}",
        f"/diff/{session.rel}",
        "/search?q=gym",
        "/search?tag=pilot",
    ):
        assert client.get(url).status_code == 200, url
    assert snapshot(store.root) == before
