"""A reviewer in an editor: editors' temp files are never edits, and errors name the right line.

Issue 16, "In the editor, first". Everything is real: git repositories in ``tmp_path``, files
named as vim, emacs, JetBrains IDEs and kate name theirs (an emacs lock is a dangling symlink,
as emacs makes it), ``python -m mdsessions`` processes, and the watchdog observer of
:class:`~mdsessions.FeedbackWatcher`. Nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

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

from mdsessions import FeedbackWatcher, Runner, Session, SessionStatus, Store
from mdsessions.documents.frontmatter import loads
from mdsessions.errors import DocumentError
from mdsessions.store.config import EDITOR_TEMP_PATTERNS, is_editor_temp

AGENT_MODULE = "mdsessions_editor_test_agents"
PROJECT, SID = "demo", "s1"
REF = f"{PROJECT}/{SID}"
PHASE1_REL = f"projects/{PROJECT}/sessions/{SID}/phase_1_draft"
FEEDBACK1 = f"{PHASE1_REL}/user_feedback.md"
OLD_GITIGNORE = """\
# mdsessions: caches and locks (rebuildable), temp files of atomic writes
/.mdsessions/*
!/.mdsessions/templates/
*.mdstmp
"""


def editor_files(name: str) -> list[str]:
    """What each editor puts beside ``name`` while a person edits it."""
    return [
        f".{name}.swp",  # vim
        f".{name}.swo",
        f".{name}.swx",
        f"{name}~",  # vim backup, emacs backup
        f".{name}.un~",  # vim undo file
        "4913",  # vim's write probe
        f".#{name}",  # emacs lock (a dangling symlink)
        f"#{name}#",  # emacs auto-save
        f"{name}___jb_tmp___",  # JetBrains safe write
        f"{name}___jb_old___",
        f".{name}.kate-swp",  # kate
    ]


def put_editor_files(folder: Path, name: str) -> list[Path]:
    """Create the editors' files beside ``folder / name`` as the editors do."""
    made = []
    for temp in editor_files(name):
        path = folder / temp
        if temp.startswith(".#"):
            path.symlink_to(f"ann@host.{os.getpid()}:1733200000")
        else:
            path.write_bytes(b"\x00editor state\x00" + temp.encode())
        made.append(path)
    return made


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from clean_reviewer_env(monkeypatch, AGENT_MODULE)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    return write_python_workflow(
        tmp_path / "wf",
        name="editor",
        module=AGENT_MODULE,
        agents=textwrap.dedent(
            """\
            def writer(ctx):
                return f"# Draft\\n\\nIdea: {ctx.idea}\\n\\n---\\n\\nA rule above.\\n"


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


def mds(root: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mdsessions --store ROOT ARGS`` as a real process; check its exit status."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(root), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=str(root.parent),
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == code, (
        f"mdsessions {' '.join(args)}: exit {proc.returncode} != {code}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def use_old_gitignore(root: Path) -> None:
    """Make the store one made before editors' files were ignored (a person's git commit)."""
    (root / ".gitignore").write_text(OLD_GITIGNORE, encoding="utf-8")
    git(root, "commit", "-q", "-m", "an older store's .gitignore", "--", ".gitignore")


def line_of(text: str, start: str) -> int:
    """The 1-based number of the first line starting with ``start``."""
    return next(n for n, line in enumerate(text.split("\n"), 1) if line.startswith(start))


# ------------------------------------------------------------------------- 1. editors' files


def test_patterns_match_each_editors_files_and_nothing_of_ours() -> None:
    for name in ("user_feedback.md", "writer.md", "checkpoint.md"):
        for temp in editor_files(name):
            assert is_editor_temp(temp), temp
            assert is_editor_temp(f"projects/demo/sessions/s1/phase_1_draft/{temp}"), temp
    ours = ["user_feedback.md", "checkpoint.md", "session_manifest.md", "writer.md",
            "mdsessions.toml", ".gitignore", "x.mdstmp", "notes-4913.md", "a#b.md"]  # fmt: skip
    assert [n for n in ours if is_editor_temp(n)] == []
    assert len(EDITOR_TEMP_PATTERNS) == 11


def test_a_new_stores_gitignore_ignores_editors_files(waiting: Session) -> None:
    root = waiting.store.root
    folder = root / PHASE1_REL
    made = put_editor_files(folder, "user_feedback.md") + put_editor_files(folder, "writer.md")
    assert_clean(root)  # git status sees none of them
    for path in made:
        rel = path.relative_to(root).as_posix()
        assert git(root, "check-ignore", "--no-index", rel).strip() == rel
    assert waiting.store.unrecorded_edits() == []
    assert mds(root, "edits").stdout == ""
    assert waiting.validate() == []
    # The inbox lists the phase's output, not emacs' lock link beside it.
    assert [i.outputs for i in waiting.store.inbox()] == [(f"{PHASE1_REL}/writer.md",)]
    assert ".#" not in mds(root, "inbox", "--json").stdout


def test_a_session_named_like_an_editors_file_is_not_ignored(store: Store, workflow: Path) -> None:
    """vim's probe is named 4913, a fine session id: the folder stays in git's view."""
    result = Runner(store, workflow).start("4913", "4913", idea="Numbers as names.")
    assert result.status is SessionStatus.AWAITING_REVIEW
    root = store.root
    assert_clean(root)
    folder = root / "projects/4913/sessions/4913/phase_1_draft"
    assert (folder / "user_feedback.md").is_file()
    rel = "projects/4913/sessions/4913/phase_1_draft/user_feedback.md"
    proc = subprocess.run(["git", "check-ignore", "--no-index", "-v", rel], cwd=root, check=False)
    assert proc.returncode == 1, "git ignores the session's files"
    made = put_editor_files(folder, "user_feedback.md")
    assert_clean(root)  # the files named 4913 inside are ignored, the folders are not
    feedback = folder / "user_feedback.md"
    data = feedback.read_bytes().replace(b"\napproved: false\n", b"\napproved: true\n")
    feedback.write_bytes(data)
    assert [e.path for e in store.unrecorded_edits()] == [
        "projects/4913/sessions/4913/phase_1_draft/user_feedback.md"
    ]
    mds(root, "record")
    assert trailers(root)["Mdsessions-Session"] == "4913"
    for path in made:
        path.unlink()
    assert_clean(root)


def test_an_existing_store_without_them_in_gitignore_still_ignores_them(
    waiting: Session,
) -> None:
    store = waiting.store
    root = store.root
    use_old_gitignore(root)
    folder = root / PHASE1_REL
    made = put_editor_files(folder, "user_feedback.md") + put_editor_files(folder, "writer.md")
    status = git(root, "status", "--porcelain", "--untracked-files=all")
    assert status.count("??") == len(set(made))  # git itself sees them: its .gitignore is old
    assert store.unrecorded_edits() == []
    state = snapshot(root)
    result = mds(root, "record")
    assert result.stdout == ""
    assert "nothing to record" in result.stderr
    assert snapshot(root) == state
    mds(root, "validate", REF)

    # The person approves beside the editors' files: only the feedback (and the manifest
    # the decision updates) goes into the commit.
    feedback = root / FEEDBACK1
    data = feedback.read_bytes().replace(b"\napproved: false\n", b"\napproved: true\n")
    feedback.write_bytes(data)
    result = mds(root, "record")
    assert result.stdout.startswith("recorded 1 file(s)")
    changed = git(root, "show", "--name-status", "--format=", "HEAD").split("\n")
    assert sorted(filter(None, changed)) == [
        f"M\t{FEEDBACK1}",
        f"M\tprojects/{PROJECT}/sessions/{SID}/session_manifest.md",
    ]
    assert trailers(root)["Mdsessions-Status"] == "approved"
    tracked = git(root, "ls-files").split("\n")
    assert not [t for t in tracked if is_editor_temp(t)]

    # The runner reads the phase's outputs past emacs' lock link on writer.md, and the
    # session validates.
    result = mds(root, "run", REF)
    assert waiting.manifest().status is SessionStatus.COMPLETED, result.stderr
    assert waiting.validate() == []
    assert not [t for t in git(root, "ls-files").split("\n") if is_editor_temp(t)]
    for path in set(made):
        path.unlink()
    git(root, "checkout", "-q", "--", ".gitignore")
    assert_clean(root)


def test_watch_records_a_vim_save_once_and_never_a_deletion(waiting: Session) -> None:
    """vim (backupcopy=no) moves the file to ``name~``, probes with ``4913``, writes anew."""
    store = waiting.store
    root = store.root
    use_old_gitignore(root)
    feedback = root / FEEDBACK1
    backup = feedback.with_name("user_feedback.md~")
    swap = feedback.with_name(".user_feedback.md.swp")
    approved = feedback.read_bytes().replace(b"\napproved: false\n", b"\napproved: true\n")
    before = head(root)
    swap.write_bytes(b"b0VIM 9.0")
    # A long debounce makes the moment the file is missing certain to fall in the burst.
    with FeedbackWatcher(store, debounce=1.0) as watcher:
        feedback.write_bytes(feedback.read_bytes())  # an event for the feedback file ...
        feedback.rename(backup)  # ... then it is gone for a moment
        probe = feedback.with_name("4913")
        probe.write_bytes(b"")
        probe.unlink()
        swap.write_bytes(b"b0VIM 9.0 more")
        time.sleep(1.5)  # past the debounce: the watcher looked while the file was missing
        assert head(root) == before, "the watcher committed something while vim was saving"
        feedback.write_bytes(approved)
        assert watcher.wait(lambda: any(e.commit for e in watcher.events), 10), watcher.events
    commits = git(root, "rev-list", f"{before}..HEAD").split()
    assert len(commits) == 1
    committed = git(root, "show", "HEAD:" + FEEDBACK1)
    assert committed == feedback.read_text(encoding="utf-8")
    assert "\napproved: true\n" in committed
    changed = git(root, "show", "--name-status", "--format=", "HEAD")
    assert "D\t" not in changed and "user_feedback.md~" not in changed and ".swp" not in changed
    assert [e.error for e in watcher.events] == [None]
    assert trailers(root)["Mdsessions-Status"] == "approved"


# ------------------------------------------------------------------------- 2. error lines


def test_a_yaml_error_is_reported_at_its_own_line(waiting: Session) -> None:
    """A line without ':' (vim user typed ``approved true``): line N, not N+1, everywhere."""
    store = waiting.store
    root = store.root
    feedback = root / FEEDBACK1
    text = feedback.read_text(encoding="utf-8").replace("\napproved: false\n", "\napproved true\n")
    feedback.write_text(text, encoding="utf-8")
    line = line_of(text, "approved true")
    where = f"{FEEDBACK1}:{line}:"
    state = snapshot(root)

    result = mds(root, "validate", REF, code=1)
    assert result.stdout.startswith(where), result.stdout
    result = mds(root, "record", code=1)
    assert f"{where} invalid YAML frontmatter: expected 'key: value'" in result.stderr
    assert snapshot(root) == state
    with FeedbackWatcher(store) as watcher:
        assert watcher.wait(lambda: any(e.error for e in watcher.events), 10)
    assert watcher.events[0].error is not None and watcher.events[0].error.startswith(where)
    result = mds(root, "watch", "--timeout", "3")
    assert f"not recorded: {where} invalid YAML frontmatter: " in result.stderr, result.stderr
    assert snapshot(root) == state
    assert feedback.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("yaml_lines", "bad"),
    [
        ("a: 1\njust text\n\n\nc: 2\n", 3),  # PyYAML notices at the next key (line 6)
        ("a:\n- x\nb - y\nc: 3\n", 4),
        ("a: 1\n# a note\napproved true\n", 4),
        ("a: 1\nb: [1, 2\nc: 3\n", 3),
        ("a: 1\na: 2\n", 3),
    ],
)
def test_yaml_error_lines(yaml_lines: str, bad: int) -> None:
    with pytest.raises(DocumentError) as caught:
        loads(f"---\n{yaml_lines}---\n# Title\n\nbody\n", path="f.md")
    assert caught.value.line == bad, str(caught.value)
    assert str(caught.value).startswith(f"f.md:{bad}: invalid YAML frontmatter: ")


def test_too_deep_nesting_names_its_line() -> None:
    deep = "[" * 70 + "]" * 70
    with pytest.raises(DocumentError) as caught:
        loads(f"---\na: 1\nb: {deep}\n---\n", path="f.md")
    assert caught.value.line == 3, str(caught.value)


def test_a_deleted_closing_fence_is_reported_where_the_frontmatter_should_end(
    waiting: Session,
) -> None:
    store = waiting.store
    root = store.root
    feedback = root / FEEDBACK1
    original = feedback.read_text(encoding="utf-8")
    lines = original.split("\n")
    closing = next(n for n in range(1, len(lines)) if lines[n] == "---")  # 0-based
    assert lines[closing + 1].startswith("# User Feedback")
    text = "\n".join(lines[:closing] + lines[closing + 1 :])
    feedback.write_text(text, encoding="utf-8")
    line = closing + 1  # the line the '---' was on, now the body's title
    where = f"{FEEDBACK1}:{line}: missing the closing '---'"
    state = snapshot(root)

    result = mds(root, "validate", REF, code=1)
    assert result.stdout.startswith(where), result.stdout
    assert f"put a '---' line before line {line}" in result.stdout
    result = mds(root, "record", code=1)
    assert where in result.stderr, result.stderr
    with FeedbackWatcher(store) as watcher:
        assert watcher.wait(lambda: any(e.error for e in watcher.events), 10)
    assert (watcher.events[0].error or "").startswith(where), watcher.events
    assert f"not recorded: {where}" in mds(root, "watch", "--timeout", "3").stderr
    assert snapshot(root) == state

    # Put back where the error said, the file records.
    fixed = text.split("\n")
    fixed.insert(line - 1, "---")
    feedback.write_text("\n".join(fixed), encoding="utf-8")
    assert feedback.read_text(encoding="utf-8") == original
    mds(root, "validate", REF)


def test_a_deleted_closing_fence_before_a_markdown_rule(waiting: Session) -> None:
    """An agent output whose body has a ``---`` rule: the rule would close the frontmatter."""
    store = waiting.store
    root = store.root
    output = root / PHASE1_REL / "writer.md"
    lines = output.read_text(encoding="utf-8").split("\n")
    closing = next(n for n in range(1, len(lines)) if lines[n] == "---")
    assert "---" in lines[closing + 1 :]  # the output's own rule
    output.write_text("\n".join(lines[:closing] + lines[closing + 1 :]), encoding="utf-8")
    result = mds(root, "validate", REF, code=1)
    rel = f"{PHASE1_REL}/writer.md"
    assert result.stdout.startswith(f"{rel}:{closing + 1}: missing the closing '---'"), (
        result.stdout
    )


def test_no_closing_fence_and_no_body_names_the_opening_line() -> None:
    with pytest.raises(DocumentError) as caught:
        loads("---\nschema: mdsessions/user_feedback/v1\nphase: 1\n", path="f.md")
    assert caught.value.line == 1
    assert "no closing '---' line" in str(caught.value)
    assert "opened by the '---' on line 1" in str(caught.value)


def test_a_deleted_closing_fence_in_a_crlf_file_with_a_bom() -> None:
    text = "\ufeff---\r\n# a comment\r\nschema: mdsessions/user_feedback/v1\r\nphase: 1\r\n"
    text += "# User Feedback: Draft\r\n\r\n## Review Status\r\n- Reviewed: false\r\n"
    with pytest.raises(DocumentError) as caught:
        loads(text, path="f.md")
    assert caught.value.line == 5, str(caught.value)
    assert "missing the closing '---'" in str(caught.value)


def test_an_emacs_lock_beside_a_transcript_is_not_a_transcript(store: Store) -> None:
    session = store.create_session("demo", "s1")
    with session.transcript("writer") as log:
        log.record_message(role="user", content="hello")
    folder = session.path / "transcripts"
    (folder / ".#writer.md").symlink_to("ann@host.1234:1700000000")  # emacs' lock link
    (folder / "#writer.md#").write_text("autosave\n", encoding="utf-8")
    assert [n for n in session.transcript("writer").names(session)] == ["writer"]
