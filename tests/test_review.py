"""Acceptance tests of the reviewer's loop: review in $EDITOR, hand edits, watch, run --wait, inbox.

Everything is real: git repositories in ``tmp_path``, ``python -m mdsessions`` processes, editor
programs written into ``tmp_path`` and started by ``mdsessions review`` through ``$EDITOR``, the
watchdog observer of :class:`~mdsessions.FeedbackWatcher`. Nothing is mocked, and no sleep is
used as an assertion: tests wait on events or conditions, each with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import (
    PERSON,
    PERSON_EMAIL,
    REPO_ROOT,
    RUNNER,
    Lines,
    assert_all_documents_parse,
    assert_clean,
    author,
    clean_reviewer_env,
    git,
    head,
    parse_independent,
    python_agent,
    snapshot,
    trailers,
    write_two_phase_workflow,
)

from mdsessions import FeedbackEvent, FeedbackWatcher, Runner, Session, SessionStatus, Store

AGENT_MODULE = "mdsessions_review_test_agents"
PROJECT, SID = "demo", "s1"
REF = f"{PROJECT}/{SID}"
IDEA = "A leaderboard for small gyms: members compete on streaks, not weights."
ANN = "Ann Reviewer <ann@example.com>"
RUNNER_EMAIL = "mdsessions@localhost"
COMMENT = "Focus on students, not gyms."
CHANGE = "audience: students"
WATCH_LIMIT = 1.0  # seconds from a save to its recording: the acceptance figure
WATCH_LATENCIES: list[float] = []  # every latency measured in this module (printed)

SESSION_REL = f"projects/{PROJECT}/sessions/{SID}"
MANIFEST_REL = f"{SESSION_REL}/session_manifest.md"
PHASE1_REL = f"{SESSION_REL}/phase_1_draft"
PHASE2_REL = f"{SESSION_REL}/phase_2_critique"
FEEDBACK1 = f"{PHASE1_REL}/user_feedback.md"
FEEDBACK2 = f"{PHASE2_REL}/user_feedback.md"


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from clean_reviewer_env(monkeypatch, AGENT_MODULE)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    """Two gated phases; Python agents beside the TOML that write what they received."""
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / f"{AGENT_MODULE}.py").write_text(
        textwrap.dedent(
            """\
            def writer(ctx):
                return (
                    f"# Draft (retry {ctx.retry_count})\\n\\n"
                    f"Idea: {ctx.idea}\\n"
                    f"Comments received: {(ctx.feedback_comments or '-').strip()}\\n"
                    f"Changes received: {'; '.join(ctx.requested_changes) or '-'}\\n"
                )


            def critic(ctx):
                earlier = ctx.previous_outputs
                read = ", ".join(f"{n}:{a}" for n in earlier for a in earlier[n])
                return (
                    f"# Critique (retry {ctx.retry_count})\\n\\nRead: {read or '-'}\\n"
                    f"Comments received: {(ctx.feedback_comments or '-').strip()}\\n"
                )
            """
        ),
        encoding="utf-8",
    )
    toml = write_two_phase_workflow(
        folder / "review.toml",
        name="review",
        first=python_agent(f"{AGENT_MODULE}:writer"),
        second=python_agent(f"{AGENT_MODULE}:critic"),
        second_phase=("critique", "Critique", "critic"),
        second_review=True,
    )
    return toml


@pytest.fixture
def waiting(store: Store, workflow: Path) -> Session:
    """Session ``demo/s1`` run (in-process, by the runner) up to the review gate of phase 1."""
    result = Runner(store, workflow).start(PROJECT, SID, idea=IDEA)
    assert result.status is SessionStatus.AWAITING_REVIEW and result.waiting_for_review == 1
    return result.session


# ------------------------------------------------------------------------------ helpers


def env(**extra: str) -> dict[str, str]:
    """The environment of a real ``mdsessions`` process (the test's private git config)."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), out.get("PYTHONPATH")) if p)
    out.update(extra)
    return out


def mds(
    root: Path,
    *args: str,
    code: int = 0,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mdsessions --store ROOT ARGS`` as a real process; check its exit status."""
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(root), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=str(cwd or root.parent),
        env=env(**(extra_env or {})),
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == code, (
        f"mdsessions {' '.join(args)}: exit {proc.returncode} != {code}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def editor(tmp_path: Path, name: str, body: str) -> str:
    """Write an executable editor program; it logs the file it was given, then edits it."""
    folder = tmp_path / "editors"
    folder.mkdir(exist_ok=True)
    script = folder / f"{name}.py"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""\
            import re
            import sys

            path = sys.argv[-1]
            with open({str(tmp_path / "editor.log")!r}, "a", encoding="utf-8") as log:
                log.write({name!r} + " " + path + "\\n")
            with open(path, encoding="utf-8", newline="") as fh:
                text = fh.read()


            def sub(pattern, new):
                global text
                text, count = re.subn(pattern, new, text, count=1, flags=re.M)
                if count != 1:
                    sys.exit(f"{name}: {{pattern!r}} not found")


            """
        )
        + textwrap.dedent(body)
        + textwrap.dedent(
            """
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            """
        ),
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


APPROVE = 'sub(r"^approved: false$", "approved: true")\n'
REVISE = f"""\
sub(r"^action: pending$", "action: revise")
sub(r"^## User Comments\\n\\n", "## User Comments\\n\\n{COMMENT}\\n")
sub(r"^requested_changes:$", "requested_changes:\\n- '{CHANGE}'")
"""
REJECT = 'sub(r"^action: pending$", "action: reject")\n'
BREAK = 'sub(r"^action: pending$", "action: [oops")\n'


def edit_file(path: Path, old: str, new: str, *more: tuple[str, str]) -> bytes:
    """Change a file the way an editor saves it in place (one write); returns the new bytes."""
    changed = data = path.read_bytes()
    for a, b in [(old, new), *more]:
        assert changed.count(a.encode()) == 1, (a, data.decode())
        changed = changed.replace(a.encode(), b.encode())
    with path.open("wb") as fh:
        fh.write(changed)
    return changed


def line_of(data: bytes | str, start: str) -> int:
    """1-based number of the only line that starts with ``start``."""
    text = data.decode() if isinstance(data, bytes) else data
    found = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def blame(root: Path, rel: str, rev: str = "HEAD") -> list[tuple[str, str]]:
    """``(author email, line text)`` for every line of ``rel`` at ``rev`` (``git blame``)."""
    out = git(root, "blame", "--line-porcelain", rev, "--", rel)
    lines: list[tuple[str, str]] = []
    mail = ""
    for line in out.splitlines():
        if line.startswith("author-mail "):
            mail = line[len("author-mail ") :].strip("<>")
        elif line.startswith("\t"):
            lines.append((mail, line[1:]))
    return lines


def blamed(lines: list[tuple[str, str]], start: str) -> str:
    """The author email of the only blamed line that starts with ``start``."""
    found = [mail for mail, text in lines if text.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def authors_since(root: Path, rev: str) -> list[str]:
    """``Name <email>  subject`` of each commit after ``rev``, oldest first."""
    return git(root, "log", "--reverse", "--format=%an <%ae>  %s", f"{rev}..HEAD").splitlines()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def latency(event: FeedbackEvent, saved_at: float) -> float:
    """Seconds from the save to the recording (wall clock: ``recorded_at`` is epoch time)."""
    value = event.recorded_at - saved_at
    WATCH_LATENCIES.append(value)
    print(f"watch latency {event.path}: {value * 1000:.1f} ms")
    return value


# ------------------------------------------------------------------ 1. review in $EDITOR


def decision_lines(stdout: str) -> str:
    """What ``review`` says of the decision, without the outputs it listed to read first."""
    return "".join(
        line for line in stdout.splitlines(keepends=True) if not line.startswith("read ")
    )


@pytest.mark.slow
def test_review_in_editor_revise_approve_reject(
    store: Store, workflow: Path, tmp_path: Path
) -> None:
    root = store.root
    init = head(root)
    result = mds(root, "run", "--new", PROJECT, SID, "--idea", IDEA, "--workflow", str(workflow))
    assert result.stdout.startswith(f"{REF}: ran phase 1; waiting for review of phase 1\n")
    gate1 = head(root)
    assert authors_since(root, init) == [
        f"{RUNNER}  session({REF}): created (review, all)",
        f"{RUNNER}  checkpoint({REF}): phase 1 Draft in_progress",
        f"{RUNNER}  agent_output({REF}): phase 1 writer completed",
        f"{RUNNER}  checkpoint({REF}): phase 1 Draft completed, awaiting review",
    ]
    draft0 = (root / PHASE1_REL / "writer.md").read_bytes()
    assert b"# Draft (retry 0)" in draft0

    # --- revise: the reviewer's comments and requested changes reach the re-run agents.
    revise = editor(tmp_path, "revise", REVISE)
    result = mds(root, "review", REF, extra_env={"EDITOR": revise})
    review1 = head(root)
    assert decision_lines(result.stdout) == (
        f"phase 1 of {REF}: revise (recorded in {review1[:10]})\nnext: mdsessions run {REF}\n"
    )
    assert (
        f"read    {root / PHASE1_REL / 'writer.md'}\n" in result.stdout
    )  # the output under review
    assert (tmp_path / "editor.log").read_text() == f"revise {root / FEEDBACK1}\n"
    assert author(root, review1) == PERSON
    assert git(root, "log", "-1", "--format=%cn <%ce>", review1).strip() == RUNNER
    assert trailers(root, review1)["Mdsessions-Kind"] == "user_feedback"
    assert trailers(root, review1)["Mdsessions-Status"] == "revise"
    lines = blame(root, FEEDBACK1, review1)
    assert blamed(lines, "action:") == PERSON_EMAIL
    assert blamed(lines, COMMENT) == PERSON_EMAIL
    assert blamed(lines, f"- '{CHANGE}'") == PERSON_EMAIL
    # The file is committed as the person saved it: no lines of ours added to it.
    assert git(root, "show", f"{review1}:{FEEDBACK1}").count("reviewe") == 0
    for header in ("# Your review of phase 1", "schema:", "project_id:", "# User Feedback:"):
        assert blamed(lines, header) == RUNNER_EMAIL, header
    assert_clean(root)

    result = mds(root, "run", REF)
    assert result.stdout.startswith(f"{REF}: ran phase 1; waiting for review of phase 1\n")
    assert authors_since(root, review1) == [
        f"{RUNNER}  checkpoint({REF}): phase 1 Draft in_progress",
        f"{RUNNER}  agent_output({REF}): phase 1 writer completed",
        f"{RUNNER}  checkpoint({REF}): phase 1 Draft completed, awaiting review",
    ]
    draft1 = (root / PHASE1_REL / "writer.md").read_text(encoding="utf-8")
    assert "# Draft (retry 1)" in draft1
    assert f"Comments received: {COMMENT}\n" in draft1
    assert f"Changes received: {CHANGE}\n" in draft1
    checkpoint = parse_independent(root / PHASE1_REL / "checkpoint.md")
    assert checkpoint.metadata["retry_count"] == 1
    assert checkpoint.metadata["status"] == "completed"
    assert parse_independent(root / FEEDBACK1).metadata["retry_count"] == 1
    assert parse_independent(root / MANIFEST_REL).metadata["phases"][0]["retry_count"] == 1
    # The first draft and the reviewer's file stay in history.
    writer_rel = f"{PHASE1_REL}/writer.md"
    assert git(root, "show", f"{gate1}:{writer_rel}").encode() == draft0
    assert COMMENT in git(root, "show", f"{review1}:{FEEDBACK1}")
    patches = git(root, "log", "-p", "--format=commit %H", "--", writer_rel)
    assert "+# Draft (retry 0)" in patches and "+# Draft (retry 1)" in patches
    assert len(git(root, "log", "--format=%H", "--", writer_rel).split()) == 2

    # --- approve, as another reviewer (--author).
    approve = editor(tmp_path, "approve", APPROVE)
    result = mds(root, "review", REF, "1", "--author", ANN, extra_env={"EDITOR": approve})
    review2 = head(root)
    assert decision_lines(result.stdout) == (
        f"phase 1 of {REF}: approved (recorded in {review2[:10]})\nnext: mdsessions run {REF}\n"
    )
    assert author(root, review2) == ANN
    lines = blame(root, FEEDBACK1, review2)
    assert blamed(lines, "approved:") == "ann@example.com"
    # Recorded as saved: the line Ann left alone is the runner's, the reviewer is the
    # commit's author (the file names none).
    for header in ("# Your review of phase 1", "schema:", "phase_name:", "# User Feedback:",
                   "action:"):  # fmt: skip
        assert blamed(lines, header) == RUNNER_EMAIL, header
    assert "reviewer" not in parse_independent(root / FEEDBACK1).metadata
    assert git(root, "show", f"{review2}:{FEEDBACK1}").encode() == (root / FEEDBACK1).read_bytes()

    result = mds(root, "run", REF)
    assert result.stdout.startswith(f"{REF}: ran phase 2; waiting for review of phase 2\n")
    assert [a.split("  ")[0] for a in authors_since(root, review2)] == [RUNNER] * 3
    assert "Read: 1:writer" in (root / PHASE2_REL / "critic.md").read_text(encoding="utf-8")

    # --- reject (PHASE defaults to the one awaiting review; $VISUAL wins over $EDITOR).
    reject = editor(tmp_path, "reject", REJECT)
    result = mds(root, "review", REF, extra_env={"VISUAL": reject, "EDITOR": "false"})
    review3 = head(root)
    assert decision_lines(result.stdout) == (
        f"phase 2 of {REF}: rejected (recorded in {review3[:10]})\nsession rejected\n"
    )
    assert author(root, review3) == PERSON
    assert blamed(blame(root, FEEDBACK2, review3), "action: reject") == PERSON_EMAIL  # as typed
    assert parse_independent(root / MANIFEST_REL).metadata["status"] == "rejected"
    before = snapshot(root)
    result = mds(root, "run", REF)
    assert result.stdout == f"{REF}: ran no phase; session rejected by the reviewer\n"
    assert snapshot(root) == before
    assert (tmp_path / "editor.log").read_text().splitlines() == [
        f"revise {root / FEEDBACK1}",
        f"approve {root / FEEDBACK1}",
        f"reject {root / FEEDBACK2}",
    ]
    assert_clean(root)
    assert_all_documents_parse(root)


# --------------------------------------------------------------------- 2. hand edit + record


def test_hand_edit_listed_then_recorded_as_the_person(
    store: Store, waiting: Session, workflow: Path
) -> None:
    root = store.root
    other = Runner(store, workflow).start("other", "s2", idea="Another idea").session
    other_fb = root / other.phase_rel(1) / "user_feedback.md"
    feedback = root / FEEDBACK1
    assert store.unrecorded_edits() == []

    edit_file(
        feedback,
        "approved: false\n",
        "approved: true\n",
        ("## User Comments\n\n", f"## User Comments\n\n{COMMENT}\n"),
    )
    broken = edit_file(other_fb, "approved: false\n", "approved: maybe\n")
    before = head(root)

    # `edits` lists both, and whether each validates.
    rel_other = other_fb.relative_to(root).as_posix()
    listed = json.loads(mds(root, "edits", "--json").stdout)
    assert sorted(e["path"] for e in listed) == sorted([FEEDBACK1, rel_other])
    by_path = {e["path"]: e for e in listed}
    assert by_path[FEEDBACK1] == {"path": FEEDBACK1, "change": "modified", "error": None}
    line = line_of(broken, "approved:")
    assert by_path[rel_other]["change"] == "modified"
    assert by_path[rel_other]["error"].startswith(f"{rel_other}:{line}: field 'approved': ")
    text = mds(root, "edits").stdout
    assert f"modified  {feedback}\n" in text
    assert f"modified  {other_fb}\n          invalid: {rel_other}:{line}: " in text

    # Record only the valid one: one commit by the person (git's identity).
    result = mds(root, "record", str(feedback))
    sha = head(root)
    assert result.stdout == f"recorded 1 file(s) in {sha[:10]}\n  modified  {feedback}\n"
    assert git(root, "log", "-1", "--format=%an <%ae>").strip() == PERSON
    assert git(root, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert trailers(root)["Mdsessions-Status"] == "approved"
    assert set(git(root, "show", "--name-only", "--format=", sha).split()) == {
        FEEDBACK1,
        MANIFEST_REL,
    }
    recorded = parse_independent(feedback)
    assert recorded.metadata["approved"] is True
    assert "reviewer" not in recorded.metadata  # the commit's author is the reviewer
    assert recorded.content.endswith(COMMENT)  # python-frontmatter strips the line end
    assert git(root, "show", f"HEAD:{FEEDBACK1}").encode() == feedback.read_bytes()
    assert COMMENT in recorded.content
    assert waiting.manifest().phases[0].review.value == "approved"
    # The invalid one stays as the person left it, still listed.
    assert other_fb.read_bytes() == broken
    assert [e.path for e in store.unrecorded_edits()] == [rel_other]


# ---------------------------------------------------------------------- 3. broken YAML


def test_broken_frontmatter_is_reported_with_file_and_line_and_kept(
    waiting: Session, tmp_path: Path
) -> None:
    root = waiting.store.root
    feedback = root / FEEDBACK1
    original = feedback.read_bytes()
    expected = original.replace(b"\naction: pending\n", b"\naction: [oops\n")
    assert expected != original
    line = line_of(expected, "action: [oops")
    before_head = head(root)
    pattern = re.compile(rf"{re.escape(FEEDBACK1)}:(\d+): invalid YAML frontmatter: \S")

    # review: the editor saves the broken edit.
    broken = editor(tmp_path, "break", BREAK)
    result = mds(root, "review", REF, code=1, extra_env={"EDITOR": broken})
    assert feedback.read_bytes() == expected
    assert head(root) == before_head
    assert all(line.startswith("read    ") for line in result.stdout.splitlines())  # outputs
    assert result.stderr.startswith(f"Error: {FEEDBACK1}:"), result.stderr
    assert result.stderr.count("\n") == 1
    state = snapshot(root)

    outcomes = {"review": result.stderr}
    result = mds(root, "record", code=1)
    assert result.stderr.startswith(f"not recorded: {feedback}: {FEEDBACK1}:")
    assert result.stderr.endswith(
        "Error: 1 file(s) not recorded: they do not validate (fix and record again)\n"
    )
    outcomes["record"] = result.stderr
    assert snapshot(root) == state
    result = mds(root, "run", REF, code=1)
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {FEEDBACK1}:")
    outcomes["run"] = result.stderr
    assert snapshot(root) == state
    assert feedback.read_bytes() == expected  # nothing the person wrote was discarded

    # Fixed, the edit is recorded as the person's.
    edit_file(feedback, "\naction: [oops\n", "\naction: revise\n")
    result = mds(root, "record")
    assert result.stdout == f"recorded 1 file(s) in {head(root)[:10]}\n  modified  {feedback}\n"
    assert author(root) == PERSON
    assert trailers(root)["Mdsessions-Status"] == "revise"
    assert_clean(root)

    # Every command named the file and the line the person broke.
    lines = {cmd: [int(n) for n in pattern.findall(text)] for cmd, text in outcomes.items()}
    assert lines == {"review": [line], "record": [line], "run": [line]}, (
        f"the broken line is {line} (action: [oops); the errors say {outcomes}"
    )


def test_run_names_the_line_of_an_unclosed_flow_mapping(waiting: Session) -> None:
    root = waiting.store.root
    feedback = root / FEEDBACK1
    new = "approved: {true"
    broken = edit_file(feedback, "\napproved: false\n", f"\n{new}\n")
    state = snapshot(root)
    result = mds(root, "run", REF, code=1)
    line = line_of(broken, new)
    assert result.stderr.startswith(f"Error: {FEEDBACK1}:{line}: "), (
        f"expected line {line} ({new}): {result.stderr}"
    )
    assert feedback.read_bytes() == broken
    assert snapshot(root) == state


# ------------------------------------------------------------------------- 4. watch mode


def saved(path: Path, data: bytes) -> float:
    """Save ``data`` in place; returns the time just before the save began (epoch seconds)."""
    began = time.time()
    with path.open("wb") as fh:
        fh.write(data)
    return began


def first_commit(watcher: FeedbackWatcher, timeout: float = 5) -> FeedbackEvent:
    assert watcher.wait(lambda: any(e.commit for e in watcher.events), timeout), watcher.events
    return next(e for e in watcher.events if e.commit)


def test_watcher_records_a_save_within_a_second(waiting: Session) -> None:
    store = waiting.store
    feedback = store.root / FEEDBACK1
    data = feedback.read_bytes().replace(b"\napproved: false\n", b"\napproved: true\n")
    before = head(store.root)
    with FeedbackWatcher(store) as watcher:
        began = saved(feedback, data)
        event = first_commit(watcher)
    assert latency(event, began) < WATCH_LIMIT
    assert event.path == FEEDBACK1 and event.error is None
    assert event.commit == head(store.root)
    assert git(store.root, "rev-parse", f"{event.commit}^").strip() == before
    assert author(store.root) == PERSON
    assert trailers(store.root)["Mdsessions-Status"] == "approved"
    assert waiting.manifest().phases[0].review.value == "approved"
    assert_clean(store.root)


def test_watcher_records_an_editor_save_by_rename(waiting: Session) -> None:
    store = waiting.store
    feedback = store.root / FEEDBACK1
    data = feedback.read_bytes().replace(b"\naction: pending\n", b"\naction: revise\n")
    events: list[FeedbackEvent] = []
    with FeedbackWatcher(store, on_event=events.append, author=ANN) as watcher:
        temp = feedback.with_name(".user_feedback.md.swp")
        temp.write_bytes(data)
        began = time.time()
        temp.replace(feedback)
        event = first_commit(watcher)
    assert latency(event, began) < WATCH_LIMIT
    assert events == watcher.events
    assert event.commit == head(store.root)
    assert author(store.root) == ANN
    assert trailers(store.root)["Mdsessions-Status"] == "revise"
    assert_clean(store.root)


def test_watcher_reports_an_invalid_save_and_leaves_it(waiting: Session) -> None:
    store = waiting.store
    feedback = store.root / FEEDBACK1
    original = feedback.read_bytes()
    bad = original.replace(b"\naction: pending\n", b"\naction: sideways\n")
    before = head(store.root)
    with FeedbackWatcher(store) as watcher:
        saved(feedback, bad)
        assert watcher.wait(lambda: any(e.error for e in watcher.events), 5), watcher.events
        event = next(e for e in watcher.events if e.error)
        assert event.commit is None and event.path == FEEDBACK1
        assert event.error is not None
        assert f"{FEEDBACK1}:{line_of(bad, 'action:')}: field 'action'" in event.error
        assert feedback.read_bytes() == bad
        assert head(store.root) == before
        # The fix is recorded by the same watcher.
        began = saved(feedback, original.replace(b"\napproved: false\n", b"\napproved: true\n"))
        event = first_commit(watcher)
    assert latency(event, began) < WATCH_LIMIT
    assert event.commit == head(store.root)
    assert git(store.root, "rev-parse", "HEAD^").strip() == before


def test_watcher_ignores_the_runners_own_writes(waiting: Session, workflow: Path) -> None:
    store = waiting.store
    root = store.root
    with FeedbackWatcher(store) as watcher:
        began = saved(
            root / FEEDBACK1,
            (root / FEEDBACK1).read_bytes().replace(b"\napproved: false\n", b"\napproved: true\n"),
        )
        approved = first_commit(watcher)
        assert latency(approved, began) < WATCH_LIMIT
        # The runner writes phase 2 and its new user_feedback.md (in this process).
        after_review = head(root)
        result = Runner(store, workflow).run(waiting)
        assert result.waiting_for_review == 2
        assert (root / FEEDBACK2).is_file()
        assert [a.split("  ")[0] for a in authors_since(root, after_review)] == [RUNNER] * 3
        # A person's save after the runner's: once it is handled, so were the runner's writes.
        edit_file(root / FEEDBACK2, "## User Comments\n\n", f"## User Comments\n\n{COMMENT}\n")
        assert watcher.wait(lambda: len(watcher.events) >= 2, 5), watcher.events
        last = head(root)
    assert [(e.path, e.commit, e.error) for e in watcher.events] == [
        (FEEDBACK1, approved.commit, None),
        (FEEDBACK2, last, None),
    ]
    assert [a.split("  ")[0] for a in authors_since(root, after_review)] == [RUNNER] * 3 + [PERSON]
    assert_clean(root)


@pytest.mark.slow
def test_watch_command_records_an_edit(waiting: Session) -> None:
    root = waiting.store.root
    feedback = root / FEEDBACK1
    before = head(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "watch", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env(),
        # Ctrl-C as in a terminal, also when the suite itself runs as a background job
        # (whose children inherit SIGINT ignored, so the watcher would never see it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        assert "for feedback edits" in err.wait_for("watching", 30)
        data = feedback.read_bytes().replace(b"\napproved: false\n", b"\napproved: true\n")
        # The command announces itself just before its observer starts: save again (as a
        # person would) until the save is seen, within one deadline.
        deadline = time.monotonic() + 20
        while head(root) == before:
            assert time.monotonic() < deadline, "mdsessions watch did not record the save"
            saved(feedback, data)
            try:
                wait_until(lambda: head(root) != before, 1.5, "the watch command's commit")
            except AssertionError:
                continue
        sha = head(root)
        assert out.wait_for("recorded", 10) == f"recorded {feedback} in {sha[:10]}\n"
        assert author(root) == PERSON
        assert trailers(root)["Mdsessions-Status"] == "approved"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        assert "Interrupted" in err.rest()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert_clean(root)


# ------------------------------------------------------------------------- 5. run --wait


@pytest.mark.slow
def test_run_wait_records_the_review_and_goes_on(waiting: Session) -> None:
    root = waiting.store.root
    gate1 = head(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "run", REF, "--wait", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env(),
    )
    try:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        assert err.wait_for("for the review of phase 1", 30) == (
            "waiting up to 20 s for the review of phase 1…\n"
        )
        edit_file(root / FEEDBACK1, "\napproved: false\n", "\napproved: true\n")
        err.wait_for("for the review of phase 2", 30)
        edit_file(
            root / FEEDBACK2,
            "\naction: pending\n",
            "\naction: revise\n",
            ("## User Comments\n\n", f"## User Comments\n\n{COMMENT}\n"),
        )
        # The revision re-runs phase 2 (its agents get the comment), which waits again.
        err.wait_for("for the review of phase 2", 30)
        assert parse_independent(root / FEEDBACK2).metadata["retry_count"] == 1
        edit_file(root / FEEDBACK2, "\napproved: false\n", "\napproved: true\n")
        assert proc.wait(timeout=30) == 0, err.rest()
        stdout, stderr = out.rest(), err.rest()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert stdout.endswith(f"{REF}: ran phases 2, 2; session completed\n"), stdout
    assert f"review: {root / FEEDBACK1}\n" in stdout and f"review: {root / FEEDBACK2}\n" in stdout
    assert stderr.count("waiting up to 20 s for the review of phase 2…") == 2
    log = authors_since(root, gate1)
    assert [line for line in log if not line.startswith(RUNNER)] == [
        f"{PERSON}  user_feedback({REF}): phase 1 approved",
        f"{PERSON}  user_feedback({REF}): phase 2 revise",
        f"{PERSON}  user_feedback({REF}): phase 2 approved",
    ]
    assert waiting.status is SessionStatus.COMPLETED
    assert parse_independent(root / PHASE2_REL / "checkpoint.md").metadata["retry_count"] == 1
    critique = (root / PHASE2_REL / "critic.md").read_text(encoding="utf-8")
    assert "# Critique (retry 1)" in critique and f"Comments received: {COMMENT}\n" in critique
    assert_clean(root)


# ----------------------------------------------------------------------------- 6. inbox


def gate_at(store: Store, workflow: Path, project: str, sid: str, completed: str) -> Session:
    """A session whose phase 1 completed (awaiting review) at a given time, via the API."""
    session = store.create_session(project, sid, workflow=store.workflow(workflow), idea="x")
    session.save_agent_output(1, "writer", f"# {project}/{sid}\n")
    session.save_checkpoint(1, status="completed", started=completed, completed=completed)
    assert session.status is SessionStatus.AWAITING_REVIEW
    return session


def test_inbox_lists_every_waiting_phase_oldest_first(
    store: Store, workflow: Path, waiting: Session
) -> None:
    root = store.root
    gate_at(store, workflow, "zeta", "old", "2024-01-01T10:00:00Z")
    gate_at(store, workflow, "alpha", "mid", "2024-06-01T10:00:00Z")
    done = gate_at(store, workflow, "beta", "done", "2024-03-01T10:00:00Z")
    done.save_feedback(1, action="rejected", reviewer=PERSON)  # nothing to review any more
    newest = waiting.manifest().phases[0].completed
    assert newest is not None

    def item(project: str, sid: str, since: str) -> dict[str, object]:
        folder = f"projects/{project}/sessions/{sid}/phase_1_draft"
        return {
            "project": project,
            "session": sid,
            "phase": 1,
            "phase_name": "Draft",
            "waiting_since": since,
            "feedback_path": f"{folder}/user_feedback.md",
            "output_paths": [f"{folder}/writer.md"],
        }

    expected = [
        item("zeta", "old", "2024-01-01T10:00:00Z"),
        item("alpha", "mid", "2024-06-01T10:00:00Z"),
        item(PROJECT, SID, newest.strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]
    assert json.loads(mds(root, "inbox", "--json").stdout) == expected
    assert [i.session_id for i in store.inbox("alpha")] == ["mid"]

    # Text, from outside the store: absolute paths to edit and to read.
    text = mds(root, "inbox").stdout
    table, _, blocks = text.partition("\n\n")
    rows = [line.split() for line in table.splitlines()]
    assert rows[0] == ["session", "phase", "name", "waiting"]
    assert [r[:3] for r in rows[1:]] == [
        ["zeta/old", "1", "Draft"],
        ["alpha/mid", "1", "Draft"],
        [REF, "1", "Draft"],
    ]
    assert re.fullmatch(r"\d+ days", " ".join(rows[1][3:]))
    assert blocks == "\n".join(
        f"{e['project']}/{e['session']} phase 1:\n"
        f"  review  {root / str(e['feedback_path'])}\n"
        f"  read    {root / e['output_paths'][0]}\n"  # type: ignore[index]
        for e in expected
    )
    # From inside the store: paths relative to the current folder.
    inside = mds(root, "inbox", cwd=root).stdout
    assert f"  review  {expected[0]['feedback_path']}\n" in inside
    assert f"  read    {PHASE1_REL}/writer.md\n" in inside
    # After a review the phase leaves the inbox.
    store.session("zeta", "old").save_feedback(1, approved=True, reviewer=PERSON)
    assert [i.session_id for i in store.inbox()] == ["mid", SID]


# ---------------------------------------------- 7. a person's edit of a file the runner writes


def test_run_stops_at_a_persons_edit_of_the_checkpoint(waiting: Session) -> None:
    root = waiting.store.root
    waiting.save_feedback(1, action="revise", comments=COMMENT, reviewer=PERSON)
    checkpoint = root / PHASE1_REL / "checkpoint.md"
    mine = checkpoint.read_bytes() + b"A person's note, not recorded yet.\n"
    checkpoint.write_bytes(mine)
    state = snapshot(root)
    result = mds(root, "run", REF, code=1)
    assert result.stderr == (
        f"Error: {PHASE1_REL}/checkpoint.md has edits that are not recorded yet; record them "
        "(mdsessions record) or discard them (git restore) before this save\n"
    )
    assert checkpoint.read_bytes() == mine
    assert snapshot(root) == state
    # Recorded, the edit is the person's and the run can go on.
    mds(root, "record", f"{PHASE1_REL}/checkpoint.md")
    assert author(root) == PERSON
    assert b"A person's note" in git(root, "show", f"HEAD:{PHASE1_REL}/checkpoint.md").encode()
    assert Runner(waiting.store).run(waiting).waiting_for_review == 1
    assert_clean(root)


def test_run_stops_at_a_persons_edit_of_the_manifest(waiting: Session) -> None:
    root = waiting.store.root
    manifest = root / MANIFEST_REL
    mine = edit_file(manifest, "\nmode: all\n", "\nmode: all  # person: keep mvp out of this\n")
    # ... while the reviewer's decision is saved too: run records feedback first.
    edit_file(root / FEEDBACK1, "\napproved: false\n", "\napproved: true\n")
    before = head(root)
    result = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "run", REF],
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=False,
    )
    on_disk = manifest.read_bytes()
    committed = git(root, "log", "-p", f"{before}..HEAD", "--", MANIFEST_REL)
    assert (
        result.returncode == 1
        and result.stderr.startswith("Error: ")
        and (MANIFEST_REL in result.stderr)
    ), (
        "run went on over the person's unrecorded manifest edit: "
        f"exit {result.returncode}, stdout {result.stdout!r}, stderr {result.stderr!r}; "
        f"their line {'is' if b'# person:' in on_disk else 'is NOT'} on disk, "
        f"{'is' if '# person:' in committed else 'is NOT'} in any commit"
    )
    assert on_disk == mine
    assert head(root) == before


def test_watch_latency_summary() -> None:
    """Print the latencies measured above (min/median/max); runs last in file order."""
    if WATCH_LATENCIES:
        print(
            f"watch latency over {len(WATCH_LATENCIES)} saves: "
            f"min {min(WATCH_LATENCIES) * 1000:.1f} ms, "
            f"median {statistics.median(WATCH_LATENCIES) * 1000:.1f} ms, "
            f"max {max(WATCH_LATENCIES) * 1000:.1f} ms"
        )
        assert max(WATCH_LATENCIES) < WATCH_LIMIT
