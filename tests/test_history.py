"""Tests for mdsessions.history: versions, diff, restore, fork, verify, maintenance, backups.

Real repositories in ``tmp_path`` only; git is never mocked. Remotes are in test_history_remotes.py.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from helpers import (
    PERSON,
    REPO_ROOT,
    assert_clean,
    commit_count,
    git,
    head,
    snapshot,
    subject,
    trailers,
    tree_digest,
)

from mdsessions import (
    AgentContext,
    AgentOutput,
    Checkpoint,
    PhaseStatus,
    ReviewState,
    Runner,
    Session,
    SessionExistsError,
    SessionStatus,
    Store,
    StoreError,
    UnrecordedEditError,
    UserFeedback,
    dumps,
    history,
    idea_validation,
    loads,
)
from mdsessions.cli import cli
from mdsessions.cli.history import register
from mdsessions.store.links import store_contexts

MANIFEST = "session_manifest.md"
P, S = "project-123", "session-456"
IDEA = "A leaderboard for small gyms: members compete on streaks, not weights."
AGENT_NAMES = [name for phase in idea_validation().phases for name in phase.agents]


# ------------------------------------------------------------------------------ helpers


class Agents:
    """Plain Python agents for idea_validation(); they count their calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def make(self, name: str) -> Callable[[AgentContext], str]:
        def agent(ctx: AgentContext) -> str:
            self.calls[name] += 1
            earlier = ",".join(f"{n}" for n in sorted(ctx.previous_outputs))
            return (
                f"# {name} for {ctx.session_id}\n\n{ctx.idea}\n\n"
                f"phase {ctx.phase_number}, retry {ctx.retry_count}, earlier {earlier or '-'}\n"
                "---\n{{ not a template }}\n```\ncode\n```\n"
            )

        return agent

    def all(self) -> dict[str, Callable[[AgentContext], str]]:
        return {name: self.make(name) for name in AGENT_NAMES}


@pytest.fixture
def agents() -> Agents:
    return Agents()


@pytest.fixture
def runner(store: Store, agents: Agents) -> Runner:
    return Runner(store, agents=agents.all())


def finish(runner: Runner, session: Session) -> None:
    """Run a session to the end, approving every review gate."""
    for _ in range(20):
        result = runner.run(session)
        if result.status is SessionStatus.COMPLETED:
            return
        assert result.waiting_for_review is not None, result.message
        session.save_feedback(result.waiting_for_review, approved=True, author=PERSON)
    raise AssertionError("the session did not complete")


def commit_of(store: Store, text: str) -> str:
    """The newest commit whose subject contains ``text``."""
    sha = git(store.root, "log", "-1", "--format=%H", "--fixed-strings", f"--grep={text}")
    assert sha.strip(), text
    return sha.strip()


@pytest.fixture
def run_session(store: Store, runner: Runner) -> Session:
    """A session run through phase 3, approved, then phase 6 waiting for review."""
    result = runner.start(P, S, idea=IDEA)
    session = result.session
    session.save_feedback(1, approved=True, author=PERSON)
    result = runner.run(session)
    assert result.waiting_for_review == 3
    session.save_feedback(3, approved=True, author=PERSON)
    result = runner.run(session)
    assert result.waiting_for_review == 6
    return session


def invoke(*argv: str, input: str | None = None) -> Result:
    if "versions" not in cli.commands:
        register(cli)
    return CliRunner().invoke(cli, list(argv), input=input, catch_exceptions=False)


def session_files(store: Store, session: Session, rev: str) -> dict[str, bytes]:
    out = {}
    for rel, sha in store.git.list_tree(store.git.resolve(rev), session.rel).items():
        out[rel] = store.git.read_object(sha)[1]
    return out


# ------------------------------------------------------------------------------ versions


def test_versions_lists_the_session_history_newest_first(
    store: Store, run_session: Session
) -> None:
    page = history.versions(run_session, limit=None)
    expected = git(store.root, "log", "--format=%H", "--", run_session.rel).split()
    assert [v.commit for v in page.versions] == expected
    assert page.next_offset is None
    newest = page.versions[0]
    assert newest.kind == "checkpoint" and newest.phase == 6 and newest.status == "completed"
    assert newest.session_status == "awaiting_review"
    assert (newest.project, newest.session) == (P, S)
    assert newest.author == "mdsessions <mdsessions@localhost>"
    assert newest.time.endswith("Z")
    oldest = page.versions[-1]
    assert (
        oldest.kind == "session"
        and oldest.subject == f"session({P}/{S}): created (idea_validation, mvp)"
    )
    outputs = [v for v in page.versions if v.kind == "agent_output"]
    assert {v.agent for v in outputs} == {
        "concept_expansion",
        "market_intelligence",
        "competitor_analysis",
        "niche_selection",
        "risk_assessment",
    }


def test_versions_paginate_exactly_with_and_without_filters(
    store: Store, run_session: Session
) -> None:
    everything = [v.commit for v in history.versions(run_session, limit=None).versions]
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = history.versions(run_session, limit=4, offset=offset)
        assert len(page.versions) <= 4
        seen += [v.commit for v in page.versions]
        offset = page.next_offset
    assert seen == everything
    checkpoints = [
        v.commit for v in history.versions(run_session, kind="checkpoint", limit=None).versions
    ]
    assert len(checkpoints) == 8  # in_progress + completed, phases 1, 2, 3 and 6
    paged = []
    offset = 0
    while offset is not None:
        page = history.versions(run_session, kind="checkpoint", limit=3, offset=offset)
        assert all(v.kind == "checkpoint" for v in page.versions)
        paged += [v.commit for v in page.versions]
        offset = page.next_offset
    assert paged == checkpoints
    past_end = history.versions(run_session, limit=5, offset=len(everything))
    assert past_end.versions == () and past_end.next_offset is None


def test_versions_filters_by_phase_kind_author_and_time(store: Store, runner: Runner) -> None:
    session = runner.start(P, S, idea=IDEA).session
    time.sleep(1.1)  # git times are whole seconds
    middle = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    time.sleep(1.1)
    session.save_feedback(1, approved=True, author="Ann Reviewer <ann@example.com>")
    runner.run(session)
    phase2 = history.versions(session, phase=2, limit=None).versions
    assert phase2 and all(v.phase == 2 for v in phase2)
    assert {v.kind for v in phase2} == {"checkpoint", "agent_output"}
    both = history.versions(session, phase=2, kind="checkpoint", limit=None).versions
    assert [v.status for v in both] == ["completed", "in_progress"]
    several = history.versions(session, kind=["user_feedback", "session"], limit=None).versions
    assert [v.kind for v in several] == ["user_feedback", "session"]
    ann = history.versions(session, author="ann reviewer", limit=None).versions
    assert [v.kind for v in ann] == ["user_feedback"] and ann[
        0
    ].author == "Ann Reviewer <ann@example.com>"
    assert history.versions(session, author="a.n", limit=None).versions == ()  # literal text
    later = history.versions(session, since=middle, limit=None).versions
    earlier = history.versions(
        session, until=middle.isoformat().replace("+00:00", "Z"), limit=None
    ).versions
    assert later and earlier
    assert all(v.time >= middle.strftime("%Y-%m-%dT%H:%M:%SZ") for v in later)
    assert all(v.time <= middle.strftime("%Y-%m-%dT%H:%M:%SZ") for v in earlier)
    assert len(later) + len(earlier) == len(history.versions(session, limit=None).versions)
    assert history.versions(session, since="2999-01-01", limit=None).versions == ()
    with pytest.raises(ValueError, match="ISO-8601"):
        history.versions(session, since="yesterday-ish")
    with pytest.raises(ValueError, match="invalid kind"):
        history.versions(session, kind="check point")


def test_versions_of_a_document_and_a_phase_folder(store: Store, run_session: Session) -> None:
    rel = "phase_1_concept/user_feedback.md"
    doc = history.versions(run_session, rel, limit=None).versions
    expected = git(store.root, "log", "--format=%H", "--", f"{run_session.rel}/{rel}").split()
    assert [v.commit for v in doc] == expected
    assert [v.kind for v in doc] == ["user_feedback", "checkpoint"]
    folder = history.versions(run_session, f"{run_session.rel}/phase_2_market_research", limit=None)
    assert folder.path == f"{run_session.rel}/phase_2_market_research"
    assert {v.phase for v in folder.versions} == {2}
    with pytest.raises(StoreError, match="not a path inside"):
        history.versions(run_session, "../other")


def test_read_version_matches_git_show(store: Store, run_session: Session) -> None:
    rel = f"{run_session.rel}/phase_1_concept/user_feedback.md"
    pending = commit_of(store, "phase 1 Concept Expansion completed")
    data = history.read_version(run_session, "phase_1_concept/user_feedback.md", pending)
    shown = subprocess.run(
        ["git", "show", f"{pending}:{rel}"], cwd=store.root, capture_output=True, check=True
    ).stdout
    assert data == shown
    old = history.load_version(run_session, rel, pending[:10])
    assert isinstance(old, UserFeedback) and old.approved is False
    now = history.load_version(run_session, rel)
    assert isinstance(now, UserFeedback) and now.approved is True
    first = history.versions(run_session, kind="session").versions[0].commit
    with pytest.raises(FileNotFoundError, match="does not exist at"):
        history.read_version(run_session, "phase_1_concept/checkpoint.md", first)
    with pytest.raises(StoreError, match="does not name a commit"):
        history.read_version(run_session, "session_manifest.md", "no-such-rev")


# ------------------------------------------------------------------------------ diff


def test_diff_summarises_files_phases_and_status(store: Store, run_session: Session) -> None:
    created = commit_of(store, "): created (")
    waiting = commit_of(store, "phase 1 Concept Expansion completed")
    result = history.diff(run_session, created, waiting)
    cut = len(run_session.rel) + 1
    assert {f.path[cut:]: f.change for f in result.files} == {
        "session_manifest.md": "modified",
        "phase_1_concept/checkpoint.md": "added",
        "phase_1_concept/concept_expansion.md": "added",
        "phase_1_concept/prompts/concept_expansion.md": "added",  # the prompt it was given
        "phase_1_concept/user_feedback.md": "added",
    }
    assert (result.status_before, result.status_after) == ("created", "awaiting_review")
    assert (result.current_phase_before, result.current_phase_after) == (1, 1)
    [phase1] = result.phases
    assert (phase1.phase, phase1.name) == (1, "Concept Expansion")
    assert (phase1.status_before, phase1.status_after) == ("pending", "completed")
    assert (phase1.review_before, phase1.review_after) == ("required", "pending")
    assert [f.agent for f in result.agents] == ["concept_expansion"]
    assert [f.path[cut:] for f in result.feedback] == ["phase_1_concept/user_feedback.md"]
    added = next(f for f in result.files if f.agent)
    assert added.insertions > 5 and added.deletions == 0 and added.phase == 1
    expected = subprocess.run(
        ["git", "diff", created, waiting, "--", run_session.rel],
        cwd=store.root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert result.patch == expected
    assert history.diff(run_session, waiting, waiting).files == ()
    summary = history.diff(run_session, created, patch=False)
    assert summary.patch == ""
    numbers = [p.phase for p in summary.phases]
    assert numbers == [1, 2, 3, 6]
    assert summary.to_json()["status"] == {"before": "created", "after": "awaiting_review"}


def test_diff_reports_a_revision_and_deleted_files(store: Store, runner: Runner) -> None:
    session = runner.start(P, S, idea=IDEA).session
    before = head(store.root)
    session.save_feedback(1, action="revise", comments="More on students", author=PERSON)
    runner.run(session)
    result = history.diff(session, before)
    phase1 = next(p for p in result.phases if p.phase == 1)
    assert (phase1.review_before, phase1.review_after) == ("pending", "pending")
    changed = {f.path.rsplit("/", 1)[1]: f.change for f in phase1.files}
    assert changed["concept_expansion.md"] == "modified"
    assert changed["user_feedback.md"] == "modified"
    history.restore(session, before, phase=1)
    created = commit_of(store, "): created (")
    gone = history.diff(session, before, "HEAD")
    # Phase 1 is exactly as at `before`; the manifest differs at most in its `updated` time.
    assert [f.path for f in gone.files] in ([], [session.manifest_rel])
    assert gone.phases == () and gone.status_before == gone.status_after
    back = history.diff(session, before, created)
    assert {f.change for f in back.files if f.phase == 1} == {"deleted"}


# ------------------------------------------------------------------------------ restore


def test_restore_whole_session_is_a_new_commit_and_the_runner_continues(
    store: Store, run_session: Session, runner: Runner, agents: Agents
) -> None:
    target = commit_of(
        store, "user_feedback(project-123/session-456): phase 1 Concept Expansion approved"
    )
    old_head = head(store.root)
    count = commit_count(store.root)
    result = history.restore(run_session, target[:9])
    assert result.commit == head(store.root)
    assert commit_count(store.root) == count + 1
    assert git(store.root, "rev-parse", "HEAD^").strip() == old_head  # never rewritten
    assert subject(store.root) == f"restore({P}/{S}): session to {target[:8]}"
    tr = trailers(store.root)
    assert tr["Mdsessions-Kind"] == "restore"
    assert tr["Mdsessions-Project"] == P and tr["Mdsessions-Session"] == S
    assert tr["Mdsessions-Restored-From"] == target
    assert tr["Mdsessions-Session-Status"] == "in_progress"
    assert "Mdsessions-Phase" not in tr
    assert git(store.root, "diff", target, "HEAD", "--", run_session.rel) == ""
    assert result.deleted and all(
        "phase_2" in p or "phase_3" in p or "phase_6" in p for p in result.deleted
    )
    assert run_session.validate() == []
    assert history.verify(store).ok
    assert_clean(store.root)
    calls = Counter(agents.calls)
    finish(runner, run_session)
    assert run_session.status is SessionStatus.COMPLETED
    ran = agents.calls - calls
    assert ran["concept_expansion"] == 0 and ran["market_intelligence"] == 1
    assert ran["final_synthesis"] == 1
    assert_clean(store.root)


def test_restore_one_phase_resets_it_and_the_later_phases(
    store: Store, run_session: Session, runner: Runner, agents: Agents
) -> None:
    finish(runner, run_session)
    assert run_session.status is SessionStatus.COMPLETED
    phase1_now = session_files(store, run_session, "HEAD")
    target = commit_of(store, "phase 2 Market Research in_progress")
    result = history.restore(run_session, target, phase=2)
    assert result.reset_phases == (2, 3, 6, 7)
    assert subject(store.root) == f"restore({P}/{S}): phase 2 to {target[:8]}"
    tr = trailers(store.root)
    assert tr["Mdsessions-Kind"] == "restore" and tr["Mdsessions-Phase"] == "2"
    manifest = run_session.manifest()
    assert manifest.status is SessionStatus.IN_PROGRESS and manifest.current_phase == 2
    rows = {p.number: p for p in manifest.phases}
    assert rows[1].status is PhaseStatus.COMPLETED and rows[1].review is ReviewState.APPROVED
    assert rows[2].status is PhaseStatus.IN_PROGRESS
    assert all(rows[n].status is PhaseStatus.PENDING for n in (3, 6, 7))
    assert manifest.totals.tokens == sum(p.tokens for p in manifest.phases)
    now = session_files(store, run_session, "HEAD")
    phase1 = {k: v for k, v in phase1_now.items() if "/phase_1_" in k}
    assert {k: v for k, v in now.items() if "/phase_1_" in k} == phase1  # untouched
    at_target = session_files(store, run_session, target)
    for rel in set(now) | set(at_target):
        if "/phase_" in rel and "/phase_1_" not in rel:
            assert now.get(rel) == at_target.get(rel), rel
    assert run_session.validate() == []
    assert_clean(store.root)
    calls = Counter(agents.calls)
    finish(runner, run_session)
    ran = agents.calls - calls
    assert ran["concept_expansion"] == 0
    assert ran["market_intelligence"] == 1 and ran["final_synthesis"] == 1
    assert run_session.status is SessionStatus.COMPLETED
    assert history.verify(store).ok


def test_restore_phase_to_a_waiting_review_and_back_forward(
    store: Store, run_session: Session, runner: Runner
) -> None:
    waiting = commit_of(store, "phase 3 Niche Selection completed, awaiting review")
    latest = head(store.root)
    history.restore(run_session, waiting, phase=3)
    manifest = run_session.manifest()
    assert manifest.status is SessionStatus.AWAITING_REVIEW and manifest.current_phase == 3
    assert run_session.phase_entry(3).review is ReviewState.PENDING
    assert run_session.phase_entry(6).status is PhaseStatus.PENDING
    assert runner.run(run_session).waiting_for_review == 3
    # Undo the restore by restoring phase 3 forward to the newest state.
    history.restore(run_session, latest, phase=3)
    changed = git(store.root, "diff", "--name-only", latest, "HEAD", "--", run_session.rel)
    assert changed.split() in ([], [run_session.manifest_rel])  # at most its `updated` time
    now = run_session.manifest().model_copy(update={"updated": None})
    then = history.load_version(run_session, MANIFEST, latest)
    assert now == then.model_copy(update={"updated": None})
    assert run_session.manifest().status is SessionStatus.AWAITING_REVIEW
    assert run_session.manifest().current_phase == 6
    assert run_session.validate() == []


def test_restore_to_the_current_state_changes_nothing(store: Store, run_session: Session) -> None:
    before = snapshot(store.root)
    result = history.restore(run_session, "HEAD")
    assert result.commit is None and result.written == () and result.deleted == ()
    result = history.restore(run_session, "HEAD", phase=2)
    assert result.commit is None and result.reset_phases == (2,)
    assert snapshot(store.root) == before


def test_restore_before_the_session_existed_is_refused(store: Store, run_session: Session) -> None:
    init = git(store.root, "rev-list", "--max-parents=0", "HEAD").strip()
    before = snapshot(store.root)
    with pytest.raises(StoreError, match="did not exist at"):
        history.restore(run_session, init)
    assert snapshot(store.root) == before


def test_restore_refuses_unrecorded_edits_and_force_overwrites_them(
    store: Store, run_session: Session, runner: Runner
) -> None:
    target = commit_of(store, "phase 3 Niche Selection completed, awaiting review")
    edited = store.root / run_session.phase_rel(1) / "concept_expansion.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\nmy note\n", encoding="utf-8")
    stray = store.root / run_session.rel / "notes.txt"
    stray.write_text("scratch\n", encoding="utf-8")
    before = snapshot(store.root)
    with pytest.raises(UnrecordedEditError) as info:
        history.restore(run_session, target, phase=3)
    assert "concept_expansion.md (modified)" in str(info.value)
    assert "notes.txt (added)" in str(info.value)
    assert "--force" in str(info.value) and "Nothing was changed" in str(info.value)
    assert snapshot(store.root) == before
    result = history.restore(run_session, target, phase=3, force=True)
    assert result.commit is not None
    assert set(result.overwritten) == {
        edited.relative_to(store.root).as_posix(),
        stray.relative_to(store.root).as_posix(),
    }
    body = git(store.root, "log", "-1", "--format=%B")
    assert "Overwrote unrecorded edits (force)" in body and "notes.txt" in body
    assert "my note" not in edited.read_text(encoding="utf-8")
    assert not stray.exists()
    assert_clean(store.root)
    assert run_session.validate() == []
    assert runner.run(run_session).waiting_for_review == 3


def test_forced_restore_with_nothing_to_restore_still_discards_the_edits(
    store: Store, run_session: Session
) -> None:
    edited = store.root / run_session.manifest_rel
    original = edited.read_bytes()
    edited.write_bytes(original + b"\nextra\n")
    count = commit_count(store.root)
    result = history.restore(run_session, "HEAD", force=True)
    assert result.commit is None and result.overwritten == (run_session.manifest_rel,)
    assert commit_count(store.root) == count
    assert edited.read_bytes() == original
    assert_clean(store.root)


# ------------------------------------------------------------------------------ fork


def test_fork_copies_the_state_with_new_ids_and_both_run_independently(
    store: Store, runner: Runner, agents: Agents
) -> None:
    original = runner.start(P, S, idea=IDEA).session
    original.save_feedback(1, approved=True, author=PERSON)
    runner.run(original)  # phases 2, 3; waiting at 3
    at = commit_of(store, "phase 2 Market Research completed")
    before = {rel: data for rel, data in session_files(store, original, "HEAD").items()}
    digest_before = tree_digest(store.root / original.rel)
    result = history.fork(original, "session-789", at=at[:10], author=PERSON)
    fork = result.session
    assert fork.ref == f"{P}/session-789"
    assert result.at == at and result.commit == head(store.root)
    assert subject(store.root) == f"fork({P}/session-789): from {P}/{S} at {at[:8]}"
    tr = trailers(store.root)
    assert tr["Mdsessions-Kind"] == "fork" and tr["Mdsessions-Session"] == "session-789"
    assert tr["Mdsessions-Forked-From"] == f"{P}/{S}@{at}"
    changed = git(store.root, "show", "--name-only", "--format=", "HEAD").split()
    assert changed and all(p.startswith(fork.rel + "/") for p in changed)
    assert tree_digest(store.root / original.rel) == digest_before
    assert session_files(store, original, "HEAD") == before
    manifest = fork.manifest()
    assert manifest.forked_from is not None
    assert (manifest.forked_from.session, manifest.forked_from.commit) == (f"{P}/{S}", at)
    assert manifest.current_phase == 3 and manifest.status is SessionStatus.IN_PROGRESS
    source = session_files(store, original, at)
    for rel, data in source.items():
        new = (store.root / fork.rel / rel[len(original.rel) + 1 :]).read_bytes()
        old_doc, new_doc = loads(data.decode()), loads(new.decode())
        assert (new_doc.project_id, new_doc.session_id) == (P, "session-789")
        new_rel = f"{fork.rel}/{rel[len(original.rel) + 1 :]}"
        context = store_contexts(store, {new_rel: new_doc}).get(new_rel, {})  # the links
        if isinstance(new_doc, Checkpoint) and new_doc.next_phase:
            context["next_name"] = manifest.phase(new_doc.next_phase).name
        assert new.decode() == dumps(new_doc, **context)  # canonical bytes
        if isinstance(old_doc, AgentOutput):
            assert isinstance(new_doc, AgentOutput)
            assert new_doc.content == old_doc.content and old_doc.content.encode() in new
        if isinstance(old_doc, Checkpoint):
            assert new_doc.model_dump(exclude={"session_id"}) == old_doc.model_dump(
                exclude={"session_id"}
            )
    assert fork.validate() == [] and original.validate() == []
    assert_clean(store.root)
    calls = Counter(agents.calls)
    finish(runner, fork)
    ran = agents.calls - calls
    assert ran["concept_expansion"] == 0 and ran["market_intelligence"] == 0
    assert ran["niche_selection"] == 1 and ran["final_synthesis"] == 1
    assert original.manifest().status is SessionStatus.AWAITING_REVIEW
    finish(runner, original)
    assert fork.status is SessionStatus.COMPLETED and original.status is SessionStatus.COMPLETED
    out = fork.output(7, "final_synthesis")
    assert out is not None and "for session-789" in out.content
    assert history.verify(store).ok
    assert_clean(store.root)


def test_fork_into_another_project_and_refusals(store: Store, run_session: Session) -> None:
    result = history.fork(run_session, "copy", project="project-999")
    assert result.session.ref == "project-999/copy"
    assert result.session.manifest().project_id == "project-999"
    assert result.session.validate() == []
    before = snapshot(store.root)
    with pytest.raises(SessionExistsError):
        history.fork(run_session, "copy", project="project-999")
    with pytest.raises(SessionExistsError):
        history.fork(run_session, S)
    init = git(store.root, "rev-list", "--max-parents=0", "HEAD").strip()
    with pytest.raises(LookupError, match="did not exist"):
        history.fork(run_session, "too-early", at=init)
    with pytest.raises(ValueError, match="invalid session id"):
        history.fork(run_session, "../evil")
    assert snapshot(store.root) == before


# ------------------------------------------------------------------------------ verify


def test_verify_reports_documents_trailers_and_fsck(store: Store, run_session: Session) -> None:
    report = history.verify(store)
    assert report.ok and report.sessions == 1 and report.commits == commit_count(store.root)
    other = store.create_session(P, "other")
    # A commit whose trailers name one session but that touches another.
    target = store.root / other.manifest_rel
    target.write_text(target.read_text(encoding="utf-8").replace("tags: []", "tags:\n- x"))
    git(store.root, "add", "-A")
    git(
        store.root, "commit", "-q", "-m",
        f"edit\n\nMdsessions-Kind: edit\nMdsessions-Project: {P}\nMdsessions-Session: {S}",
    )  # fmt: skip
    # A broken document.
    checkpoint = store.root / run_session.phase_rel(1) / "checkpoint.md"
    checkpoint.write_text(checkpoint.read_text().replace("status: completed", "status: done", 1))
    git(store.root, "commit", "-q", "-am", "break it")
    report = history.verify(store)
    reasons = [str(p) for p in report.problems]
    assert any(
        p.path.startswith("commit ")
        and f"name session {P}/{S}" in p.reason
        and other.manifest_rel in p.reason
        for p in report.problems
    ), reasons
    assert any(p.path == checkpoint.relative_to(store.root).as_posix() for p in report.problems)
    # A missing object is git fsck's to find.
    blob = git(store.root, "rev-parse", f"HEAD:{run_session.manifest_rel}").strip()
    (store.root / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    store.close()
    report = history.verify(store)
    assert any(p.path == "git fsck" and blob in p.reason for p in report.problems), [
        str(p) for p in report.problems
    ]


def test_verify_flags_a_fork_origin_that_does_not_exist(store: Store, run_session: Session) -> None:
    fork = history.fork(run_session, "forked").session
    path = store.root / fork.manifest_rel
    manifest = fork.manifest()
    assert manifest.forked_from is not None
    path.write_text(path.read_text().replace(manifest.forked_from.commit, "f" * 40))
    store.record_edits([fork.manifest_rel], author=PERSON)
    [problem] = history.verify(store).problems
    assert problem.path == fork.manifest_rel and "not in the store" in problem.reason


# ------------------------------------------------------------------------------ maintenance


def test_maintenance_packs_objects_and_refs_and_writes_the_commit_graph(
    store: Store, run_session: Session, runner: Runner
) -> None:
    loose = int(git(store.root, "count-objects").split()[0])
    assert loose > 0
    report = history.maintenance(store)
    assert [s for s, _ in report.steps] == ["pack-refs", "repack", "commit-graph"]
    assert report.loose_before == loose and report.loose_after == 0 and report.packs >= 1
    graph = store.root / ".git" / "objects" / "info"
    assert (graph / "commit-graph").exists() or (graph / "commit-graphs").exists()
    packed = (store.root / ".git" / "packed-refs").read_text()
    assert "refs/heads/main" in packed
    assert not (store.root / ".git" / "refs" / "heads" / "main").exists()
    # The writer keeps working: its loose ref now overrides the packed one.
    before = head(store.root)
    finish(runner, run_session)
    assert head(store.root) != before
    assert (store.root / ".git" / "refs" / "heads" / "main").exists()
    assert git(store.root, "rev-parse", "main").strip() == store.git.head()
    assert history.versions(run_session, limit=1).versions[0].commit == store.git.head()
    assert history.verify(store).ok
    assert_clean(store.root)
    assert run_session.status is SessionStatus.COMPLETED


def test_maintenance_is_safe_while_another_writer_commits(store: Store) -> None:
    session = store.create_session(P, S, idea=IDEA)
    errors: list[BaseException] = []
    done = threading.Event()

    def maintain() -> None:
        other = Store(store.root)
        try:
            while not done.is_set():
                history.maintenance(other, consolidate_at=3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            other.close()

    thread = threading.Thread(target=maintain)
    thread.start()
    try:
        for i in range(40):
            session.save_agent_output(1, f"agent-{i}", f"output {i}\n")
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert len(history.versions(session, kind="agent_output", limit=None).versions) == 40
    assert all(session.output(1, f"agent-{i}") is not None for i in range(40))
    history.maintenance(store)
    assert history.verify(store).ok
    assert_clean(store.root)


# ------------------------------------------------------------------------------ backups


def test_backup_create_verify_and_restore_into_a_new_folder(
    store: Store, run_session: Session, tmp_path: Path, runner: Runner
) -> None:
    history.fork(run_session, "second")
    git(store.root, "tag", "v1")
    seen: list[tuple[str, int, int | None]] = []
    backup = history.create_backup(store, tmp_path / "backups", progress=lambda *a: seen.append(a))
    assert backup.path.parent == tmp_path / "backups" and backup.path.suffix == ".bundle"
    assert backup.head == head(store.root)[:12] and backup.size == backup.path.stat().st_size
    assert ("Counting objects", 1, None) in seen or any(
        stage == "Counting objects" and total for stage, _, total in seen
    ), seen
    assert not list((tmp_path / "backups").glob(".*"))  # no temp file left
    git(store.root, "bundle", "verify", str(backup.path))
    restored = history.restore_backup(backup.path, tmp_path / "restored")
    dest = tmp_path / "restored"
    assert restored.problems == () and restored.head == head(store.root)
    assert restored.refs["refs/heads/main"] == head(store.root)
    assert "refs/tags/v1" in restored.refs
    fmt = "--format=%H %an <%ae> %at %s%n%b"
    assert git(dest, "log", fmt) == git(store.root, "log", fmt)
    assert git(dest, "for-each-ref") == git(store.root, "for-each-ref")
    assert git(dest, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(dest, "remote").strip() == ""
    assert tree_digest(dest) == tree_digest(store.root)
    assert_clean(dest)
    with Store.open(dest) as copy:
        assert history.verify(copy).ok
        session = copy.find_session(f"{P}/{S}")
        finish(Runner(copy, agents=Agents().all()), session)
        assert_clean(dest)
    assert run_session.status is SessionStatus.AWAITING_REVIEW  # the original is untouched
    with pytest.raises(StoreError, match="not empty"):
        history.restore_backup(backup.path, dest)
    (tmp_path / "bad.bundle").write_bytes(b"not a bundle\n")
    with pytest.raises(StoreError):
        history.restore_backup(tmp_path / "bad.bundle", tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_backup_default_folder_is_ignored_by_git(store: Store, run_session: Session) -> None:
    first = history.create_backup(store)
    second = history.create_backup(store)
    assert first.path.parent == store.root / ".mdsessions" / "backups"
    assert first.path != second.path
    assert_clean(store.root)
    listed = history.list_backups(history.backup_dir(store))
    assert {b.path for b in listed} == {first.path, second.path}


def test_prune_backups_by_count_and_by_age(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "b"
    made = history.create_backup(store, folder)
    now = _dt.datetime(2024, 11, 24, 12, 0, tzinfo=_dt.timezone.utc)
    names = []
    for days in (1, 5, 10, 40):
        when = now - _dt.timedelta(days=days)
        name = f"store-{when.strftime('%Y%m%dT%H%M%SZ')}-{'a' * 12}.bundle"
        shutil.copy(made.path, folder / name)
        names.append(name)
    made.path.unlink()
    (folder / "notes.txt").write_text("not a bundle")
    listed = history.list_backups(folder)
    assert [b.path.name for b in listed] == names  # newest first
    assert listed[1].created == now - _dt.timedelta(days=5)
    removed = history.prune_backups(folder, older_than=7, now=now)
    assert sorted(b.path.name for b in removed) == sorted(names[2:])
    removed = history.prune_backups(folder, keep=1, now=now)
    assert [b.path.name for b in removed] == [names[1]]
    assert [b.path.name for b in history.list_backups(folder)] == [names[0]]
    assert (folder / "notes.txt").exists()
    with pytest.raises(ValueError):
        history.prune_backups(folder)
    assert history.list_backups(tmp_path / "missing") == []


# ------------------------------------------------------------------------------ CLI


def test_cli_versions_diff_restore_fork_verify(store: Store, run_session: Session) -> None:
    root = str(store.root)
    result = invoke("versions", S, "--store", root, "--kind", "checkpoint", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "checkpoint" in result.output and "more: --offset 3" in result.stderr
    result = invoke("versions", f"{P}/{S}", "1", "feedback", "--store", root, "--json")
    data = json.loads(result.stdout)
    assert data["path"].endswith("phase_1_concept/user_feedback.md")
    assert [v["kind"] for v in data["versions"]] == ["user_feedback", "checkpoint"]
    result = invoke("versions", S, "2", "--phase", "2", "--store", root, "--json")
    assert {v["phase"] for v in json.loads(result.stdout)["versions"]} == {2}
    created = commit_of(store, "): created (")
    result = invoke("diff", S, created, "--store", root)
    assert result.stdout.startswith("diff --git a/")
    result = invoke("diff", S, created, "--stat", "--store", root)
    assert "session  created -> awaiting_review" in result.stdout
    assert "phase 1 Concept Expansion: pending -> completed" in result.stdout
    result = invoke("diff", S, created, "HEAD", "--json", "--store", root)
    assert json.loads(result.stdout)["phases"][0]["status"] == {
        "before": "pending",
        "after": "completed",
    }
    target = commit_of(store, "phase 3 Niche Selection completed, awaiting review")
    result = invoke("restore", S, target, "--phase", "3", "--store", root)
    assert result.exit_code == 0, result.output
    assert (
        f"restored phase 3 to {target[:8]}" in result.stdout
        and "phases 3, 6, 7 reset" in result.stdout
    )
    (store.root / run_session.manifest_rel).write_text("broken\n")
    result = CliRunner().invoke(cli, ["restore", S, "HEAD~1", "--store", root])
    assert result.exit_code == 1 and result.stderr.startswith(
        "Error: session project-123/session-456 has unrecorded edits"
    )
    result = invoke("restore", S, "HEAD~1", "--force", "--store", root, "--json")
    assert json.loads(result.stdout)["overwritten"] == [run_session.manifest_rel]
    result = invoke("fork", S, "forked", "--at", target, "--store", root)
    assert result.stdout.strip() == f"{P}/forked"
    result = invoke("verify", "--store", root)
    assert result.exit_code == 0 and result.stdout.startswith("ok: ")
    result = invoke("maintenance", "--store", root, "--json")
    assert [s["step"] for s in json.loads(result.stdout)["steps"]] == [
        "pack-refs",
        "repack",
        "commit-graph",
    ]
    bad = store.root / run_session.phase_rel(1) / "checkpoint.md"
    bad.write_text(bad.read_text().replace("status: completed", "status: done", 1))
    git(store.root, "commit", "-q", "-am", "break it")
    result = CliRunner().invoke(cli, ["verify", "--store", root])
    assert result.exit_code == 1
    assert result.stderr == "Error: 1 problem(s)\n"
    assert "checkpoint.md" in result.stdout


def test_cli_backup_commands(store: Store, tmp_path: Path) -> None:
    root = str(store.root)
    result = invoke("backup", "create", "--store", root)
    assert result.exit_code == 0, result.output
    made = Path(result.stdout.strip())
    assert made.parent == store.root / ".mdsessions" / "backups" and made.exists()
    assert result.stderr == ""  # no progress bar outside a terminal
    result = invoke("backup", "create", str(tmp_path / "b"), "--json", "--store", root)
    other = Path(json.loads(result.stdout)["path"])
    result = invoke("backup", "list", "--store", root, "--json")
    assert [b["path"] for b in json.loads(result.stdout)] == [str(made)]
    result = invoke("backup", "list", str(tmp_path / "b"))
    assert str(other) in result.stdout
    result = invoke("backup", "restore", str(other), str(tmp_path / "r"))
    assert result.exit_code == 0 and result.stdout.startswith(f"restored {tmp_path / 'r'}")
    result = CliRunner().invoke(cli, ["backup", "prune", str(tmp_path / "b")])
    assert result.exit_code == 2 and "--keep N or --older-than DAYS" in result.output
    result = invoke("backup", "prune", str(tmp_path / "b"), "--keep", "0")
    assert result.stdout == f"deleted {other}\n"


def test_every_history_command_has_help_with_an_example() -> None:
    group = click.Group()
    register(group)
    names = []
    for name, command in group.commands.items():
        subs = command.commands.items() if isinstance(command, click.Group) else []
        names.append(name)
        for sub_name, sub in [(name, command), *subs]:
            argv = [name, "--help"] if sub is command else [name, sub_name, "--help"]
            result = CliRunner().invoke(group, argv)
            assert result.exit_code == 0, (argv, result.output)
            assert "Example:" in result.output, argv
    assert names == [
        "versions", "diff", "restore", "fork", "export", "import", "archive", "unarchive",
        "delete", "cleanup", "backup", "remote", "clone", "push", "pull", "sync", "set-aside",
        "verify", "maintenance",
    ]  # fmt: skip


def test_cli_module_imports_lazily_and_in_either_order() -> None:
    code = (
        "import sys\n"
        "import mdsessions.cli.history as h\n"
        "assert 'git' not in sys.modules and 'jinja2' not in sys.modules\n"
        "from mdsessions.cli import cli\n"
        "h.register(cli)\n"
        "assert 'versions' in cli.commands\n"
        "assert 'git' not in sys.modules and 'yaml' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO_ROOT)


# ------------------------------------------------------------------------------ scale


@pytest.fixture
def big_store(tmp_path: Path) -> Iterator[Store]:
    """100 sessions x 10 checkpoint/output calls (about 1,100 commits)."""
    store = Store.init(tmp_path / "big")
    for i in range(100):
        s = store.create_session(P, f"s{i:03d}", idea=f"idea {i}")
        s.save_agent_output(1, "concept_expansion", f"concept {i}\n")
        s.save_checkpoint(1, status="completed")
        s.save_feedback(1, approved=True, author=PERSON)
        s.save_agent_output(2, "market_intelligence", f"market {i}\n")
        s.save_agent_output(2, "competitor_analysis", f"competitors {i}\n")
        s.save_checkpoint(2, status="completed")
        s.save_agent_output(3, "niche_selection", f"niche {i}\n")
        s.save_checkpoint(3, status="completed")
        s.save_feedback(3, approved=True, author=PERSON)
        s.save_agent_output(6, "risk_assessment", f"risks {i}\n")
    try:
        yield store
    finally:
        store.close()


@pytest.mark.slow
def test_scale_restore_fork_and_bundle_on_1000_checkpoints(
    big_store: Store, tmp_path: Path
) -> None:
    store = big_store
    began = time.monotonic()
    assert commit_count(store.root) >= 1000
    s = store.session(P, "s042")
    target = history.versions(s, kind="agent_output", phase=2, limit=None).versions[-1].commit
    result = history.restore(s, target, phase=2)
    assert result.reset_phases == (2, 3, 6, 7)
    assert s.manifest().current_phase == 2
    assert history.verify(store).ok
    fork = history.fork(store.session(P, "s007"), "s007-fork").session
    finish(Runner(store, agents=Agents().all()), fork)
    assert fork.status is SessionStatus.COMPLETED
    finish(Runner(store, agents=Agents().all()), s)
    backup = history.create_backup(store, tmp_path / "backups")
    restored = history.restore_backup(backup.path, tmp_path / "restored")
    assert restored.problems == ()
    fmt = "--format=%H %an <%ae> %at %s%n%b"
    assert git(tmp_path / "restored", "log", fmt) == git(store.root, "log", fmt)
    assert tree_digest(tmp_path / "restored") == tree_digest(store.root)
    assert time.monotonic() - began < 60
