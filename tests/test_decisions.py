"""A decision made by a program (:func:`mdsessions.decide`) is the commit an editor review makes.

Issue 16: the browser's review desk decides through :func:`~mdsessions.decide`; its commit
must be the one ``mdsessions review`` records when a person makes the same edit in an editor
(a real process set as ``EDITOR``, a plain Python script that edits the text itself), and it
must never overwrite a person's edit. Also the reviewer's other hands: an editor that, like
vim, warns when the file changed on disk since it read it, saving twice while ``mdsessions
watch`` runs. Everything is real: git repositories in ``tmp_path``, processes, watchdog.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import frontmatter
import pytest
from helpers import (
    REPO_ROOT,
    assert_clean,
    clean_reviewer_env,
    git,
    head,
    snapshot,
    trailers,
    write_python_workflow,
)

from mdsessions import (
    DocumentError,
    FeedbackAction,
    Runner,
    Session,
    SessionStatus,
    StaleDecisionError,
    Store,
    UnrecordedEditError,
    decide,
    edit_feedback_text,
    loads,
    review_token,
)
from mdsessions.store.decisions import _write_unless_changed

AGENT_MODULE = "mdsessions_decisions_test_agents"
PROJECT, SID = "demo", "s1"
REF = f"{PROJECT}/{SID}"
PHASE1_REL = f"projects/{PROJECT}/sessions/{SID}/phase_1_draft"
FEEDBACK1 = f"{PHASE1_REL}/user_feedback.md"
MANIFEST_REL = f"projects/{PROJECT}/sessions/{SID}/session_manifest.md"
ANN = "Ann Reviewer <ann@example.com>"
CHANGES = ["Focus on small gyms", "Price: per seat"]
COMMENT = "Too broad.\n\nNarrow it down."

# The fake editor: a plain Python script (no mdsessions import) making the edit a person
# makes, by text substitution, as the template's instructions say.
FAKE_EDITOR = textwrap.dedent(
    """\
    import json, os, re, sys

    path = sys.argv[-1]
    action = os.environ["DECISION_ACTION"]
    comments = os.environ.get("DECISION_COMMENTS", "")
    changes = json.loads(os.environ.get("DECISION_CHANGES", "[]"))
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()

    def quote(change):
        if ": " in change or " #" in change:
            return "'" + change.replace("'", "''") + "'"
        return change

    approved = "true" if action == "approved" else "false"
    text = re.sub(r"(?m)^approved: .*$", "approved: " + approved, text, count=1)
    text = re.sub(r"(?m)^action: .*$", "action: " + action, text, count=1)
    if changes:
        block = "requested_changes:" + "".join("\\n- " + quote(c) for c in changes)
        text = re.sub(r"(?m)^requested_changes:$", lambda m: block, text, count=1)
    if comments:
        assert text.endswith("## User Comments\\n\\n")
        text += comments + "\\n"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    """
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from clean_reviewer_env(monkeypatch, AGENT_MODULE)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    return write_python_workflow(
        tmp_path / "wf",
        name="decisions",
        module=AGENT_MODULE,
        agents=textwrap.dedent(
            """\
            def writer(ctx):
                return f"# Draft\\n\\nIdea: {ctx.idea}\\n"


            def critic(ctx):
                return "# Critique\\n\\nFine.\\n"
            """
        ),
    )


@pytest.fixture
def waiting(store: Store, workflow: Path) -> Session:
    """Session ``demo/s1`` at the review gate of phase 1."""
    result = Runner(store, workflow).start(PROJECT, SID, idea="Streaks for small gyms.")
    assert result.status is SessionStatus.AWAITING_REVIEW and result.waiting_for_review == 1
    return result.session


def mds(
    root: Path, *args: str, code: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mdsessions --store ROOT ARGS`` as a real process; check its status."""
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), full.get("PYTHONPATH")) if p)
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(root), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=str(root.parent),
        env=full,
        timeout=120,
        check=False,
    )
    assert proc.returncode == code, (
        f"mdsessions {' '.join(args)}: exit {proc.returncode} != {code}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def commit_text(root: Path) -> str:
    """The subject and body (trailers included) of HEAD."""
    return git(root, "log", "-1", "--format=%s%n%b")


def commit_stat(root: Path) -> tuple[str, str, str]:
    """HEAD's files, the feedback's ``--stat`` line, and the manifest with its times masked.

    The manifest's ``updated`` time is the second of the decision: whether it equals the
    times beside it changes its line count, so it is compared with times masked.
    """
    manifest = git(root, "show", f"HEAD:{MANIFEST_REL}")
    return (
        git(root, "show", "--name-status", "--format=", "HEAD"),
        git(root, "show", "--stat", "--format=", "HEAD", "--", FEEDBACK1),
        re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", manifest),
    )


# ------------------------------------------------------------ 1. the same commit as an editor


@pytest.mark.parametrize(
    ("action", "comments", "changes"),
    [
        ("revise", COMMENT, CHANGES),
        ("approved", "Ship it.", []),
        ("rejected", "", []),
    ],
)
def test_decide_makes_the_commit_an_editor_review_makes(
    waiting: Session, tmp_path: Path, action: str, comments: str, changes: list[str]
) -> None:
    store = waiting.store
    editor_root = store.root
    program_root = tmp_path / "copy"
    shutil.copytree(editor_root, program_root, symlinks=True)
    script = tmp_path / "fake_editor.py"
    script.write_text(FAKE_EDITOR, encoding="utf-8")
    pending = (editor_root / FEEDBACK1).read_bytes()

    # A person, in an editor, through `mdsessions review`.
    env = {
        "EDITOR": f"{sys.executable} {script}",
        "DECISION_ACTION": action,
        "DECISION_COMMENTS": comments,
        "DECISION_CHANGES": json.dumps(changes),
    }
    result = mds(editor_root, "review", REF, "1", "--author", ANN, env=env)
    assert f"phase 1 of {REF}: {action}" in result.stdout

    # A program, through decide(), on a copy of the same store.
    with Store.open(program_root) as other:
        session = other.session(PROJECT, SID)
        token = review_token(session, 1)
        decision = decide(
            session,
            1,
            action,
            comments=comments,
            requested_changes=changes,
            author=ANN,
            expected=token,
        )
        assert decision.commit == head(program_root)
        assert decision.action is FeedbackAction.parse(action)
        assert decision.path == FEEDBACK1
        assert decision.token == review_token(session, 1) != token

    assert commit_text(program_root) == commit_text(editor_root)
    assert commit_stat(program_root) == commit_stat(editor_root)
    for root in (editor_root, program_root):
        assert git(root, "log", "-1", "--format=%an <%ae>").strip() == ANN
    committed = git(program_root, "show", f"HEAD:{FEEDBACK1}")
    assert committed == git(editor_root, "show", f"HEAD:{FEEDBACK1}")
    assert (program_root / FEEDBACK1).read_text(encoding="utf-8") == committed
    assert (editor_root / FEEDBACK1).read_text(encoding="utf-8") == committed
    # Only the decision's lines changed; the rest of the person's file stays.
    edited = edit_feedback_text(pending.decode(), action, comments, changes)
    assert committed == edited
    meta = frontmatter.loads(committed).metadata  # a plain frontmatter reader
    assert meta["action"] == action
    assert meta["approved"] is (action == "approved")
    assert (meta["requested_changes"] or []) == changes
    assert trailers(program_root)["Mdsessions-Status"] == action
    for root in (editor_root, program_root):
        assert_clean(root)
    mds(program_root, "verify")


# ------------------------------------------------------------------ 2. refusals, nothing written


def test_a_stale_token_is_refused_and_nothing_is_written(waiting: Session) -> None:
    store = waiting.store
    root = store.root
    token = review_token(waiting, 1)
    assert token == review_token(waiting, 1) and len(token) == 16
    # A person records a comment meanwhile: the phase's feedback is committed anew.
    feedback = root / FEEDBACK1
    feedback.write_bytes(feedback.read_bytes() + b"A first thought.\n")
    sha, rejected = store.record_edits([FEEDBACK1])
    assert sha is not None and rejected == []
    before = snapshot(root)
    with pytest.raises(StaleDecisionError) as caught:
        decide(waiting, 1, "approved", expected=token)
    assert snapshot(root) == before
    error = caught.value
    assert error.token == review_token(waiting, 1) != token
    assert (error.status, error.review, error.retry_count) == ("completed", "pending", 0)
    assert "changed since it was read" in str(error)
    # With the new token it goes through.
    decision = decide(waiting, 1, "approved", expected=error.token)
    assert decision.commit == head(root)
    with pytest.raises(StaleDecisionError):  # the page that still shows the old state
        decide(waiting, 1, "rejected", expected=error.token)
    assert_clean(root)


def test_an_unrecorded_edit_is_never_overwritten(waiting: Session) -> None:
    root = waiting.store.root
    feedback = root / FEEDBACK1
    token = review_token(waiting, 1)
    mine = feedback.read_bytes().replace(b"\naction: pending\n", b"\naction: revise\n")
    feedback.write_bytes(mine)
    before = snapshot(root)
    with pytest.raises(UnrecordedEditError, match="not recorded yet"):
        decide(waiting, 1, "approved", expected=token)
    assert feedback.read_bytes() == mine
    assert snapshot(root) == before
    assert sorted(p.name for p in feedback.parent.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("action", "changes", "field"),
    [
        ("maybe", [], "action"),
        ("pending", [], "action"),
        ("revise", ["two\nlines"], "requested_changes"),
        ("revise", ["  "], "requested_changes"),
        ("approved", ["a change with an approval"], "requested_changes"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    waiting: Session, action: str, changes: list[str], field: str
) -> None:
    root = waiting.store.root
    before = snapshot(root)
    data = (root / FEEDBACK1).read_bytes()
    with pytest.raises(DocumentError) as caught:
        decide(waiting, 1, action, requested_changes=changes, expected=review_token(waiting, 1))
    assert caught.value.field == field, str(caught.value)
    assert snapshot(root) == before
    assert (root / FEEDBACK1).read_bytes() == data


def test_a_save_landing_before_the_rename_is_kept(tmp_path: Path) -> None:
    """The check just before the rename: a save after the read is not replaced."""
    folder = tmp_path / "phase"
    folder.mkdir()
    path = folder / "user_feedback.md"
    path.write_bytes(b"as read\n")
    seen = path.stat()
    time.sleep(0.01)
    path.write_bytes(b"a person's save\n")
    with pytest.raises(UnrecordedEditError, match="saved by someone else"):
        _write_unless_changed(path, b"ours\n", b"as read\n", seen)
    assert path.read_bytes() == b"a person's save\n"
    assert sorted(p.name for p in folder.iterdir()) == ["user_feedback.md"]  # no temp left
    _write_unless_changed(path, b"ours\n", b"a person's save\n", path.stat())
    assert path.read_bytes() == b"ours\n"


def test_decide_on_a_phase_not_awaiting_review(waiting: Session) -> None:
    decide(waiting, 1, "approved")
    before = snapshot(waiting.store.root)
    with pytest.raises(Exception, match="not awaiting review"):
        decide(waiting, 1, "rejected")
    assert snapshot(waiting.store.root) == before


def test_edit_feedback_text_keeps_crlf_and_every_other_byte(waiting: Session) -> None:
    text = (waiting.store.root / FEEDBACK1).read_text(encoding="utf-8").replace("\n", "\r\n")
    edited = edit_feedback_text(text, "revise", "Line one\r\nline two", CHANGES)
    assert "\n" not in edited.replace("\r\n", "")
    doc = loads(edited)
    assert doc.requested_changes == CHANGES and doc.comments == "Line one\r\nline two"
    assert doc.decision() is FeedbackAction.REVISE
    same = edit_feedback_text(edited, "revise", "Line one\r\nline two", CHANGES)
    assert same == edited  # deciding again the same way changes nothing


# ------------------------------------------------------------------ 3. the reviewer's other hands


class VimLikeBuffer:
    """An editor buffer that, like vim, remembers the file's mtime and size when it reads it.

    Saving over a file that changed on disk since (someone rewrote it) fails the test, as
    vim warns "WARNING: The file has been changed since reading it!!!". A save writes the
    buffer in place and remembers the new mtime and size, as vim does.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.seen = self._stat()

    def _stat(self) -> tuple[int, int]:
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size

    def save(self) -> None:
        if self._stat() != self.seen:
            pytest.fail(f"{self.path.name}: the file has been changed since reading it")
        with self.path.open("wb") as fh:
            fh.write(self.data)
        self.seen = self._stat()


def start_watch(root: Path, seconds: int) -> subprocess.Popen[str]:
    """``mdsessions watch`` as a real process, returned once it watches."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "watch", "--timeout",
         str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "watching" in line, line
    return proc


def feedback_commits(root: Path, since: str) -> list[str]:
    return git(root, "log", "--format=%H", "--grep=^user_feedback(", f"{since}..HEAD").split()


def wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_watch_records_an_editors_save_once_and_never_rewrites_it(waiting: Session) -> None:
    """vim's loop from the issue: save, watch records, save the same buffer again."""
    root = waiting.store.root
    feedback = root / FEEDBACK1
    before = head(root)
    watch = start_watch(root, 60)
    try:
        buffer = VimLikeBuffer(feedback)
        buffer.data = buffer.data.replace(b"\napproved: false\n", b"\napproved: true\n")
        buffer.data += b"Ship it.\n"
        buffer.save()
        assert wait_for(lambda: feedback_commits(root, before), 20), "watch recorded nothing"
        time.sleep(1.0)  # time for a rewrite, were there one
        buffer.save()  # ":w" again: no "changed since reading", and nothing new to record
        time.sleep(1.5)  # past the watcher's handling of that save
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=30)
    assert len(feedback_commits(root, before)) == 1
    assert out.count("recorded ") == 1, (out, err)
    assert "Traceback" not in err and "not recorded" not in err, err
    assert git(root, "show", f"HEAD:{FEEDBACK1}").encode() == buffer.data == feedback.read_bytes()
    assert trailers(root)["Mdsessions-Status"] == "approved"
    assert_clean(root)
    assert waiting.manifest().phases[0].review.value == "approved"


def test_decide_while_watch_runs_makes_one_commit(waiting: Session) -> None:
    root = waiting.store.root
    before = head(root)
    watch = start_watch(root, 60)
    try:
        decision = decide(waiting, 1, "revise", comments=COMMENT, requested_changes=CHANGES)
        time.sleep(1.5)  # the watcher sees the rename and finds nothing to record
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=30)
    assert feedback_commits(root, before) == [decision.commit]
    assert "recorded" not in out and "not recorded" not in err, (out, err)
    assert_clean(root)


def test_two_dash_lines_under_requested_changes_reach_every_frontmatter_reader(
    waiting: Session,
) -> None:
    root = waiting.store.root
    feedback = root / FEEDBACK1
    text = feedback.read_text(encoding="utf-8")
    assert text.count("\nrequested_changes:\n---\n") == 1  # the bare key, last
    text = text.replace("\naction: pending\n", "\naction: revise\n").replace(
        "\nrequested_changes:\n",
        "\nrequested_changes:\n- Focus on small gyms\n- 'Price: per seat'\n",
    )
    feedback.write_text(text, encoding="utf-8")
    mds(root, "record")
    committed = git(root, "show", f"HEAD:{FEEDBACK1}")
    assert committed == text
    plain = frontmatter.loads(committed).metadata  # python-frontmatter as is, like gray-matter
    assert plain["requested_changes"] == CHANGES
    assert plain["action"] == "revise"
    assert trailers(root)["Mdsessions-Status"] == "revise"
    feedback_doc = waiting.feedback(1)
    assert feedback_doc is not None and feedback_doc.requested_changes == CHANGES


def test_an_unquoted_change_holding_a_colon_is_named_with_how_to_quote_it(
    waiting: Session,
) -> None:
    root = waiting.store.root
    feedback = root / FEEDBACK1
    text = feedback.read_text(encoding="utf-8").replace(
        "\nrequested_changes:\n", "\nrequested_changes:\n- Price: per seat\n"
    )
    text = text.replace("\naction: pending\n", "\naction: revise\n")
    feedback.write_text(text, encoding="utf-8")
    before = snapshot(root)
    result = mds(root, "record", code=1)
    assert "quote it: - 'Price: per seat'" in result.stderr, result.stderr
    assert snapshot(root) == before


# ------------------------------------------------------------------ 4. files of the old layout

OLD_BODY = """\
# User Feedback: Draft

## Outputs
- [writer.md](writer.md)

## Review Status
- Reviewed: false
- Approved: false
- Timestamp: -
- Reviewer: -

## User Comments



## Requested Changes

## Action Taken
- Action: pending
- Retry Count: 0
"""


def use_old_layout(root: Path) -> str:
    """Make the pending feedback one an earlier mdsessions wrote (a person's git commit)."""
    feedback = root / FEEDBACK1
    text = feedback.read_text(encoding="utf-8")
    head_text = text[: text.index("\n---\n") + 5]
    head_text = head_text.replace("\nrequested_changes:\n", "\nrequested_changes: []\n")
    old = head_text + OLD_BODY
    feedback.write_text(old, encoding="utf-8")
    git(root, "commit", "-q", "-m", "feedback as an earlier mdsessions wrote it", "--", FEEDBACK1)
    return old


def line_number(text: str, line: str) -> int:
    found = [n for n, candidate in enumerate(text.split("\n"), 1) if candidate == line]
    assert len(found) == 1, (line, found)
    return found[0]


def test_an_old_file_with_changes_only_in_its_body_is_refused_with_the_line(
    waiting: Session,
) -> None:
    root = waiting.store.root
    old = use_old_layout(root)
    assert waiting.validate() == []  # untouched, it agrees with itself
    feedback = root / FEEDBACK1
    edited = old.replace("\naction: pending\n", "\naction: revise\n")
    edited = edited.replace("- Action: pending\n", "- Action: revise\n")
    edited = edited.replace(
        "## Requested Changes\n", "## Requested Changes\n- Focus on small gyms\n- Add prices\n"
    )
    feedback.write_text(edited, encoding="utf-8")
    line = line_number(edited, "- Focus on small gyms")
    where = f"{FEEDBACK1}:{line}: field 'requested_changes': the body lists 2 requested change"
    before = snapshot(root)

    result = mds(root, "record", code=1)
    assert where in result.stderr, result.stderr
    assert "delete the '## Requested Changes' section" in result.stderr
    assert snapshot(root) == before
    assert feedback.read_text(encoding="utf-8") == edited  # kept as the person left it
    assert where in mds(root, "edits").stdout
    assert mds(root, "validate", REF, code=1).stdout.startswith(where)
    with pytest.raises(DocumentError) as caught:
        waiting.record_feedback(1)
    assert caught.value.line == line and caught.value.field == "requested_changes"
    assert snapshot(root) == before

    # Fixed as the error says: the changes under requested_changes, the section gone.
    fixed = edited.replace(
        "\nrequested_changes: []\n", "\nrequested_changes:\n- Focus on small gyms\n- Add prices\n"
    )
    fixed = fixed.replace("## Requested Changes\n- Focus on small gyms\n- Add prices\n\n", "")
    feedback.write_text(fixed, encoding="utf-8")
    mds(root, "record")
    assert frontmatter.loads(git(root, "show", f"HEAD:{FEEDBACK1}")).metadata[
        "requested_changes"
    ] == ["Focus on small gyms", "Add prices"]
    assert_clean(root)


def test_an_old_file_whose_status_lines_disagree_is_refused(waiting: Session) -> None:
    root = waiting.store.root
    old = use_old_layout(root)
    feedback = root / FEEDBACK1
    edited = old.replace("\napproved: false\n", "\napproved: true\n")  # body says false
    feedback.write_text(edited, encoding="utf-8")
    line = line_number(edited, "- Approved: false")
    before = snapshot(root)
    result = mds(root, "record", code=1)
    assert f"{FEEDBACK1}:{line}: field 'approved': the body's '- Approved: false'" in result.stderr
    assert "set this line to '- Approved: true'" in result.stderr
    assert snapshot(root) == before
    feedback.write_text(edited.replace("- Approved: false", "- Approved: true"), encoding="utf-8")
    mds(root, "record")
    assert trailers(root)["Mdsessions-Status"] == "approved"


def test_decide_on_an_old_file_keeps_its_body_in_step(waiting: Session) -> None:
    root = waiting.store.root
    use_old_layout(root)
    decision = decide(waiting, 1, "revise", comments="Narrow it.", requested_changes=CHANGES)
    committed = git(root, "show", f"{decision.commit}:{FEEDBACK1}")
    assert "## Requested Changes\n- Focus on small gyms\n- Price: per seat\n\n" in committed
    assert "- Action: revise\n" in committed and "- Approved: false\n" in committed
    assert frontmatter.loads(committed).metadata["requested_changes"] == CHANGES
    doc = waiting.feedback(1)
    assert doc is not None and doc.comments == "Narrow it." and doc.requested_changes == CHANGES
    mds(root, "verify")
    assert_clean(root)
