"""Acceptance: a review done in the browser makes the same commits as one done in an editor.

Two copies of one demo store (a session of the sample workflow waiting at its first review).
On copy A a person reviews every gate with ``mdsessions review`` and an editor (a fake
editor script making the person's edit with ``mdsessions.edit_feedback_text``, the edit the
browser's decision makes); on copy B the same decisions are made on the review desk's phase
page in Chromium. After each decision ``mdsessions run`` goes on to the next gate, on both.
Then the two stories are compared commit by commit: subject, author, trailers, the files
each commit touches and their bytes, times apart.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

from helpers import PERSON, git, head
from web_helpers import (
    PROJECT,
    WORKFLOW,
    Tab,
    browser,
    build_demo_store,
    copy_store,
    fill_decision,
    mds,
    needs_browser,
    start_server,
    tab,
)

from mdsessions import Runner, SessionStatus, Store

__all__ = ["browser", "tab"]  # fixtures (imported so pytest finds them)

pytestmark = needs_browser

SID = "demo-review"
REF = f"{PROJECT}/{SID}"
# Every gate of the sample workflow's mvp mode (reviews after phases 1, 3 and 6), in order,
# with a revision at phase 3 (so phase 3 runs again and waits again).
DECISIONS = [
    (1, "approved", "Gut — klar genug. 你好  \n\nGo on with **market** research.", ()),
    (
        3,
        "revise",
        "Sharper, please.\n> the niche is too wide   ",
        ("Pick one city", "Name 3 rivals"),
    ),
    (3, "approved", "", ()),
    (6, "approved", "Ship it.", ()),
]
FAKE_EDITOR = """\
import json, os, sys
from pathlib import Path
from mdsessions import edit_feedback_text

decision = json.loads(Path(os.environ["DECISION"]).read_text(encoding="utf-8"))
path = Path(sys.argv[-1])
if path.name == "user_feedback.md":
    text = path.read_text(encoding="utf-8")
    new = edit_feedback_text(text, decision["action"], decision["comments"],
                             decision["requested_changes"])
    path.write_bytes(new.encode("utf-8"))
"""
TIME = re.compile(
    rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?"  # ISO-8601 times
    # how long an agent or a phase ran: fields, lines and table cells ("0s", "1.5s", "2m 3s")
    rb"|(duration(_s)?|Duration|[A-Z][a-z]* Time): [^\n]*"
    rb"|(?<=\| )[0-9][0-9hms. ]*s(?= \|)|(?<= after )[0-9][0-9hms. ]*s\b"
    # the blob ids of inputs (files that hold times) that prompts and outputs name (YAML
    # quotes the ones that would read as numbers)
    rb"|'?\b[0-9a-f]{40}\b'?|(?<=blob )[0-9a-f]{12}\b"
)


def story(root: Path, since: str) -> list[dict[str, object]]:
    """Every commit after ``since``, oldest first, with its files' bytes (times masked)."""
    out = []
    for sha in git(root, "rev-list", "--reverse", f"{since}..HEAD").split():
        files = {}
        for rel in git(root, "show", "--format=", "--name-only", sha).split():
            data = git(root, "show", f"{sha}:{rel}", check=False).encode("utf-8")
            files[rel] = TIME.sub(b"<time>", data)
        out.append({
            "subject": git(root, "log", "-1", "--format=%s", sha).strip(),
            "author": git(root, "log", "-1", "--format=%an <%ae>", sha).strip(),
            "trailers": git(root, "log", "-1", "--format=%(trailers:only,unfold)", sha).strip(),
            "files": files,
        })  # fmt: skip
    return out


def differences(mine: dict[str, object], other: dict[str, object]) -> str:
    """What differs between two commits of :func:`story` (browser first), as a diff."""
    out = [str(mine["subject"])]
    for key in ("subject", "author", "trailers"):
        if mine[key] != other[key]:
            out.append(f"{key}: {mine[key]!r} != {other[key]!r}")
    files, others = mine["files"], other["files"]
    assert isinstance(files, dict) and isinstance(others, dict)
    for rel in sorted(set(files) | set(others)):
        a, b = files.get(rel, b""), others.get(rel, b"")
        if a != b:
            out += difflib.unified_diff(
                b.decode().splitlines(), a.decode().splitlines(), f"editor/{rel}",
                f"browser/{rel}", lineterm="",
            )  # fmt: skip
    return "\n".join(out)


def waiting_phase(root: Path, gitconfig: Path) -> int | None:
    """The phase of the session awaiting review (``mdsessions inbox --json``), or None."""
    items = json.loads(mds(root, gitconfig, "inbox", "--json").stdout)
    phases = [i["phase"] for i in items if f"{i['project']}/{i['session']}" == REF]
    return phases[0] if phases else None


def test_a_review_in_the_browser_makes_the_commits_an_editor_review_makes(
    tmp_path: Path, isolated_git: Path, tab: Tab
) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sample_project.demo import ideas

    _, _, idea = ideas()[0]
    template = tmp_path / "template"
    build_demo_store(template, isolated_git, [])
    with Store.open(template) as store:
        started = Runner(store, WORKFLOW).start(PROJECT, SID, idea=idea, mode="mvp")
        assert started.status is SessionStatus.AWAITING_REVIEW
    base = head(template)
    editor_root = copy_store(template, tmp_path / "editor")
    browser_root = copy_store(template, tmp_path / "browser")
    editor = tmp_path / "fake_editor.py"
    editor.write_text(FAKE_EDITOR, encoding="utf-8")
    decision_file = tmp_path / "decision.json"

    # A: in the editor, `mdsessions review`, then `mdsessions run`.
    for phase, action, comments, changes in DECISIONS:
        assert waiting_phase(editor_root, isolated_git) == phase
        decision_file.write_text(
            json.dumps({"action": action, "comments": comments,
                        "requested_changes": list(changes)}),
            encoding="utf-8",
        )  # fmt: skip
        mds(editor_root, isolated_git, "review", REF, str(phase),
            EDITOR=f"{sys.executable} {editor}", DECISION=str(decision_file))  # fmt: skip
        mds(editor_root, isolated_git, "run", REF)
    assert waiting_phase(editor_root, isolated_git) is None

    # B: the same decisions on the page, then `mdsessions run`.
    server = start_server(browser_root, isolated_git, tmp_path / "serve.log")
    try:
        for phase, action, comments, changes in DECISIONS:
            assert waiting_phase(browser_root, isolated_git) == phase
            tab.goto(f"{server.base}/s/{PROJECT}/{SID}/phase/{phase}")
            fill_decision(tab.page, action, comments=comments, changes=changes, reviewer=None)
            assert tab.submit().status == 200
            mds(browser_root, isolated_git, "run", REF)
    finally:
        assert server.stop() == 0, server.stderr()
    assert waiting_phase(browser_root, isolated_git) is None

    ours, theirs = story(browser_root, base), story(editor_root, base)
    assert [c["subject"] for c in ours] == [c["subject"] for c in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        assert mine == other, differences(mine, other)
    reviews = [c for c in ours if str(c["subject"]).startswith("user_feedback(")]
    assert [c["author"] for c in reviews] == [PERSON] * len(DECISIONS)
    for root in (browser_root, editor_root):
        assert git(root, "status", "--porcelain") == ""
        mds(root, isolated_git, "verify")
        with Store.open(root) as store:
            assert store.find_session(REF).status is SessionStatus.COMPLETED
